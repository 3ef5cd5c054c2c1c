#include "daemon/transport/transport.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "channels/common.hpp"
#include "channels/email/email_channel.hpp"
#include "channels/webhook/webhook_channel.hpp"
#include "daemon/core/crypto.hpp"
#include "tests/transport/receiver_process.hpp"

namespace herald::transport {
namespace {

using channels::HttpRequest;
using channels::Response;
using channels::SmtpRequest;
using herald::testing::ReceiverProcess;

class CurlEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK); }
  void TearDown() override { curl_global_cleanup(); }
};
[[maybe_unused]] auto* const kCurlEnvironment =
    ::testing::AddGlobalTestEnvironment(new CurlEnvironment);

TransportOptions loopback_allowed() {
  TransportOptions o;
  o.allow_private = {"127.0.0.0/8"};
  o.connect_timeout = Millis(5'000);
  o.total_timeout = Millis(10'000);
  return o;
}

Response send(Transport& transport, channels::Request request) {
  auto promise = std::make_shared<std::promise<Response>>();
  auto future = promise->get_future();
  transport.submit(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "no completion within 30 s";
    return {};
  }
  return future.get();
}

std::vector<nlohmann::json> received(const ReceiverProcess& receiver) {
  std::vector<nlohmann::json> out;
  std::istringstream in(receiver.read("requests.jsonl"));
  for (std::string line; std::getline(in, line);) {
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

ReceiverProcess webhook_receiver(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--out", "{dir}/requests.jsonl"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ReceiverProcess("webhook_receiver.py", args);
}

// A port on 127.0.0.1 where nothing listens.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A socket that listens but never accepts: connections complete (backlog), nothing answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 16);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

HttpRequest post(std::string url, std::string body = R"({"hello":"world"})") {
  HttpRequest r;
  r.url = std::move(url);
  r.headers = {{"Content-Type", "application/json"}, {"X-Test", "yes"}};
  r.body = std::move(body);
  return r;
}

TEST(Transport, PostArrivesWithHeadersAndBody) {
  auto receiver = webhook_receiver();
  Transport transport(loopback_allowed());
  Response r = send(transport, post(receiver.url("/hooks/a")));
  EXPECT_EQ(r.transport_error, 0) << r.transport_message;
  EXPECT_EQ(r.status_code, 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(channels::find_header(r.headers, "content-type").value_or(""), "text/plain");
  EXPECT_GE(r.duration.count(), 0);

  auto requests = received(receiver);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["method"], "POST");
  EXPECT_EQ(requests[0]["path"], "/hooks/a");
  EXPECT_EQ(requests[0]["body"], R"({"hello":"world"})");
  EXPECT_EQ(requests[0]["headers"]["x-test"], "yes");
  EXPECT_EQ(requests[0]["headers"]["content-type"], "application/json");
  EXPECT_EQ(requests[0]["headers"].count("expect"), 0u);
}

TEST(Transport, BasicAuthWhenUsernameSet) {
  auto receiver = webhook_receiver();
  Transport transport(loopback_allowed());
  HttpRequest request = post(receiver.url("/auth"));
  request.username = "AC123";
  request.password = "s3cret";
  request.guard_destination = false;
  Response r = send(transport, request);
  EXPECT_EQ(r.status_code, 200) << r.transport_message;
  auto requests = received(receiver);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["headers"]["authorization"], "Basic " + base64_encode("AC123:s3cret"));
}

TEST(Transport, ReportsFailureStatusAndRetryAfter) {
  auto receiver =
      webhook_receiver({"--fail-first", "1", "--fail-status", "503", "--retry-after", "7"});
  Transport transport(loopback_allowed());
  Response first = send(transport, post(receiver.url("/x")));
  EXPECT_EQ(first.transport_error, 0);
  EXPECT_EQ(first.status_code, 503);
  EXPECT_EQ(channels::find_header(first.headers, "retry-after").value_or(""), "7");
  Response second = send(transport, post(receiver.url("/x")));
  EXPECT_EQ(second.status_code, 200);
}

TEST(Transport, LongBodiesAreTruncated) {
  auto receiver = webhook_receiver();
  for (int i = 0; i < 3; ++i) {
    Transport warmup(loopback_allowed());
    (void)send(warmup, post(receiver.url("/fill")));
  }
  TransportOptions options = loopback_allowed();
  options.max_response_body = 10;
  Transport transport(options);
  HttpRequest get;
  get.method = "GET";
  get.url = receiver.url("/");
  Response r = send(transport, get);
  EXPECT_EQ(r.transport_error, 0) << r.transport_message;
  EXPECT_EQ(r.status_code, 200);
  EXPECT_EQ(r.body.size(), 10u);
}

TEST(Transport, ConnectionRefusedIsTransportError) {
  Transport transport(loopback_allowed());
  Response r = send(transport, post("http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
  EXPECT_EQ(r.transport_error, CURLE_COULDNT_CONNECT);
  EXPECT_EQ(r.status_code, 0);
  EXPECT_FALSE(r.transport_message.empty());
}

TEST(Transport, TimeoutIsTransportError) {
  SilentServer server;
  TransportOptions options = loopback_allowed();
  options.total_timeout = Millis(300);
  Transport transport(options);
  Response r = send(transport, post(server.url()));
  EXPECT_EQ(r.transport_error, CURLE_OPERATION_TIMEDOUT) << r.transport_message;
  EXPECT_EQ(r.status_code, 0);
}

TEST(Transport, GuardRefusesLoopbackUnlessAllowed) {
  auto receiver = webhook_receiver();
  {
    Transport guarded(TransportOptions{});
    Response r = send(guarded, post(receiver.url("/guarded")));
    EXPECT_NE(r.transport_error, 0);
    EXPECT_EQ(r.transport_message,
              "destination 127.0.0.1 is a loopback address; add it to [network] allow_private "
              "to allow it");
    // The guard judges the resolved address, whatever the spelling.
    for (const std::string host : {"localhost", "2130706433", "0x7f000001", "127.1"}) {
      HttpRequest request = post("http://" + host + ":" + std::to_string(receiver.port()) + "/");
      Response spelled = send(guarded, request);
      EXPECT_NE(spelled.transport_error, 0) << host;
    }
    // Operator-configured providers (guard_destination=false) are not judged.
    HttpRequest provider = post(receiver.url("/provider"));
    provider.guard_destination = false;
    EXPECT_EQ(send(guarded, provider).status_code, 200);
  }
  Transport allowed(loopback_allowed());
  Response ok = send(allowed, post(receiver.url("/guarded")));
  EXPECT_EQ(ok.status_code, 200) << ok.transport_message;

  auto requests = received(receiver);
  ASSERT_EQ(requests.size(), 2u);  // the provider's and the allowed one, nothing refused
  EXPECT_EQ(requests[0]["path"], "/provider");
  EXPECT_EQ(requests[1]["path"], "/guarded");
}

TEST(Transport, GuardedRequestsIgnoreProxyEnvironment) {
  auto receiver = webhook_receiver();
  // Set before the transport thread exists: setenv is not safe alongside getenv.
  setenv("http_proxy", ("http://127.0.0.1:" + std::to_string(closed_port())).c_str(), 1);
  Response guarded, proxied;
  {
    Transport transport(loopback_allowed());
    guarded = send(transport, post(receiver.url("/direct")));
    HttpRequest provider = post(receiver.url("/proxied"));
    provider.guard_destination = false;
    proxied = send(transport, provider);
  }
  unsetenv("http_proxy");
  EXPECT_EQ(guarded.status_code, 200) << guarded.transport_message;
  EXPECT_EQ(proxied.transport_error, CURLE_COULDNT_CONNECT);  // went to the (absent) proxy
}

TEST(Transport, ManyRequestsWithFewSlots) {
  auto receiver = webhook_receiver();
  TransportOptions options = loopback_allowed();
  options.max_in_flight = 2;
  Transport transport(options);
  constexpr int kCount = 8;
  std::vector<std::future<Response>> futures;
  for (int i = 0; i < kCount; ++i) {
    auto promise = std::make_shared<std::promise<Response>>();
    futures.push_back(promise->get_future());
    transport.submit(post(receiver.url("/many/" + std::to_string(i))),
                     [promise](Response r) { promise->set_value(std::move(r)); });
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(f.get().status_code, 200);
  }
  EXPECT_EQ(received(receiver).size(), static_cast<size_t>(kCount));
}

TEST(Transport, StopCompletesEverythingOnce) {
  SilentServer server;
  std::atomic<int> calls{0};
  std::promise<Response> stopped;
  auto future = stopped.get_future();
  {
    Transport transport(loopback_allowed());
    transport.submit(post(server.url()), [&](Response r) {
      ++calls;
      stopped.set_value(std::move(r));
    });
    transport.stop();
    std::promise<Response> late;
    transport.submit(post(server.url()), [&](Response r) {
      ++calls;
      late.set_value(std::move(r));
    });
    Response after = late.get_future().get();
    EXPECT_EQ(after.transport_message, "transport stopped");
  }
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  Response r = future.get();
  EXPECT_NE(r.transport_error, 0);
  EXPECT_EQ(r.transport_message, "transport stopped");
  EXPECT_EQ(calls.load(), 2);
}

SmtpRequest smtp_to(const ReceiverProcess& catcher, std::string payload) {
  SmtpRequest r;
  r.url = "smtp://127.0.0.1:" + std::to_string(catcher.port());
  r.mail_from = "herald@msp.example";
  r.recipients = {"alice@client.example"};
  r.payload = std::move(payload);
  return r;
}

TEST(Transport, SmtpDeliversThePayload) {
  ReceiverProcess catcher("mailcatcher.py", {"--out", "{dir}/mail"});
  Transport transport(loopback_allowed());
  std::string payload =
      "From: herald@msp.example\r\nTo: alice@client.example\r\nSubject: test\r\n\r\n"
      "first line\r\n.leading dot\r\nlast line\r\n";
  Response r = send(transport, smtp_to(catcher, payload));
  EXPECT_EQ(r.transport_error, 0) << r.transport_message;
  EXPECT_EQ(r.status_code, 250);
  EXPECT_EQ(catcher.read("mail/0001.eml"), payload);
  auto line = nlohmann::json::parse(catcher.read("mail/messages.jsonl"));
  EXPECT_EQ(line["mail_from"], "herald@msp.example");
  EXPECT_EQ(line["rcpt_tos"], nlohmann::json::array({"alice@client.example"}));
}

TEST(Transport, SmtpRefusalsReportTheReplyCode) {
  for (long code : {550L, 451L}) {
    ReceiverProcess catcher("mailcatcher.py",
                            {"--out", "{dir}/mail", "--reply-code", std::to_string(code)});
    Transport transport(loopback_allowed());
    Response r = send(transport, smtp_to(catcher, "Subject: x\r\n\r\nbody\r\n"));
    EXPECT_EQ(r.status_code, code) << r.transport_message;
    EXPECT_EQ(r.transport_error, 0);
    EXPECT_FALSE(r.transport_message.empty());
    EXPECT_EQ(catcher.read("mail/messages.jsonl"), "");
  }
}

TEST(Transport, SmtpServerNotReached) {
  Transport transport(loopback_allowed());
  SmtpRequest r;
  r.url = "smtp://127.0.0.1:" + std::to_string(closed_port());
  r.mail_from = "herald@msp.example";
  r.recipients = {"alice@client.example"};
  r.payload = "Subject: x\r\n\r\nbody\r\n";
  Response response = send(transport, r);
  EXPECT_EQ(response.transport_error, CURLE_COULDNT_CONNECT);
}

// The channels and the transport together, against the real receivers.
TEST(Transport, EmailChannelMessageArrivesIntact) {
  ReceiverProcess catcher("mailcatcher.py", {"--out", "{dir}/mail"});
  channels::EmailChannel email({"smtp://127.0.0.1:" + std::to_string(catcher.port()),
                                channels::SmtpTls::opportunistic, "Herald <herald@msp.example>", "",
                                ""});
  channels::Outgoing m;
  m.message_id = "msg1";
  m.thread_key = "inc-42";
  m.address = "alice@client.example";
  m.recipient_name = "Zoë Ålund";
  m.subject = "Incident INC-42 entered containment — action needed";
  m.text = "Containment started.\n" + std::string(300, 'x') + "\n.\nEnd";
  m.html = "<p>Containment started.</p>";
  m.now = Timestamp(std::chrono::seconds(1'796'378'400));
  auto request = email.build(m);
  ASSERT_TRUE(request.ok()) << request.error().message;
  Transport transport(loopback_allowed());
  Response r = send(transport, *request);
  EXPECT_EQ(email.interpret(r).verdict, channels::Verdict::delivered) << r.transport_message;
  EXPECT_EQ(catcher.read("mail/0001.eml"), std::get<SmtpRequest>(*request).payload);
}

TEST(Transport, SignedWebhookArrives) {
  auto receiver = webhook_receiver();
  channels::WebhookChannel webhook;
  channels::Outgoing m;
  m.message_id = "msg_2";
  m.url = receiver.url("/signed");
  m.payload_json = R"({"type":"incident.phase_changed"})";
  m.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
  m.now = Timestamp(std::chrono::seconds(1'614'265'330));
  auto request = webhook.build(m);
  ASSERT_TRUE(request.ok());
  Transport transport(loopback_allowed());
  Response r = send(transport, *request);
  EXPECT_EQ(webhook.interpret(r).verdict, channels::Verdict::delivered);
  auto requests = received(receiver);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["headers"]["webhook-id"], "msg_2");
  EXPECT_EQ(requests[0]["headers"]["webhook-timestamp"], "1614265330");
  EXPECT_EQ(requests[0]["body"], m.payload_json);
}

}  // namespace
}  // namespace herald::transport
