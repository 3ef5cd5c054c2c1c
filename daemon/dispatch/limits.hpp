// Per-destination protection for the dispatcher: a circuit breaker that stops hammering a
// destination that keeps failing, and a token bucket that keeps Herald under provider limits.
// Pure classes with the time passed in, so tests drive them with a fake clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::dispatch {

struct BreakerOptions {
  int failure_threshold = 5;      // consecutive retryable failures that open it
  Millis cool_down{30'000};       // the first pause; doubles on every trip in a row
  Millis max_cool_down{300'000};  // no pause is longer
  Millis probe_wait{1'000};       // others wait this long while the probe is out
};

enum class BreakerState { closed, open, half_open };
std::string_view to_string(BreakerState state);

class CircuitBreaker {
 public:
  explicit CircuitBreaker(BreakerOptions options = {}) : options_(options) {}

  // Whether an attempt may go now: nullopt when it may (once open, the first attempt after the
  // cool-down is the probe), otherwise the time to try again.
  std::optional<Timestamp> admit(Timestamp now);
  // An attempt's result: `failure` for a retryable one. Permanent answers prove the
  // destination alive and count as successes here.
  void record(bool failure, Timestamp now);

  BreakerState state() const { return state_; }
  Timestamp reopen_at() const { return reopen_at_; }
  int consecutive_failures() const { return failures_; }

 private:
  void trip(Timestamp now);

  BreakerOptions options_;
  BreakerState state_ = BreakerState::closed;
  int failures_ = 0;
  int trips_ = 0;  // in a row, without a success in between
  Timestamp reopen_at_{};
  bool probe_out_ = false;
};

// "N/s", "N/m" or "N/h" with an optional burst ("1/s burst 3"); N > 0.
struct Rate {
  double per_second = 0;  // 0: unlimited
  double burst = 1;
};
Result<Rate> parse_rate(std::string_view text);

class TokenBucket {
 public:
  TokenBucket(Rate rate, Timestamp now);
  // nullopt when a token is there now, otherwise when the next one will be.
  std::optional<Timestamp> available_at(Timestamp now);
  // Takes `cost` tokens (call after available_at said yes). A cost above what is left (an SMS
  // of several segments against "1 segment/s") leaves a debt the next takes wait out.
  void take(Timestamp now, double cost = 1);

 private:
  void refill(Timestamp now);

  Rate rate_;
  double tokens_;
  Timestamp last_;
};

// "host:port" of a URL (default ports filled in, user info and path dropped): what the
// breaker is keyed by and what metrics may show.
std::string destination_of(std::string_view url);

}  // namespace herald::dispatch
