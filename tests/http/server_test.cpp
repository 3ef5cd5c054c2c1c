#include "daemon/http/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace herald::http {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kIoTimeout = 5s;

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  std::optional<std::string> header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) {
        return value;
      }
    }
    return std::nullopt;
  }
};

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

// A blocking HTTP/1.1 client on a plain socket; every read and write is bounded by kIoTimeout.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kIoTimeout).count();
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response; nullopt when the connection closes or times out before it is whole.
  std::optional<RawResponse> read_response(bool head = false) {
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) {
        return std::nullopt;
      }
    }
    RawResponse response;
    const std::string head_text = pending_.substr(0, end);
    pending_.erase(0, end + 4);
    size_t line_end = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, line_end);
    if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0) {
      return std::nullopt;
    }
    response.status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head_text.find("\r\n", start);
      const std::string line = head_text.substr(start, line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      response.headers.emplace_back(lower(line.substr(0, colon)), value);
    }
    const auto length = response.header("content-length");
    const size_t want = head || !length ? 0 : std::stoul(*length);
    while (pending_.size() < want) {
      if (!fill()) {
        return std::nullopt;
      }
    }
    response.body = pending_.substr(0, want);
    pending_.erase(0, want);
    return response;
  }

  std::optional<RawResponse> roundtrip(std::string_view request, bool head = false) {
    if (!send(request)) {
      return std::nullopt;
    }
    return read_response(head);
  }

  // After read_response of a chunked answer: its body, or nullopt when the connection ends (or
  // times out) before the last chunk.
  std::optional<std::string> read_chunked() {
    std::string body;
    while (true) {
      size_t eol;
      while ((eol = pending_.find("\r\n")) == std::string::npos) {
        if (!fill()) {
          return std::nullopt;
        }
      }
      const size_t size = std::stoul(pending_.substr(0, eol), nullptr, 16);
      pending_.erase(0, eol + 2);
      while (pending_.size() < size + 2) {
        if (!fill()) {
          return std::nullopt;
        }
      }
      body.append(pending_, 0, size);
      pending_.erase(0, size + 2);
      if (size == 0) {
        return body;
      }
    }
  }

  // Everything until the server closes the connection.
  std::string read_to_close() {
    while (fill()) {
    }
    return std::exchange(pending_, {});
  }

  // No more bytes from this side (the server reads end of file).
  void finish_sending() { ::shutdown(fd_, SHUT_WR); }

  // True when the server closes the connection (EOF or reset) within `limit`.
  bool closed_within(std::chrono::milliseconds limit) {
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) {
        continue;
      }
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return true;
      }
    }
    return false;
  }

 private:
  bool fill() {
    char buffer[16384];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      return false;
    }
    pending_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                    std::string_view extra_headers = {}) {
  std::string out = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += std::string(extra_headers);
  out += "\r\n";
  out += std::string(body);
  return out;
}

std::string chunked_request(size_t body_size) {
  std::string out = "POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
  constexpr size_t kChunk = 64 * 1024;
  for (size_t sent = 0; sent < body_size;) {
    const size_t n = std::min(kChunk, body_size - sent);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    out += size_line;
    out += std::string(n, 'c');
    out += "\r\n";
    sent += n;
  }
  out += "0\r\n\r\n";
  return out;
}

nlohmann::json echo_json(const Request& req) {
  nlohmann::json query = nlohmann::json::array();
  for (const auto& [key, value] : req.query) {
    query.push_back({key, value});
  }
  return {{"method", req.method},
          {"target", req.target},
          {"path", req.path},
          {"query", query},
          {"body", req.body},
          {"body_size", req.body.size()},
          {"x_test", req.header("x-test").value_or("")},
          {"remote", req.remote_address},
          {"first_a", req.query_param("a").value_or("-")}};
}

void echo(Request&& req, Responder respond) {
  Response response;
  response.body = echo_json(req).dump();
  respond(std::move(response));
}

ServerOptions test_options() {
  ServerOptions options;
  options.port = 0;
  return options;
}

struct Running {
  std::unique_ptr<Server> server;
  uint16_t port = 0;
};

Running start(ServerOptions options, Handler handler) {
  Running running;
  running.server = std::make_unique<Server>(std::move(options), std::move(handler));
  auto port = running.server->start();
  EXPECT_TRUE(port.ok()) << (port.ok() ? "" : port.error().message);
  running.port = port.ok() ? *port : 0;
  return running;
}

// ---- pure helpers -----------------------------------------------------------------------

TEST(PercentDecode, Table) {
  struct Case {
    std::string_view in;
    bool plus_as_space;
    std::string_view out;
  };
  const Case cases[] = {
      {"", false, ""},           {"/v1/deliveries", false, "/v1/deliveries"},
      {"a%2Fb", false, "a/b"},   {"a%2fb", false, "a/b"},
      {"a+b", false, "a+b"},     {"a+b", true, "a b"},
      {"%2B", true, "+"},        {"%zz", false, "%zz"},
      {"%", false, "%"},         {"%4", false, "%4"},
      {"100%", true, "100%"},    {"%e2%9c%93", false, "\xe2\x9c\x93"},
      {"%41%42c", false, "ABc"}, {"%00x", false, std::string_view("\0x", 2)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(percent_decode(c.in, c.plus_as_space), c.out)
        << "input: " << c.in << " plus_as_space: " << c.plus_as_space;
  }
}

TEST(ParseQuery, Table) {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  struct Case {
    std::string_view in;
    Pairs out;
  };
  const Case cases[] = {
      {"", {}},
      {"client=acme&limit=10", {{"client", "acme"}, {"limit", "10"}}},
      {"a=1&a=2&b=3", {{"a", "1"}, {"a", "2"}, {"b", "3"}}},
      {"q=x+y%2Fz", {{"q", "x y/z"}}},
      {"empty=&flag", {{"empty", ""}, {"flag", ""}}},
      {"&&a=1&", {{"a", "1"}}},
      {"bad=%zz", {{"bad", "%zz"}}},
      {"k%20ey=v=w", {{"k ey", "v=w"}}},
      {"=v", {{"", "v"}}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_query(c.in), c.out) << "input: " << c.in;
  }
}

TEST(JsonErrorBody, WithAndWithoutField) {
  const auto with =
      nlohmann::json::parse(json_error_body("invalid_phase", "bad \"phase\"", "phase"));
  EXPECT_EQ(with["error"]["code"], "invalid_phase");
  EXPECT_EQ(with["error"]["message"], "bad \"phase\"");
  EXPECT_EQ(with["error"]["field"], "phase");
  const auto without = nlohmann::json::parse(json_error_body("internal", "oops"));
  EXPECT_FALSE(without["error"].contains("field"));
  EXPECT_EQ(without["error"]["code"], "internal");
}

TEST(RequestAccessors, HeaderAndQueryParam) {
  Request req;
  req.headers = {{"x-a", "1"}, {"x-a", "2"}};
  req.query = {{"k", "v1"}, {"k", "v2"}};
  EXPECT_EQ(req.header("x-a"), "1");
  EXPECT_EQ(req.header("x-b"), std::nullopt);
  EXPECT_EQ(req.query_param("k"), "v1");
  EXPECT_EQ(req.query_param("z"), std::nullopt);
}

void expect_json_error(const std::optional<RawResponse>& response, int status,
                       std::string_view code) {
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, status);
  EXPECT_EQ(response->header("content-type"), "application/json");
  EXPECT_EQ(response->header("server"), "herald");
  const auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["error"]["code"], code);
  EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
}

// ---- round trips ------------------------------------------------------------------------

TEST(Server, GetAndPostRoundTrip) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  ASSERT_TRUE(client.connected());

  auto get = client.roundtrip(
      request("GET", "/v1/del%69veries?client=acme&limit=10&a=x+y&a=2", {}, "X-Test: hello\r\n"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->header("server"), "herald");
  EXPECT_EQ(get->header("content-type"), "application/json");
  EXPECT_EQ(get->header("content-length"), std::to_string(get->body.size()));
  const auto g = nlohmann::json::parse(get->body);
  EXPECT_EQ(g["method"], "GET");
  EXPECT_EQ(g["path"], "/v1/deliveries");
  EXPECT_EQ(g["target"], "/v1/del%69veries?client=acme&limit=10&a=x+y&a=2");
  EXPECT_EQ(g["query"],
            nlohmann::json::parse(R"([["client","acme"],["limit","10"],["a","x y"],["a","2"]])"));
  EXPECT_EQ(g["first_a"], "x y");
  EXPECT_EQ(g["x_test"], "hello");
  EXPECT_EQ(g["remote"], "127.0.0.1");

  auto post = client.roundtrip(request("POST", "/v1/events", R"({"event_id":"e1"})"));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
  const auto p = nlohmann::json::parse(post->body);
  EXPECT_EQ(p["method"], "POST");
  EXPECT_EQ(p["body"], R"({"event_id":"e1"})");
}

TEST(Server, KeepAliveServesTwoRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  auto running = start(test_options(), [&](Request&& req, Responder respond) {
    ++calls;
    echo(std::move(req), std::move(respond));
  });
  Client client(running.port);
  for (int i = 0; i < 2; ++i) {
    auto response = client.roundtrip(request("GET", "/ping"));
    ASSERT_TRUE(response) << "request " << i;
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->header("connection"), "close");
  }
  EXPECT_EQ(calls.load(), 2);
  EXPECT_FALSE(client.closed_within(50ms));
}

TEST(Server, HandlerStatusHeadersAndContentType) {
  auto running = start(test_options(), [](Request&&, Responder respond) {
    Response response;
    response.status = 201;
    response.content_type = "text/plain; charset=utf-8";
    response.headers = {{"Location", "/v1/things/1"}, {"X-Extra", "yes"}};
    response.body = "created";
    respond(std::move(response));
  });
  Client client(running.port);
  auto response = client.roundtrip(request("POST", "/v1/things", "x"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(response->header("location"), "/v1/things/1");
  EXPECT_EQ(response->header("x-extra"), "yes");
  EXPECT_EQ(response->body, "created");
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  ASSERT_TRUE(client.send(request("GET", "/one") + request("POST", "/two", "2")));
  for (std::string_view path : {"/one", "/two"}) {
    auto response = client.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(nlohmann::json::parse(response->body)["path"], path);
  }
}

TEST(Server, InvalidStatusAndHeaderInjectionAreRefused) {
  auto running = start(test_options(), [](Request&& req, Responder respond) {
    Response response;
    if (req.path == "/status") {
      response.status = 1000;
    } else {
      response.headers = {{"X-Bad", "a\r\nSet-Cookie: evil=1"}, {"X-Good", "ok"}};
    }
    respond(std::move(response));
  });
  Client client(running.port);
  expect_json_error(client.roundtrip(request("GET", "/status")), 500, "internal");
  auto response = client.roundtrip(request("GET", "/header"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("x-bad"), std::nullopt);
  EXPECT_EQ(response->header("set-cookie"), std::nullopt);
  EXPECT_EQ(response->header("x-good"), "ok");
}

TEST(Server, HeadHasContentLengthButNoBody) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  auto head = client.roundtrip(request("HEAD", "/x"), /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_NE(head->header("content-length").value_or("0"), "0");
  // Had the server sent a body, it would be read here as the start of the next response.
  auto get = client.roundtrip(request("GET", "/y"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(nlohmann::json::parse(get->body)["path"], "/y");
}

TEST(Server, Http10ClosesAfterTheResponse) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  auto response = client.roundtrip("GET /old HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(client.closed_within(2s));
}

TEST(Server, ExpectContinueGetsInterimResponse) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  ASSERT_TRUE(client.send(
      "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  auto response = client.roundtrip("hello");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(nlohmann::json::parse(response->body)["body"], "hello");
}

TEST(Server, HandlerRespondsLaterFromAnotherThread) {
  std::mutex mutex;
  std::vector<std::thread> workers;
  auto running = start(test_options(), [&](Request&& req, Responder respond) {
    std::lock_guard lock(mutex);
    workers.emplace_back([req = std::move(req), respond = std::move(respond)]() mutable {
      std::this_thread::sleep_for(50ms);
      echo(std::move(req), std::move(respond));
    });
  });
  {
    Client client(running.port);
    for (int i = 0; i < 2; ++i) {
      auto response = client.roundtrip(request("GET", "/later"));
      ASSERT_TRUE(response);
      EXPECT_EQ(response->status, 200);
      EXPECT_EQ(nlohmann::json::parse(response->body)["path"], "/later");
    }
  }
  std::lock_guard lock(mutex);
  for (auto& worker : workers) {
    worker.join();
  }
}

// ---- limits and malformed input ---------------------------------------------------------

TEST(Server, BodyOfExactlyTheLimitIsAccepted) {
  auto running = start(test_options(), echo);
  Client client(running.port);
  auto response = client.roundtrip(request("POST", "/upload", std::string(1 << 20, 'b')));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(nlohmann::json::parse(response->body)["body_size"], 1 << 20);

  auto chunked = client.roundtrip(chunked_request(1 << 20));
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);
  EXPECT_EQ(nlohmann::json::parse(chunked->body)["body_size"], 1 << 20);
}

TEST(Server, BodyOverTheLimitIs413AndCloses) {
  std::atomic<int> calls{0};
  auto running = start(test_options(), [&](Request&& req, Responder respond) {
    ++calls;
    echo(std::move(req), std::move(respond));
  });
  {
    Client client(running.port);
    client.send(request("POST", "/upload", std::string((1 << 20) + 1, 'b')));
    expect_json_error(client.read_response(), 413, "body_too_large");
    EXPECT_TRUE(client.closed_within(3s));
  }
  {
    Client client(running.port);
    client.send(chunked_request((1 << 20) + 1));
    expect_json_error(client.read_response(), 413, "body_too_large");
    EXPECT_TRUE(client.closed_within(3s));
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(Server, MalformedRequestLineIs400AndCloses) {
  auto running = start(test_options(), echo);
  for (std::string_view bad :
       {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n"}) {
    Client client(running.port);
    client.send(bad);
    expect_json_error(client.read_response(), 400, "bad_request");
    EXPECT_TRUE(client.closed_within(3s)) << bad;
  }
}

TEST(Server, HeadersOverTheLimitAre431) {
  auto options = test_options();
  options.header_limit = 1024;
  auto running = start(options, echo);
  Client client(running.port);
  client.send(request("GET", "/", {}, "X-Big: " + std::string(2048, 'h') + "\r\n"));
  expect_json_error(client.read_response(), 431, "headers_too_large");
  EXPECT_TRUE(client.closed_within(3s));
}

// ---- timeouts ---------------------------------------------------------------------------

TEST(Server, SlowClientIsDisconnectedAfterHeaderTimeout) {
  auto options = test_options();
  options.header_timeout = 200ms;
  auto running = start(options, echo);

  Client half(running.port);
  half.send("GET /slow HTTP/1.1\r\nHost: t\r\nX-Partial: ");
  const auto begin = SteadyClock::now();
  EXPECT_TRUE(half.closed_within(3s));
  EXPECT_GE(SteadyClock::now() - begin, 100ms);

  Client silent(running.port);
  EXPECT_TRUE(silent.closed_within(3s));

  // A body that trickles in is bounded by the same deadline.
  Client trickle(running.port);
  trickle.send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
  EXPECT_TRUE(trickle.closed_within(3s));
}

TEST(Server, IdleKeepAliveConnectionIsClosed) {
  auto options = test_options();
  options.idle_timeout = 200ms;
  auto running = start(options, echo);
  Client client(running.port);
  ASSERT_TRUE(client.roundtrip(request("GET", "/once")));
  EXPECT_TRUE(client.closed_within(3s));
}

TEST(Server, HandlerThatNeverAnswersGets503AndLateAnswerIsIgnored) {
  auto options = test_options();
  options.handler_timeout = 100ms;
  std::mutex mutex;
  std::vector<Responder> kept;
  auto running = start(options, [&](Request&& req, Responder respond) {
    if (req.path == "/hang") {
      std::lock_guard lock(mutex);
      kept.push_back(std::move(respond));
      return;
    }
    echo(std::move(req), std::move(respond));
  });
  Client client(running.port);
  expect_json_error(client.roundtrip(request("GET", "/hang")), 503, "timeout");
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(kept.size(), 1u);
    kept[0](Response{.status = 200,
                     .content_type = "text/plain",
                     .headers = {},
                     .body = "late"});  // dropped: the 503 went out
  }
  Client other(running.port);
  auto next = other.roundtrip(request("GET", "/after"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(nlohmann::json::parse(next->body)["path"], "/after");

  running.server.reset();
  std::lock_guard lock(mutex);
  kept[0](Response{.status = 200, .content_type = "text/plain", .headers = {}, .body = "gone"});
}

TEST(Server, HandlerThatThrowsGets500AndServingContinues) {
  auto running = start(test_options(), [](Request&& req, Responder respond) {
    if (req.path == "/boom") {
      throw std::runtime_error("boom");
    }
    echo(std::move(req), std::move(respond));
  });
  Client client(running.port);
  expect_json_error(client.roundtrip(request("GET", "/boom")), 500, "internal");
  auto next = client.roundtrip(request("GET", "/fine"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

// ---- lifecycle --------------------------------------------------------------------------

TEST(Server, GracefulStopCompletesInFlightRequest) {
  std::promise<void> handler_called;
  std::thread worker;
  auto running = start(test_options(), [&](Request&& req, Responder respond) {
    worker = std::thread([req = std::move(req), respond = std::move(respond)]() mutable {
      std::this_thread::sleep_for(200ms);
      echo(std::move(req), std::move(respond));
    });
    handler_called.set_value();
  });

  Client idle(running.port);
  ASSERT_TRUE(idle.connected());
  Client busy(running.port);
  auto reply = std::async(std::launch::async,
                          [&] { return busy.roundtrip(request("POST", "/v1/events", "{}")); });
  ASSERT_EQ(handler_called.get_future().wait_for(5s), std::future_status::ready);

  const auto begin = SteadyClock::now();
  running.server->stop(5s);
  EXPECT_LT(SteadyClock::now() - begin, 4s);

  auto response = reply.get();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(idle.closed_within(1s));
  EXPECT_TRUE(busy.closed_within(1s));
  worker.join();

  Client refused(running.port);
  EXPECT_FALSE(refused.connected());
}

TEST(Server, StopClosesRequestsStillBusyAfterTheDrain) {
  std::promise<Responder> kept;
  auto running = start(test_options(),
                       [&](Request&&, Responder respond) { kept.set_value(std::move(respond)); });
  Client client(running.port);
  client.send(request("GET", "/hang"));
  auto responder = kept.get_future();
  ASSERT_EQ(responder.wait_for(5s), std::future_status::ready);

  const auto begin = SteadyClock::now();
  running.server->stop(200ms);
  EXPECT_LT(SteadyClock::now() - begin, 3s);
  EXPECT_TRUE(client.closed_within(1s));
  responder.get()(Response{});  // after stop: dropped safely
}

TEST(Server, StartOnAPortInUseNamesTheProblem) {
  auto first = start(test_options(), echo);
  auto options = test_options();
  options.port = first.port;
  Server second(options, echo);
  auto result = second.start();
  ASSERT_FALSE(result.ok());
  const std::string message = result.error().message;
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(first.port)), std::string::npos) << message;
  EXPECT_NE(lower(message).find("address already in use"), std::string::npos) << message;
}

TEST(Server, StartOnAnAddressNotOfThisHostFails) {
  auto options = test_options();
  options.host = "192.0.2.1";  // TEST-NET-1: bind fails locally, nothing goes on the wire
  Server server(options, echo);
  auto result = server.start();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("192.0.2.1:0"), std::string::npos);
}

TEST(Server, HundredConcurrentClientsTwentyRequestsEach) {
  constexpr int kClients = 100;
  constexpr int kRequests = 20;
  auto options = test_options();
  options.threads = 2;
  std::atomic<int> handled{0};
  auto running = start(options, [&](Request&& req, Responder respond) {
    ++handled;
    Response response;
    response.body = req.path;
    respond(std::move(response));
  });
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Client client(running.port);
      for (int r = 0; r < kRequests; ++r) {
        const std::string path = "/c" + std::to_string(c) + "/r" + std::to_string(r);
        auto response = client.roundtrip(request("GET", path));
        if (!response || response->status != 200 || response->body != path) {
          return;
        }
        ++answered;
      }
    });
  }
  for (auto& client : clients) {
    client.join();
  }
  EXPECT_EQ(answered.load(), kClients * kRequests);
  EXPECT_EQ(handled.load(), kClients * kRequests);
}

}  // namespace
}  // namespace herald::http

namespace herald::http {
namespace {

// A handler that streams `pieces` pieces of `size` bytes ("a", "b", ... repeated), counting the
// calls to its source; with fail_at, the source fails on that call instead.
struct Streamer {
  int pieces = 3;
  size_t size = 5;
  int fail_at = -1;
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);

  Handler handler() const {
    return [*this](Request&&, Responder respond) {
      Response response;
      response.content_type = "text/plain";
      response.headers.emplace_back("X-Streamed", "yes");
      auto next = std::make_shared<int>(0);
      response.stream = [*this, next]() -> Result<std::optional<std::string>> {
        const int call = (*calls)++;
        if (call == fail_at) {
          return make_error(ErrorKind::internal, "boom", "the source failed");
        }
        if (*next >= pieces) {
          return std::optional<std::string>{};
        }
        const int i = (*next)++;
        if (i == 1) {
          return std::optional<std::string>(std::string());  // skipped, not the end
        }
        return std::optional<std::string>(std::string(size, static_cast<char>('a' + i % 26)));
      };
      respond(std::move(response));
    };
  }

  std::string expected() const {
    std::string out;
    for (int i = 0; i < pieces; ++i) {
      if (i != 1) {
        out += std::string(size, static_cast<char>('a' + i % 26));
      }
    }
    return out;
  }
};

TEST(ServerStream, ChunkedBodyThenKeepAlive) {
  Streamer streamer;
  streamer.pieces = 5;
  auto running = start(test_options(), streamer.handler());
  Client client(running.port);
  auto head = client.roundtrip(request("GET", "/export"));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("transfer-encoding").value_or(""), "chunked");
  EXPECT_FALSE(head->header("content-length"));
  EXPECT_EQ(head->header("x-streamed").value_or(""), "yes");
  EXPECT_EQ(head->header("content-type").value_or(""), "text/plain");
  auto body = client.read_chunked();
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, streamer.expected());
  EXPECT_EQ(*streamer.calls, 6);  // five pieces (one empty) and the end
  // The connection serves the next request.
  auto again = client.roundtrip(request("GET", "/export"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  auto second = client.read_chunked();
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, streamer.expected());
}

TEST(ServerStream, ASlowReaderHoldsTheSourceBack) {
  Streamer streamer;
  streamer.pieces = 400;
  streamer.size = 256 * 1024;  // 100 MiB in all, far beyond the sockets' buffers
  auto running = start(test_options(), streamer.handler());
  Client client(running.port);
  auto head = client.roundtrip(request("GET", "/export"));
  ASSERT_TRUE(head);
  std::this_thread::sleep_for(300ms);  // not reading: the server must wait for the socket
  EXPECT_LT(*streamer.calls, 100);
  auto body = client.read_chunked();
  ASSERT_TRUE(body);
  EXPECT_EQ(body->size(), streamer.size * 399);
  EXPECT_EQ(*streamer.calls, 401);
}

TEST(ServerStream, ASourceErrorCutsTheBodyShort) {
  Streamer streamer;
  streamer.pieces = 10;
  streamer.fail_at = 3;
  auto running = start(test_options(), streamer.handler());
  Client client(running.port);
  auto head = client.roundtrip(request("GET", "/export"));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_FALSE(client.read_chunked());  // no last chunk: the client knows it is incomplete
  EXPECT_EQ(*streamer.calls, 4);
}

TEST(ServerStream, HeadNeverCallsTheSource) {
  Streamer streamer;
  auto running = start(test_options(), streamer.handler());
  Client client(running.port);
  auto head = client.roundtrip(request("HEAD", "/export"), /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("transfer-encoding").value_or(""), "chunked");
  auto get = client.roundtrip(request("GET", "/export"));
  ASSERT_TRUE(get);
  auto body = client.read_chunked();
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, streamer.expected());
  EXPECT_EQ(*streamer.calls, 4);  // only the GET's
}

TEST(ServerStream, Http10GetsAnUnframedBodyEndedByClose) {
  Streamer streamer;
  auto running = start(test_options(), streamer.handler());
  Client client(running.port);
  auto head = client.roundtrip("GET /export HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_FALSE(head->header("transfer-encoding"));
  EXPECT_EQ(client.read_to_close(), streamer.expected());
}

// ---- serve_bytes: a connection's bytes without a socket ------------------------------------

// echo, but /export streams three pieces, /throw throws, /never never answers and /bad answers
// with an invalid status.
void varied(Request&& req, Responder respond) {
  if (req.path == "/export") {
    Response response;
    response.content_type = "text/plain";
    auto next = std::make_shared<int>(0);
    response.stream = [next]() -> Result<std::optional<std::string>> {
      if (*next == 3) {
        return std::optional<std::string>{};
      }
      return std::optional<std::string>(std::string(3, static_cast<char>('a' + (*next)++)));
    };
    respond(std::move(response));
  } else if (req.path == "/throw") {
    throw std::runtime_error("boom");
  } else if (req.path == "/never") {
    return;
  } else if (req.path == "/bad") {
    respond(Response{42, "text/plain", {{"X-Evil", "a\r\nb"}}, "bad"});
  } else {
    echo(std::move(req), std::move(respond));
  }
}

ServerOptions small_limits() {
  ServerOptions options = test_options();
  options.body_limit = 64;
  options.header_limit = 256;
  options.handler_timeout = 200ms;
  return options;
}

const std::string kConnections[] = {
    request("GET", "/v1/things?a=1&b=x%20y&a=2", {}, "X-Test: yes\r\n"),
    request("POST", "/one", "first") + request("GET", "/two") +
        request("GET", "/three", {}, "Connection: close\r\n") + request("GET", "/unanswered"),
    request("POST", "/continue", "body", "Expect: 100-continue\r\n"),
    "POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    request("POST", "/big", std::string(65, 'x')),
    "GARBAGE\r\n\r\n",
    request("GET", "/headers", {}, "X-Long: " + std::string(300, 'h') + "\r\n"),
    "GET /cut HTTP/1.1\r\nHost: t\r\n",
    request("POST", "/cut-body", std::string(10, 'b')).substr(0, 60),
    request("HEAD", "/head") + request("GET", "/after-head"),
    "GET /old HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n",
    request("GET", "/export") + request("HEAD", "/export") + request("GET", "/echo"),
    "GET /export HTTP/1.0\r\n\r\n",
    request("GET", "/throw") + request("GET", "/bad") + request("GET", "/echo"),
    request("GET", "/never") + request("GET", "/not-reached"),
    "",
};

// What the fuzz target fuzz_http relies on: the same bytes in give the same bytes out as a
// real connection to a running server.
TEST(ServeBytes, AnswersExactlyAsARealConnection) {
  auto running = start(small_limits(), varied);
  for (const auto& input : kConnections) {
    Client client(running.port);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.send(input));
    client.finish_sending();
    const std::string over_socket = client.read_to_close();
    EXPECT_EQ(serve_bytes(small_limits(), input, varied), over_socket) << input;
    EXPECT_FALSE(over_socket.empty() && !input.empty() && input.rfind("GET /cut", 0) != 0 &&
                 input.rfind("POST /cut-body", 0) != 0)
        << "no answer to " << input;
  }
}

TEST(ServeBytes, EachLimitAndErrorAnswers) {
  const ServerOptions options = small_limits();
  auto status_lines = [&](const std::string& input) {
    const std::string out = serve_bytes(options, input, varied);
    std::vector<std::string> lines;
    for (size_t pos = out.find("HTTP/1."); pos != std::string::npos;
         pos = out.find("HTTP/1.", pos + 1)) {
      lines.push_back(out.substr(pos, out.find("\r\n", pos) - pos));
    }
    return lines;
  };
  using Lines = std::vector<std::string>;
  EXPECT_EQ(status_lines(kConnections[1]),
            (Lines{"HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"}));
  EXPECT_EQ(status_lines(kConnections[2]), (Lines{"HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"}));
  EXPECT_EQ(status_lines(kConnections[4]), (Lines{"HTTP/1.1 413 Payload Too Large"}));
  EXPECT_EQ(status_lines(kConnections[5]), (Lines{"HTTP/1.1 400 Bad Request"}));
  EXPECT_EQ(status_lines(kConnections[6]), (Lines{"HTTP/1.1 431 Request Header Fields Too Large"}));
  EXPECT_EQ(status_lines(kConnections[7]), Lines{});
  EXPECT_EQ(status_lines(kConnections[13]),
            (Lines{"HTTP/1.1 500 Internal Server Error", "HTTP/1.1 500 Internal Server Error",
                   "HTTP/1.1 200 OK"}));
  EXPECT_EQ(status_lines(kConnections[14]), (Lines{"HTTP/1.1 503 Service Unavailable"}));

  const std::string streamed = serve_bytes(options, kConnections[11], varied);
  EXPECT_NE(streamed.find("Transfer-Encoding: chunked\r\n\r\n"
                          "3\r\naaa\r\n3\r\nbbb\r\n3\r\nccc\r\n0\r\n\r\n"),
            std::string::npos)
      << streamed;
  const std::string old = serve_bytes(options, kConnections[12], varied);
  EXPECT_EQ(old.substr(old.size() - 13), "\r\n\r\naaabbbccc");
}

TEST(ServeBytes, TheHandlerSeesTheParsedRequest) {
  std::optional<Request> seen;
  const std::string out =
      serve_bytes(test_options(), request("PUT", "/v1/a%20b?x=1&y=%41+B", "{}", "X-Test: T\r\n"),
                  [&](Request&& req, Responder respond) {
                    seen = std::move(req);
                    respond(Response{204, "", {}, ""});
                  });
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->method, "PUT");
  EXPECT_EQ(seen->path, "/v1/a b");
  EXPECT_EQ(seen->query_param("y").value_or(""), "A B");
  EXPECT_EQ(seen->header("x-test").value_or(""), "T");
  EXPECT_EQ(seen->body, "{}");
  EXPECT_EQ(seen->remote_address, "127.0.0.1");
  EXPECT_EQ(out.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << out;
}

}  // namespace
}  // namespace herald::http
