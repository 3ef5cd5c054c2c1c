#include "daemon/dispatch/limits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace herald::dispatch {

std::string_view to_string(BreakerState state) {
  switch (state) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "closed";
}

std::optional<Timestamp> CircuitBreaker::admit(Timestamp now) {
  switch (state_) {
    case BreakerState::closed:
      return std::nullopt;
    case BreakerState::open:
      if (now < reopen_at_) {
        return reopen_at_;
      }
      state_ = BreakerState::half_open;
      probe_out_ = true;
      return std::nullopt;
    case BreakerState::half_open:
      if (!probe_out_) {
        probe_out_ = true;
        return std::nullopt;
      }
      return now + options_.probe_wait;
  }
  return std::nullopt;
}

void CircuitBreaker::record(bool failure, Timestamp now) {
  if (!failure) {
    state_ = BreakerState::closed;
    failures_ = 0;
    trips_ = 0;
    probe_out_ = false;
    return;
  }
  ++failures_;
  if (state_ == BreakerState::half_open) {
    trip(now);  // the probe failed
  } else if (state_ == BreakerState::closed && failures_ >= options_.failure_threshold) {
    trip(now);
  }
  // Open: an attempt that left before it opened; the pause already runs.
}

void CircuitBreaker::trip(Timestamp now) {
  double factor = std::pow(2.0, std::min(trips_, 30));
  double pause = std::min(static_cast<double>(options_.cool_down.count()) * factor,
                          static_cast<double>(options_.max_cool_down.count()));
  state_ = BreakerState::open;
  reopen_at_ = now + Millis{static_cast<int64_t>(pause)};
  probe_out_ = false;
  ++trips_;
}

Result<Rate> parse_rate(std::string_view text) {
  auto invalid = [&] {
    return make_error(ErrorKind::invalid, "invalid_rate",
                      fmt::format("expected a rate like \"1/s\", \"30/m\" or \"1/s burst 3\", "
                                  "got \"{}\"",
                                  text));
  };
  std::string_view s = text;
  auto number = [](std::string_view& in, double& out) {
    size_t n = 0;
    while (n < in.size() && (std::isdigit(static_cast<unsigned char>(in[n])) || in[n] == '.')) {
      ++n;
    }
    if (n == 0) {
      return false;
    }
    auto [p, ec] = std::from_chars(in.data(), in.data() + n, out);
    if (ec != std::errc() || p != in.data() + n) {
      return false;
    }
    in.remove_prefix(n);
    return true;
  };
  Rate rate;
  double count = 0;
  if (!number(s, count) || count <= 0 || s.size() < 2 || s[0] != '/') {
    return invalid();
  }
  double seconds = s[1] == 's' ? 1 : s[1] == 'm' ? 60 : s[1] == 'h' ? 3600 : 0;
  if (seconds == 0) {
    return invalid();
  }
  s.remove_prefix(2);
  rate.per_second = count / seconds;
  rate.burst = std::max(1.0, std::floor(std::min(count, rate.per_second)));
  if (!s.empty()) {
    constexpr std::string_view kBurst = " burst ";
    double burst = 0;
    if (s.substr(0, kBurst.size()) != kBurst) {
      return invalid();
    }
    s.remove_prefix(kBurst.size());
    if (!number(s, burst) || burst < 1 || !s.empty()) {
      return invalid();
    }
    rate.burst = std::floor(burst);
  }
  return rate;
}

TokenBucket::TokenBucket(Rate rate, Timestamp now) : rate_(rate), tokens_(rate.burst), last_(now) {}

void TokenBucket::refill(Timestamp now) {
  if (now > last_) {
    double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(rate_.burst, tokens_ + elapsed * rate_.per_second);
    last_ = now;
  }
}

std::optional<Timestamp> TokenBucket::available_at(Timestamp now) {
  if (rate_.per_second <= 0) {
    return std::nullopt;
  }
  refill(now);
  if (tokens_ >= 1.0 - 1e-9) {
    return std::nullopt;
  }
  double wait_ms = std::ceil((1.0 - tokens_) / rate_.per_second * 1000.0);
  return now + Millis{static_cast<int64_t>(wait_ms)};
}

void TokenBucket::take(Timestamp now, double cost) {
  if (rate_.per_second <= 0) {
    return;
  }
  refill(now);
  tokens_ -= std::max(cost, 1.0);
}

std::string destination_of(std::string_view url) {
  std::string scheme;
  if (auto p = url.find("://"); p != std::string_view::npos) {
    for (char c : url.substr(0, p)) {
      scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    url.remove_prefix(p + 3);
  }
  url = url.substr(0, url.find_first_of("/?#"));
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    url.remove_prefix(at + 1);  // user info: credentials never leave here
  }
  std::string host;
  for (char c : url) {
    host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  bool has_port = false;
  if (auto colon = host.rfind(':'); colon != std::string::npos) {
    auto bracket = host.rfind(']');
    has_port = bracket == std::string::npos || colon > bracket;
  }
  if (!has_port) {
    std::string_view port = scheme == "https"   ? "443"
                            : scheme == "smtps" ? "465"
                            : scheme == "smtp"  ? "25"
                                                : "80";
    host += ":";
    host += port;
  }
  return host;
}

}  // namespace herald::dispatch
