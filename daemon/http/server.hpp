// The HTTP/1.1 server under the API: keep-alive sessions, limits, timeouts, graceful stop.
// Routing is not its job: every request goes to one Handler, which answers through a Responder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw target, e.g. "/v1/deliveries?client=acme&limit=10"
  std::string path;    // percent-decoded path without the query, e.g. "/v1/deliveries"
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_address;

  std::optional<std::string> header(std::string_view lower_name) const;
  // The first value of `name`, when present.
  std::optional<std::string> query_param(std::string_view name) const;
};

// The body of a response too large to hold, produced piece by piece. The server asks for the
// next piece only once the previous one is written to the socket, so a slow reader slows the
// producer down (back-pressure) and memory holds one piece at a time.
// Called on the connection's strand, like a Handler, so it must not block for long (one page of
// a database read is fine). Returns the next piece (an empty one is skipped), std::nullopt once
// the body is complete, or an error: the status line went out with the first piece, so the
// server then closes the connection without ending the body, and the client sees a truncated
// transfer rather than a short one that looks complete. An exception counts as an error.
using BodySource = std::function<Result<std::optional<std::string>>()>;

struct Response {
  int status = 200;
  std::string content_type = "application/json";  // empty: no Content-Type header
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, `body` is ignored and the body comes from here, sent with chunked transfer
  // encoding (to an HTTP/1.0 client: unframed, then the connection closes). Each piece must be
  // written within idle_timeout, or the connection closes. HEAD never calls it.
  BodySource stream = nullptr;
};

// Must be called exactly once, from any thread, possibly later (after a database commit); the
// server posts the write back onto the connection's own strand. Calls after the first, after
// handler_timeout, after the connection died or after the server stopped are dropped safely.
using Responder = std::function<void(Response)>;
// Runs on the connection's strand (an io_context thread): must not block for long. An
// exception becomes a 500. A status outside 100..999 or a header with CR/LF is refused (500 /
// header dropped). Responses to HEAD keep Content-Length and lose the body.
using Handler = std::function<void(Request&&, Responder)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;             // 0 = pick a free port
  size_t body_limit = 1 << 20;      // beyond → 413 JSON error and close
  size_t header_limit = 16 * 1024;  // beyond → 431 JSON error and close
  Millis header_timeout{10'000};    // whole request (headers+body) must arrive within this
  Millis idle_timeout{60'000};      // keep-alive idle; also bounds writing a response
  Millis handler_timeout{60'000};   // a handler that never responds → 503
  int threads = 2;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();  // stop() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the threads; returns the bound port. The error names host:port
  // and why (e.g. "Address already in use"). A Server starts at most once.
  Result<uint16_t> start();
  // Graceful stop: close the acceptor, close idle keep-alive connections, let in-flight
  // requests finish up to `drain` (then close them), stop the io_context, join the threads.
  // Idempotent; must not be called from a handler (it joins the threads handlers run on).
  void stop(Millis drain = Millis{5'000});

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// One connection's bytes answered without a socket, for fuzzing and tests: INPUT goes through
// the same parser, limits, error answers and response writing as a real connection, request
// after request (pipelining) until one does not keep the connection alive or the bytes run out
// (a request cut short then gets no answer, as a peer that went away). Each request goes to
// HANDLER, with remote address "127.0.0.1"; an answer that has not come within
// options.handler_timeout is a 503 and the end. Returns every byte the server would have
// written, 100 Continue interim answers included. The timeouts on reading and writing do not
// apply (the bytes are all there), nor does options.threads.
std::string serve_bytes(const ServerOptions& options, std::string_view input,
                        const Handler& handler);

// Decodes %XX escapes (an invalid escape is kept as is); '+' becomes ' ' when asked.
std::string percent_decode(std::string_view s, bool plus_as_space);
// "a=1&b=x%20y&a=2" → {a,1},{b,x y},{a,2}; "k" and "k=" give an empty value; empty parts skipped.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);
// {"error":{"code":...,"message":...,"field":...}}, "field" omitted when empty.
std::string json_error_body(std::string_view code, std::string_view message,
                            std::string_view field = {});

}  // namespace herald::http
