#include "daemon/transport/transport.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>

namespace herald::transport {
namespace {

using channels::HttpRequest;
using channels::Request;
using channels::Response;
using channels::SmtpRequest;
using channels::SmtpTls;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kStoppedMessage = "transport stopped";
constexpr const char* kUserAgent = "Herald/0.1";

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

Slist append(Slist list, const std::string& line) {
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  if (next == nullptr) {
    throw std::bad_alloc();
  }
  (void)list.release();
  return Slist(next);
}

// Host only: URLs of chat webhooks carry their tokens in the path or query.
std::string host_of(const std::string& url) {
  std::string host = "?";
  CURLU* u = curl_url();
  if (u == nullptr) {
    return host;
  }
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* h = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h != nullptr) {
      host = h;
      curl_free(h);
    }
  }
  curl_url_cleanup(u);
  return host;
}

std::string ip_text(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

// Everything one transfer needs, alive until it completes: curl keeps pointers into it.
struct Transfer {
  Request request;
  Transport::Done done;
  Easy easy;
  Slist headers;
  Slist recipients;
  std::string host;  // for logs
  size_t upload_offset = 0;
  size_t max_body = 0;
  const std::vector<Cidr>* allowed = nullptr;  // set when the guard applies
  std::string refused;                         // why the guard refused, when it did
  char error[CURL_ERROR_SIZE] = {};
  SteadyClock::time_point started{};
  Response response;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  std::string& body = t->response.body;
  if (body.size() < t->max_body) {
    body.append(data, std::min(n, t->max_body - body.size()));
  }
  return n;  // the rest is dropped on purpose: a long body is not an error
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();  // a new response (after 100 Continue or a redirect)
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return n;
  }
  std::string name(trim(line.substr(0, colon)));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  t->response.headers.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
  return n;
}

size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string& payload = std::get<SmtpRequest>(t->request).payload;
  size_t n = std::min(size * count, payload.size() - t->upload_offset);
  std::memcpy(buffer, payload.data() + t->upload_offset, n);
  t->upload_offset += n;
  return n;
}

curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  if (t->allowed != nullptr) {
    if (auto why = forbidden_reason(&address->addr, *t->allowed)) {
      t->refused = "destination " + ip_text(&address->addr) + " is " + *why +
                   "; add it to [network] allow_private to allow it";
      return CURL_SOCKET_BAD;
    }
  }
  return socket(address->family, address->socktype, address->protocol);
}

template <class T>
void set(CURL* easy, CURLoption option, T value) {
  CURLcode rc = curl_easy_setopt(easy, option, value);
  if (rc != CURLE_OK) {
    throw std::runtime_error(std::string("curl_easy_setopt: ") + curl_easy_strerror(rc));
  }
}

}  // namespace

struct Transport::Impl {
  TransportOptions options;
  std::vector<Cidr> allowed;
  CURLM* multi = nullptr;
  std::thread thread;

  std::mutex mutex;  // guards queue and stopping
  std::deque<std::unique_ptr<Transfer>> queue;
  bool stopping = false;

  // Owned by the transport thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> in_flight;

  void run();
  void start_queued();
  void start(std::unique_ptr<Transfer> t);
  void configure(Transfer& t);
  void configure_http(Transfer& t, const HttpRequest& r);
  void configure_smtp(Transfer& t, const SmtpRequest& r);
  void finish(CURL* easy, CURLcode result);
  static void complete(Transfer& t);
};

Transport::Transport(TransportOptions options) : impl_(std::make_unique<Impl>()) {
  for (const std::string& text : options.allow_private) {
    auto cidr = parse_cidr(text);
    if (!cidr) {
      throw std::invalid_argument(cidr.error().message);
    }
    impl_->allowed.push_back(*cidr);
  }
  if (options.max_in_flight < 1) {
    options.max_in_flight = 1;
  }
  impl_->options = std::move(options);
  impl_->multi = curl_multi_init();
  if (impl_->multi == nullptr) {
    throw std::runtime_error("curl_multi_init failed");
  }
  // Idle connections kept for reuse. curl's default (4 per easy handle attached at the time)
  // shrinks the cache whenever a burst winds down, so a fan-out to one SMTP relay or SMS API
  // kept opening (and, for SMTP, greeting) new connections.
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(std::max(impl_->options.max_in_flight, 16)));
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

Transport::~Transport() {
  stop();
  curl_multi_cleanup(impl_->multi);
}

void Transport::submit(Request request, Done done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopping) {
      impl_->queue.push_back(std::move(t));
      curl_multi_wakeup(impl_->multi);
      return;
    }
  }
  t->response.transport_error = CURLE_ABORTED_BY_CALLBACK;
  t->response.transport_message = kStoppedMessage;
  Impl::complete(*t);
}

void Transport::submit(std::vector<std::pair<Request, Done>> requests) {
  std::vector<std::unique_ptr<Transfer>> transfers;
  transfers.reserve(requests.size());
  for (auto& [request, done] : requests) {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->done = std::move(done);
    transfers.push_back(std::move(t));
  }
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopping) {
      for (auto& t : transfers) {
        impl_->queue.push_back(std::move(t));
      }
      curl_multi_wakeup(impl_->multi);
      return;
    }
  }
  for (auto& t : transfers) {
    t->response.transport_error = CURLE_ABORTED_BY_CALLBACK;
    t->response.transport_message = kStoppedMessage;
    Impl::complete(*t);
  }
}

void Transport::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  curl_multi_wakeup(impl_->multi);
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

void Transport::Impl::run() {
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (stopping) {
        break;
      }
    }
    start_queued();
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE) {
        CURL* easy = msg->easy_handle;
        CURLcode result = msg->data.result;  // msg is invalid once the handle is removed
        finish(easy, result);
      }
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  // Whatever is left completes with the stop error, so that every `done` runs exactly once.
  std::deque<std::unique_ptr<Transfer>> rest;
  {
    std::lock_guard lock(mutex);
    rest.swap(queue);
  }
  for (auto& [easy, t] : in_flight) {
    curl_multi_remove_handle(multi, easy);
    rest.push_back(std::move(t));
  }
  in_flight.clear();
  for (auto& t : rest) {
    t->response.transport_error = CURLE_ABORTED_BY_CALLBACK;
    t->response.transport_message = kStoppedMessage;
    complete(*t);
  }
}

void Transport::Impl::start_queued() {
  while (in_flight.size() < static_cast<size_t>(options.max_in_flight)) {
    std::unique_ptr<Transfer> t;
    {
      std::lock_guard lock(mutex);
      if (queue.empty()) {
        return;
      }
      t = std::move(queue.front());
      queue.pop_front();
    }
    start(std::move(t));
  }
}

void Transport::Impl::start(std::unique_ptr<Transfer> t) {
  t->started = SteadyClock::now();
  try {
    t->easy.reset(curl_easy_init());
    if (!t->easy) {
      throw std::runtime_error("curl_easy_init failed");
    }
    configure(*t);
    CURLMcode rc = curl_multi_add_handle(multi, t->easy.get());
    if (rc != CURLM_OK) {
      throw std::runtime_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
    }
  } catch (const std::exception& e) {
    t->response.transport_error = CURLE_FAILED_INIT;
    t->response.transport_message = e.what();
    complete(*t);
    return;
  }
  CURL* easy = t->easy.get();
  in_flight.emplace(easy, std::move(t));
}

void Transport::Impl::configure(Transfer& t) {
  CURL* e = t.easy.get();
  t.max_body = options.max_response_body;
  set(e, CURLOPT_NOSIGNAL, 1L);
  set(e, CURLOPT_ERRORBUFFER, t.error);
  Millis total = std::visit([](const auto& r) { return r.timeout; }, t.request);
  if (total <= Millis{0}) {
    total = options.total_timeout;
  }
  set(e, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(std::min(options.connect_timeout, total).count()));
  set(e, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
  set(e, CURLOPT_WRITEFUNCTION, &on_body);
  set(e, CURLOPT_WRITEDATA, &t);
  set(e, CURLOPT_HEADERFUNCTION, &on_header);
  set(e, CURLOPT_HEADERDATA, &t);
  set(e, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
  set(e, CURLOPT_OPENSOCKETDATA, &t);
  set(e, CURLOPT_PRIVATE, &t);
  if (const auto* http = std::get_if<HttpRequest>(&t.request)) {
    configure_http(t, *http);
  } else {
    configure_smtp(t, std::get<SmtpRequest>(t.request));
  }
}

void Transport::Impl::configure_http(Transfer& t, const HttpRequest& r) {
  CURL* e = t.easy.get();
  t.host = host_of(r.url);
  set(e, CURLOPT_URL, r.url.c_str());
  set(e, CURLOPT_PROTOCOLS_STR, "http,https");
  set(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(e, CURLOPT_FOLLOWLOCATION, r.follow_redirects ? 1L : 0L);
  set(e, CURLOPT_MAXREDIRS, 5L);
  set(e, CURLOPT_USERAGENT, kUserAgent);
  if (r.guard_destination) {
    t.allowed = &allowed;
    // Through a proxy the guard would judge the proxy's address, not the destination's.
    set(e, CURLOPT_PROXY, "");
  }
  if (r.method == "POST") {
    set(e, CURLOPT_POST, 1L);
  } else if (r.method == "GET") {
    set(e, CURLOPT_HTTPGET, 1L);
  } else {
    set(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (r.method != "GET" && (r.method == "POST" || !r.body.empty())) {
    set(e, CURLOPT_POSTFIELDS, r.body.data());
    set(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  }
  Slist headers;
  for (const auto& [name, value] : r.headers) {
    headers = append(std::move(headers), name + ": " + value);
  }
  headers = append(std::move(headers), "Expect:");  // no 100-continue round trip
  t.headers = std::move(headers);
  set(e, CURLOPT_HTTPHEADER, t.headers.get());
  if (!r.username.empty()) {
    set(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    set(e, CURLOPT_USERNAME, r.username.c_str());
    set(e, CURLOPT_PASSWORD, r.password.c_str());
  }
}

void Transport::Impl::configure_smtp(Transfer& t, const SmtpRequest& r) {
  CURL* e = t.easy.get();
  t.host = host_of(r.url);
  set(e, CURLOPT_URL, r.url.c_str());
  set(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  set(e, CURLOPT_USE_SSL,
      static_cast<long>(r.tls == SmtpTls::required ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  std::string from = "<" + r.mail_from + ">";
  set(e, CURLOPT_MAIL_FROM, from.c_str());  // curl copies string options
  Slist rcpt;
  for (const std::string& to : r.recipients) {
    rcpt = append(std::move(rcpt), "<" + to + ">");
  }
  t.recipients = std::move(rcpt);
  set(e, CURLOPT_MAIL_RCPT, t.recipients.get());
  set(e, CURLOPT_UPLOAD, 1L);
  set(e, CURLOPT_READFUNCTION, &on_upload);
  set(e, CURLOPT_READDATA, &t);
  set(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.payload.size()));
  if (!r.username.empty()) {
    set(e, CURLOPT_USERNAME, r.username.c_str());
    set(e, CURLOPT_PASSWORD, r.password.c_str());
  }
}

void Transport::Impl::finish(CURL* easy, CURLcode result) {
  auto it = in_flight.find(easy);
  curl_multi_remove_handle(multi, easy);
  if (it == in_flight.end()) {
    return;
  }
  std::unique_ptr<Transfer> t = std::move(it->second);
  in_flight.erase(it);
  Response& r = t->response;
  long code = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
  r.status_code = code;
  if (result != CURLE_OK) {
    r.transport_error = static_cast<int>(result);
    if (!t->refused.empty()) {
      r.transport_message = t->refused;
      r.destination_refused = true;
    } else if (t->error[0] != '\0') {
      r.transport_message = t->error;
    } else {
      r.transport_message = curl_easy_strerror(result);
    }
    // An SMTP server that refused with a reply code did answer: the code is the outcome.
    if (std::holds_alternative<SmtpRequest>(t->request) && code >= 400) {
      r.transport_error = 0;
    }
  }
  complete(*t);
}

void Transport::Impl::complete(Transfer& t) {
  if (t.started != SteadyClock::time_point{}) {
    t.response.duration = std::chrono::duration_cast<Millis>(SteadyClock::now() - t.started);
  }
  spdlog::debug("transport: {} host={} status={} error={} {}ms",
                std::holds_alternative<SmtpRequest>(t.request) ? "smtp" : "http", t.host,
                t.response.status_code, t.response.transport_error, t.response.duration.count());
  try {
    t.done(std::move(t.response));
  } catch (const std::exception& e) {
    spdlog::error("transport: completion handler threw: {}", e.what());
  } catch (...) {
    spdlog::error("transport: completion handler threw");
  }
}

}  // namespace herald::transport
