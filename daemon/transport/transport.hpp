// The one libcurl wrapper: a thread that owns a long-lived multi handle and carries channel
// requests (HTTP and SMTP) to their destinations, with the outbound guard against private
// addresses. Callers never see curl; they submit a channels::Request and get a Response.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channels/channel.hpp"
#include "daemon/core/cidr.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::transport {

using herald::Cidr;
using herald::parse_cidr;

// Why a destination is refused ("a private address", "a loopback address", ...), or nullopt
// when it may be contacted: public, or inside one of the allowed ranges.
std::optional<std::string> forbidden_reason(const sockaddr* addr, const std::vector<Cidr>& allowed);
bool is_forbidden_destination(const sockaddr* addr, const std::vector<Cidr>& allowed);

struct TransportOptions {
  std::vector<std::string> allow_private;  // CIDRs like "127.0.0.0/8", "::1/128"
  Millis connect_timeout{10'000};
  Millis total_timeout{30'000};          // for requests that carry no timeout of their own
  size_t max_response_body = 64 * 1024;  // longer bodies are truncated, not an error
  int max_in_flight = 64;                // further requests wait in a queue
};

class Transport {
 public:
  // Starts the transport thread. Throws std::invalid_argument when an allow_private entry is
  // not a CIDR (a start-up configuration error).
  explicit Transport(TransportOptions options);
  ~Transport();  // stop() then join
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  using Done = std::function<void(channels::Response)>;
  // Thread-safe. `done` is called exactly once, on the transport thread; requests still queued
  // or in flight at stop() complete with a transport_error and message "transport stopped".
  // After stop() has returned, `done` runs at once on the caller's thread with that same error.
  void submit(channels::Request request, Done done);
  // Submits several at once (one wake-up of the transport thread), as submit() each.
  void submit(std::vector<std::pair<channels::Request, Done>> requests);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::transport
