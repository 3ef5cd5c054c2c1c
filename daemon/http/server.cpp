// Must precede Asio: with GCC 12 in C++20 mode <boost/asio.hpp> uses std::exchange without it.
#include <utility>

#include "daemon/http/server.hpp"

#include <pthread.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace herald::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using beast::error_code;

namespace {

// After an error response the client may still be sending (a body over the limit); reading and
// discarding for a moment before closing keeps the kernel from answering with a RST that would
// destroy the error response before the client reads it (Apache's "lingering close").
constexpr Millis kLingerTimeout{1'000};
constexpr size_t kLingerMaxBytes = 8u << 20;
// Time given to force-closed sessions to unwind before the io_context stops.
constexpr Millis kForceCloseGrace{500};
constexpr Millis kAcceptRetryDelay{100};
constexpr size_t kFirstReadSize = 4096;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string to_string(beast::string_view s) {
  return std::string(s.data(), s.size());
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && to_lower(a) == to_lower(b);
}

Response error_response(int status, std::string_view code, std::string_view message) {
  Response response;
  response.status = status;
  response.body = json_error_body(code, message);
  return response;
}

bool is_header_safe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool is_http_error(const error_code& ec) {
  return ec.category() == make_error_code(bhttp::error::bad_method).category();
}

}  // namespace

std::optional<std::string> Request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) {
      return value;
    }
  }
  return std::nullopt;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

std::string percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) {
      continue;
    }
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(percent_decode(part, true), std::string{});
    } else {
      out.emplace_back(percent_decode(part.substr(0, eq), true),
                       percent_decode(part.substr(eq + 1), true));
    }
  }
  return out;
}

std::string json_error_body(std::string_view code, std::string_view message,
                            std::string_view field) {
  nlohmann::json error = {{"code", std::string(code)}, {"message", std::string(message)}};
  if (!field.empty()) {
    error["field"] = std::string(field);
  }
  const nlohmann::json body = {{"error", std::move(error)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// ---- what a real connection and serve_bytes() share: limits, errors, requests, response heads --

using RequestParser = bhttp::request_parser<bhttp::string_body>;

void apply_limits(RequestParser& parser, const ServerOptions& options) {
  parser.body_limit(options.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(options.header_limit, std::numeric_limits<std::uint32_t>::max())));
}

// What the response to a request needs to know about it; the defaults until its header is in.
struct RequestHead {
  unsigned version = 11;
  bool head = false;
  std::string method = "-";
  std::string path = "-";
};

RequestHead head_of(const RequestParser& parser) {
  const auto& req = parser.get();
  RequestHead head;
  head.version = req.version();
  head.head = req.method() == bhttp::verb::head;
  head.method = to_string(req.method_string());
  const std::string target = to_string(req.target());
  head.path = percent_decode(std::string_view(target).substr(0, target.find('?')), false);
  return head;
}

bool expects_continue(const RequestParser& parser) {
  const auto& req = parser.get();
  const auto expect = req.find(bhttp::field::expect);
  return expect != req.end() && iequals(to_string(expect->value()), "100-continue");
}

// The answer to a request that could not be read, or nullopt when there is nobody to answer
// (timeout, peer gone mid-request, stop()): the connection just closes.
std::optional<Response> read_error_answer(const error_code& ec, const ServerOptions& options) {
  if (ec == bhttp::error::body_limit) {
    return error_response(413, "body_too_large",
                          fmt::format("the request body exceeds {} bytes", options.body_limit));
  }
  if (ec == bhttp::error::header_limit) {
    return error_response(431, "headers_too_large",
                          fmt::format("the request headers exceed {} bytes", options.header_limit));
  }
  if (is_http_error(ec) && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    return error_response(400, "bad_request", fmt::format("malformed request: {}", ec.message()));
  }
  spdlog::debug("http: closing connection while reading: {}", ec.message());
  return std::nullopt;
}

Request to_request(bhttp::request<bhttp::string_body>&& req, const RequestHead& head,
                   const std::string& remote_address) {
  Request request;
  request.method = head.method;
  request.target = to_string(req.target());
  const size_t question = request.target.find('?');
  request.path = head.path;
  if (question != std::string::npos) {
    request.query = parse_query(std::string_view(request.target).substr(question + 1));
  }
  request.headers.reserve(static_cast<size_t>(std::distance(req.begin(), req.end())));
  for (const auto& field : req) {
    request.headers.emplace_back(to_lower(to_string(field.name_string())),
                                 to_string(field.value()));
  }
  request.body = std::move(req.body());
  request.remote_address = remote_address;
  return request;
}

bool is_streamed(const Response& response) {
  return response.stream && response.status >= 200 && response.status <= 999 &&
         response.status != 204 && response.status != 304;
}

// A status outside 100..999 is the handler's bug: the client gets a 500.
Response checked(Response response, const RequestHead& head) {
  if (response.status < 100 || response.status > 999) {
    spdlog::error("http: handler answered {} {} with invalid status {}", head.method, head.path,
                  response.status);
    return error_response(500, "internal", "internal error");
  }
  return response;
}

// Status line and headers; a header that could split the response is dropped.
template <class Body>
void fill_head(bhttp::response<Body>& res, const Response& response, const RequestHead& head) {
  res.version(head.version);
  res.result(static_cast<unsigned>(response.status));
  for (const auto& [name, value] : response.headers) {
    // Beast 1.74 does not reject CR/LF: a value built from input must not split the response.
    if (!is_header_safe(name) || !is_header_safe(value) || name.empty()) {
      spdlog::error("http: dropping an invalid response header on {} {}", head.method, head.path);
      continue;
    }
    res.insert(name, value);
  }
  res.set(bhttp::field::server, "herald");
  if (!response.content_type.empty() && is_header_safe(response.content_type)) {
    res.set(bhttp::field::content_type, response.content_type);
  }
}

// A whole (not streamed) response; HEAD keeps Content-Length and loses the body.
void fill_response(bhttp::response<bhttp::string_body>& res, Response&& response,
                   const RequestHead& head, bool keep) {
  fill_head(res, response, head);
  const int status = response.status;
  const bool bodiless = (status >= 100 && status < 200) || status == 204 || status == 304;
  if (!bodiless) {
    res.content_length(response.body.size());
    if (!head.head) {
      res.body() = std::move(response.body);
    }
  }
  res.keep_alive(keep);
  spdlog::debug("http: {} {} {}", head.method, head.path, status);
}

// The next piece of a streamed body; an exception counts as an error.
Result<std::optional<std::string>> next_piece_of(const BodySource& source) {
  try {
    return source();
  } catch (const std::exception& e) {
    return make_error(ErrorKind::internal, "internal", e.what());
  } catch (...) {
    return make_error(ErrorKind::internal, "internal", "unknown exception");
  }
}

class Session;

// What the listener, the sessions and the responders share. It holds no Asio object, so a
// responder may keep it alive after the io_context is gone.
class State {
 public:
  State(ServerOptions options, Handler handler)
      : options(std::move(options)), handler(std::move(handler)) {}

  const ServerOptions options;
  const Handler handler;

  // False once stop() has begun: new connections are refused.
  bool add(Session* raw, std::weak_ptr<Session> session) {
    std::lock_guard lock(sessions_mutex_);
    if (stopping_) {
      return false;
    }
    sessions_.emplace(raw, std::move(session));
    return true;
  }

  void remove(Session* raw) {
    {
      std::lock_guard lock(sessions_mutex_);
      sessions_.erase(raw);
    }
    sessions_changed_.notify_all();
  }

  std::vector<std::shared_ptr<Session>> begin_stop() {
    std::lock_guard lock(sessions_mutex_);
    stopping_ = true;
    return snapshot_locked();
  }

  std::vector<std::shared_ptr<Session>> snapshot() {
    std::lock_guard lock(sessions_mutex_);
    return snapshot_locked();
  }

  // True when every session is gone before `timeout`.
  bool wait_empty(Millis timeout) {
    std::unique_lock lock(sessions_mutex_);
    return sessions_changed_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
  }

  // The gate keeps responders from posting to an io_context that is stopping or destroyed:
  // `fn` runs under the gate lock only while it is open.
  template <class Fn>
  void with_open_gate(Fn&& fn) {
    std::lock_guard lock(gate_mutex_);
    if (gate_open_) {
      fn();
    }
  }

  void close_gate() {
    std::lock_guard lock(gate_mutex_);
    gate_open_ = false;
  }

 private:
  std::vector<std::shared_ptr<Session>> snapshot_locked() {
    std::vector<std::shared_ptr<Session>> out;
    for (auto& [raw, weak] : sessions_) {
      if (auto session = weak.lock()) {
        out.push_back(std::move(session));
      }
    }
    return out;
  }

  std::mutex sessions_mutex_;
  std::condition_variable sessions_changed_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  bool stopping_ = false;

  // Separate from sessions_mutex_: dropping the last reference to a session under the gate
  // runs ~Session, which takes sessions_mutex_.
  std::mutex gate_mutex_;
  bool gate_open_ = true;
};

// One connection. Every member is touched only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  using Executor = beast::tcp_stream::executor_type;

  Session(tcp::socket&& socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        handler_timer_(executor_),
        state_(std::move(state)) {
    error_code ec;
    const auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_address_ = remote.address().to_string();
    }
  }

  ~Session() { state_->remove(this); }

  const Executor& executor() const { return executor_; }

  void run() {
    net::dispatch(executor_, beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

  // Server stop: an idle connection closes now; one with a request in flight closes after
  // its response.
  void stop() {
    stopping_ = true;
    if (phase_ == Phase::idle) {
      do_close();
    }
  }

  void force_close() { do_close(); }

  void on_response(uint64_t seq, Response response) {
    if (seq != seq_ || !awaiting_ || closed_) {
      return;  // a late answer after a timeout, a duplicate, or the connection is gone
    }
    awaiting_ = false;
    handler_timer_.cancel();
    do_write(std::move(response), false, false);
  }

 private:
  enum class Phase { idle, reading, handling, writing, closing };

  const ServerOptions& options() const { return state_->options; }

  void do_read() {
    if (stopping_ || closed_) {
      do_close();
      return;
    }
    parser_.emplace();
    apply_limits(*parser_, options());
    head_ = {};
    if (buffer_.size() > 0) {
      do_read_header();  // a pipelined request is already here
      return;
    }
    // Waiting for the first byte is the keep-alive idle time; a brand new connection that
    // sends nothing gets only the header timeout.
    phase_ = Phase::idle;
    stream_.expires_after(first_request_ ? options().header_timeout : options().idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kFirstReadSize),
        beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(error_code ec, size_t bytes) {
    if (ec) {
      do_close();  // idle timeout, peer closed, or stop()
      return;
    }
    buffer_.commit(bytes);
    do_read_header();
  }

  void do_read_header() {
    phase_ = Phase::reading;
    // One deadline for the whole request, headers and body: the slowloris guard.
    stream_.expires_after(options().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(error_code ec, size_t) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    head_ = head_of(*parser_);
    if (parser_->is_done()) {
      on_request();
      return;
    }
    if (expects_continue(*parser_)) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       beast::bind_front_handler(&Session::on_continue, shared_from_this()));
      return;
    }
    do_read_body();
  }

  void on_continue(error_code ec, size_t) {
    if (ec) {
      do_close();
      return;
    }
    do_read_body();
  }

  void do_read_body() {
    // The deadline set in do_read_header still runs: it bounds the whole request.
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, size_t) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    on_request();
  }

  void on_read_error(const error_code& ec) {
    if (auto answer = read_error_answer(ec, options())) {
      do_write(std::move(*answer), true, true);
    } else {
      do_close();  // timeout (slow client), peer gone mid-request, or stop()
    }
  }

  void on_request() {
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    Request request = to_request(std::move(req), head_, remote_address_);

    phase_ = Phase::handling;
    const uint64_t seq = ++seq_;
    awaiting_ = true;
    handler_timer_.expires_after(options().handler_timeout);
    handler_timer_.async_wait(
        beast::bind_front_handler(&Session::on_handler_timeout, shared_from_this(), seq));
    try {
      state_->handler(std::move(request), make_responder(seq));
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed on {} {}: {}", head_.method, head_.path, e.what());
      make_responder(seq)(error_response(500, "internal", "internal error"));
    } catch (...) {
      spdlog::error("http: handler failed on {} {}: unknown exception", head_.method, head_.path);
      make_responder(seq)(error_response(500, "internal", "internal error"));
    }
  }

  // Holds the session weakly: a handler that keeps its responder does not keep the connection
  // (or, after stop(), the io_context) alive; the handler timer holds the session meanwhile.
  Responder make_responder(uint64_t seq) {
    return [state = state_, weak = weak_from_this(), seq](Response response) {
      state->with_open_gate([&] {
        if (auto self = weak.lock()) {
          const auto executor = self->executor();
          net::post(executor,
                    [self = std::move(self), seq, response = std::move(response)]() mutable {
                      self->on_response(seq, std::move(response));
                    });
        }
      });
    };
  }

  void on_handler_timeout(uint64_t seq, error_code ec) {
    if (ec || seq != seq_ || !awaiting_ || closed_) {
      return;
    }
    awaiting_ = false;
    spdlog::warn("http: handler did not answer {} {} within {} ms", head_.method, head_.path,
                 options().handler_timeout.count());
    do_write(error_response(503, "timeout", "the request took too long; retry later"), true, false);
  }

  void do_write(Response response, bool close, bool linger) {
    if (closed_) {
      return;
    }
    if (is_streamed(response)) {
      do_write_stream(std::move(response));
      return;
    }
    phase_ = Phase::writing;
    res_ = {};
    const bool keep = keep_alive_ && !close && !stopping_;
    fill_response(res_, checked(std::move(response), head_), head_, keep);

    stream_.expires_after(options().idle_timeout);
    bhttp::async_write(
        stream_, res_,
        beast::bind_front_handler(&Session::on_write, shared_from_this(), keep, linger));
  }

  // ---- a streamed response: the head, then one chunk per piece the source gives ------------

  void do_write_stream(Response response) {
    phase_ = Phase::writing;
    source_ = std::move(response.stream);
    stream_res_ = {};
    fill_head(stream_res_, response, head_);
    // HTTP/1.0 has no chunked encoding: the end of the connection ends the body.
    chunked_ = head_.version >= 11;
    const bool keep = keep_alive_ && !stopping_ && chunked_;
    if (chunked_) {
      stream_res_.chunked(true);
    }
    stream_res_.keep_alive(keep);
    spdlog::debug("http: {} {} {} (streamed)", head_.method, head_.path, response.status);
    stream_sr_.emplace(stream_res_);
    stream_.expires_after(options().idle_timeout);
    bhttp::async_write_header(
        stream_, *stream_sr_,
        beast::bind_front_handler(&Session::on_stream_head, shared_from_this(), keep));
  }

  void on_stream_head(bool keep, error_code ec, size_t) {
    if (ec) {
      end_stream();
      do_close();
      return;
    }
    if (head_.head) {
      end_stream();
      on_write(keep, false, {}, 0);
      return;
    }
    next_piece(keep);
  }

  void next_piece(bool keep) {
    if (closed_) {
      end_stream();
      return;
    }
    Result<std::optional<std::string>> next = next_piece_of(source_);
    if (!next) {
      spdlog::error("http: streaming {} {} failed: {}", head_.method, head_.path,
                    next.error().message);
      end_stream();
      do_close();  // no last chunk: the client must not take the body for complete
      return;
    }
    stream_.expires_after(options().idle_timeout);
    if (!next->has_value()) {
      end_stream();
      if (!chunked_) {
        on_write(false, false, {}, 0);
        return;
      }
      net::async_write(
          stream_, bhttp::make_chunk_last(),
          beast::bind_front_handler(&Session::on_write, shared_from_this(), keep, false));
      return;
    }
    piece_ = std::move(**next);
    if (piece_.empty()) {
      net::post(executor_,
                beast::bind_front_handler(&Session::next_piece, shared_from_this(), keep));
      return;
    }
    if (chunked_) {
      net::async_write(stream_, bhttp::make_chunk(net::buffer(piece_)),
                       beast::bind_front_handler(&Session::on_piece, shared_from_this(), keep));
    } else {
      net::async_write(stream_, net::buffer(piece_),
                       beast::bind_front_handler(&Session::on_piece, shared_from_this(), keep));
    }
  }

  void on_piece(bool keep, error_code ec, size_t) {
    if (ec) {
      spdlog::debug("http: streaming {} {} stopped: {}", head_.method, head_.path, ec.message());
      end_stream();
      do_close();
      return;
    }
    next_piece(keep);
  }

  // Lets go of the source (and whatever it holds) and of the last piece.
  void end_stream() {
    source_ = nullptr;
    std::string().swap(piece_);
    stream_sr_.reset();
  }

  void on_write(bool keep, bool linger, error_code ec, size_t) {
    if (ec) {
      do_close();
      return;
    }
    if (!keep || stopping_) {
      if (linger) {
        do_linger();
      } else {
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        do_close();
      }
      return;
    }
    first_request_ = false;
    do_read();
  }

  void do_linger() {
    phase_ = Phase::closing;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTimeout);
    continue_linger();
  }

  void continue_linger() {
    stream_.async_read_some(net::buffer(linger_buffer_),
                            beast::bind_front_handler(&Session::on_linger, shared_from_this()));
  }

  void on_linger(error_code ec, size_t bytes) {
    lingered_ += bytes;
    if (ec || lingered_ > kLingerMaxBytes) {
      do_close();
      return;
    }
    continue_linger();  // still under the deadline set in do_linger
  }

  void do_close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    awaiting_ = false;
    phase_ = Phase::closing;
    handler_timer_.cancel();
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const Executor executor_;
  net::steady_timer handler_timer_;
  std::shared_ptr<State> state_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  // A streamed response: its head, the head's serializer, the source and the piece in flight.
  bhttp::response<bhttp::empty_body> stream_res_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_sr_;
  BodySource source_;
  std::string piece_;
  bool chunked_ = false;
  std::array<char, 64 * 1024> linger_buffer_{};
  size_t lingered_ = 0;
  std::string remote_address_;

  Phase phase_ = Phase::idle;
  bool first_request_ = true;
  bool stopping_ = false;
  bool closed_ = false;
  bool awaiting_ = false;  // the handler has not answered request seq_ yet
  uint64_t seq_ = 0;
  // What the response to the current request needs to know about it.
  RequestHead head_;
  bool keep_alive_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, std::shared_ptr<State> state)
      : ioc_(ioc),
        acceptor_(net::make_strand(ioc)),
        retry_timer_(acceptor_.get_executor()),
        state_(std::move(state)) {}

  // Returns the failing step ("open", "bind", "listen") and why.
  std::optional<std::pair<std::string, error_code>> open(const tcp::endpoint& endpoint) {
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) {
      return std::pair{std::string("open"), ec};
    }
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) {
      return std::pair{std::string("setsockopt"), ec};
    }
    acceptor_.bind(endpoint, ec);
    if (ec) {
      return std::pair{std::string("bind"), ec};
    }
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return std::pair{std::string("listen"), ec};
    }
    return std::nullopt;
  }

  uint16_t port() const {
    error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  void run() {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&Listener::do_accept, shared_from_this()));
  }

  void close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_timer_.cancel();
    });
  }

 private:
  void do_accept() {
    if (!acceptor_.is_open()) {
      return;
    }
    // Each connection gets its own strand: its handlers never run concurrently.
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) {
      return;
    }
    if (ec) {
      // E.g. out of file descriptors: back off instead of spinning, keep accepting.
      spdlog::warn("http: accept failed: {}", ec.message());
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([self = shared_from_this()](error_code timer_ec) {
        if (!timer_ec) {
          self->do_accept();
        }
      });
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), state_);
    if (state_->add(session.get(), session)) {
      session->run();
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::shared_ptr<State> state_;
};

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, Handler handler)
      : state_(std::make_shared<State>(std::move(options), std::move(handler))),
        ioc_(std::max(1, state_->options.threads)) {}

  ~Impl() { stop(Millis{5'000}); }

  Result<uint16_t> start() {
    const auto& options = state_->options;
    const auto fail = [&](std::string_view step, const error_code& ec) {
      return make_error(ErrorKind::unavailable, "listen_failed",
                        fmt::format("cannot listen on {}:{}: {}: {}", options.host, options.port,
                                    step, ec.message()));
    };
    if (started_) {
      return make_error(ErrorKind::internal, "already_started", "the server was already started");
    }
    error_code ec;
    tcp::endpoint endpoint;
    const auto address = net::ip::make_address(options.host, ec);
    if (!ec) {
      endpoint = tcp::endpoint(address, options.port);
    } else {
      tcp::resolver resolver(ioc_);
      const auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
      if (ec || results.empty()) {
        return fail("resolve", ec ? ec : make_error_code(net::error::host_not_found));
      }
      endpoint = results.begin()->endpoint();
    }
    listener_ = std::make_shared<Listener>(ioc_, state_);
    if (auto failure = listener_->open(endpoint)) {
      listener_.reset();
      return fail(failure->first, failure->second);
    }
    const uint16_t port = listener_->port();
    listener_->run();
    started_ = true;
    const int threads = std::max(1, options.threads);
    threads_.reserve(static_cast<size_t>(threads));
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "herald-http");  // for top -H, perf and benchmarks
        ioc_.run();
      });
    }
    spdlog::info("http: listening on {}:{}", options.host, port);
    return port;
  }

  void stop(Millis drain) {
    if (!started_ || stopped_) {
      return;
    }
    stopped_ = true;
    listener_->close();
    {
      auto sessions = state_->begin_stop();
      for (auto& session : sessions) {
        net::post(session->executor(), [session] { session->stop(); });
      }
    }  // our references must go, or the sessions could never finish
    if (!state_->wait_empty(drain)) {
      auto sessions = state_->snapshot();
      spdlog::warn("http: closing {} connection(s) still busy after the drain", sessions.size());
      for (auto& session : sessions) {
        net::post(session->executor(), [session] { session->force_close(); });
      }
      sessions.clear();
      (void)state_->wait_empty(kForceCloseGrace);
    }
    state_->close_gate();
    ioc_.stop();
    for (auto& thread : threads_) {
      thread.join();
    }
    threads_.clear();
    spdlog::info("http: stopped");
  }

 private:
  std::shared_ptr<State> state_;
  net::io_context ioc_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  bool started_ = false;
  bool stopped_ = false;
};

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

Result<uint16_t> Server::start() {
  return impl_->start();
}

void Server::stop(Millis drain) {
  impl_->stop(drain);
}

namespace {

// A connection made of memory: reads come from the input (end of file once it is used up),
// writes go to the output. Beast's synchronous algorithms run over it as over a socket.
class MemoryStream {
 public:
  MemoryStream(std::string_view input, std::string& output) : input_(input), output_(output) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    if (input_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    ec = {};
    const size_t n = net::buffer_copy(buffers, net::buffer(input_.data(), input_.size()));
    input_.remove_prefix(n);
    return n;
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) {
      throw boost::system::system_error(ec);
    }
    return n;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    ec = {};
    output_ += beast::buffers_to_string(buffers);
    return net::buffer_size(buffers);
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    return write_some(buffers, ec);
  }

 private:
  std::string_view input_;
  std::string& output_;
};

// The first answer a handler gives, waited for with a deadline.
struct Answer {
  std::mutex mutex;
  std::condition_variable ready;
  std::optional<Response> response;
};

Response wait_for_answer(const Handler& handler, Request&& request, const RequestHead& head,
                         Millis timeout, bool& timed_out) {
  auto answer = std::make_shared<Answer>();
  const Responder respond = [answer](Response response) {
    std::lock_guard lock(answer->mutex);
    if (!answer->response) {
      answer->response = std::move(response);
      answer->ready.notify_all();
    }
  };
  try {
    handler(std::move(request), respond);
  } catch (const std::exception& e) {
    spdlog::error("http: handler failed on {} {}: {}", head.method, head.path, e.what());
    respond(error_response(500, "internal", "internal error"));
  } catch (...) {
    spdlog::error("http: handler failed on {} {}: unknown exception", head.method, head.path);
    respond(error_response(500, "internal", "internal error"));
  }
  std::unique_lock lock(answer->mutex);
  timed_out = !answer->ready.wait_for(lock, timeout, [&] { return answer->response.has_value(); });
  if (timed_out) {
    spdlog::warn("http: handler did not answer {} {} within {} ms", head.method, head.path,
                 timeout.count());
    return error_response(503, "timeout", "the request took too long; retry later");
  }
  return std::move(*answer->response);
}

// Writes a streamed response as do_write_stream does; false when the connection must close.
bool write_streamed(MemoryStream& stream, Response&& response, const RequestHead& head,
                    bool keep_alive) {
  bhttp::response<bhttp::empty_body> res;
  fill_head(res, response, head);
  const bool chunked = head.version >= 11;
  const bool keep = keep_alive && chunked;
  if (chunked) {
    res.chunked(true);
  }
  res.keep_alive(keep);
  bhttp::response_serializer<bhttp::empty_body> serializer(res);
  error_code ec;
  bhttp::write_header(stream, serializer, ec);
  if (ec || head.head) {
    return !ec && keep;
  }
  for (;;) {
    auto next = next_piece_of(response.stream);
    if (!next) {
      spdlog::error("http: streaming {} {} failed: {}", head.method, head.path,
                    next.error().message);
      return false;  // no last chunk: the body must not look complete
    }
    if (!next->has_value()) {
      if (chunked) {
        net::write(stream, bhttp::make_chunk_last(), ec);
      }
      return keep;
    }
    if ((*next)->empty()) {
      continue;
    }
    if (chunked) {
      net::write(stream, bhttp::make_chunk(net::buffer(**next)), ec);
    } else {
      net::write(stream, net::buffer(**next), ec);
    }
  }
}

}  // namespace

std::string serve_bytes(const ServerOptions& options, std::string_view input,
                        const Handler& handler) {
  std::string output;
  MemoryStream stream(input, output);
  beast::flat_buffer buffer;
  for (bool keep = true; keep;) {
    RequestParser parser;
    apply_limits(parser, options);
    RequestHead head;
    error_code ec;
    bhttp::read_header(stream, buffer, parser, ec);
    if (!ec) {
      head = head_of(parser);
      if (!parser.is_done()) {
        if (expects_continue(parser)) {
          net::write(stream, net::buffer(kContinue.data(), kContinue.size()), ec);
        }
        bhttp::read(stream, buffer, parser, ec);
      }
    }
    if (ec) {
      if (auto answer = read_error_answer(ec, options)) {
        bhttp::response<bhttp::string_body> res;
        fill_response(res, std::move(*answer), head, false);
        bhttp::write(stream, res, ec);
      }
      break;
    }
    auto req = parser.release();
    const bool keep_alive = req.keep_alive();
    bool timed_out = false;
    Response response = wait_for_answer(handler, to_request(std::move(req), head, "127.0.0.1"),
                                        head, options.handler_timeout, timed_out);
    if (is_streamed(response)) {
      keep = write_streamed(stream, std::move(response), head, keep_alive);
      continue;
    }
    keep = keep_alive && !timed_out;
    bhttp::response<bhttp::string_body> res;
    fill_response(res, checked(std::move(response), head), head, keep);
    bhttp::write(stream, res, ec);
  }
  return output;
}

}  // namespace herald::http
