// Time for the whole daemon: one timestamp type, an injectable clock, RFC 3339 and durations.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
using Millis = std::chrono::milliseconds;

// Time source; tests inject a ManualClock and drive time instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_(start) {}
  Timestamp now() const override { return now_; }
  void set(Timestamp t) { now_ = t; }
  void advance(Millis d) { now_ += d; }

 private:
  Timestamp now_;
};

// "2026-12-04T10:00:00Z" (milliseconds shown only when not zero).
std::string format_rfc3339(Timestamp t);
// Accepts RFC 3339 with "Z" or a numeric offset and optional fractional seconds.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// Durations as in the contract: "90s", "15m", "2h", "1d", "500ms", combinations like "1h30m".
std::optional<Millis> parse_duration(std::string_view text);
// The shortest spelling parse_duration reads back: "0s", "90s", "15m", "1h30m".
std::string format_duration(Millis d);

}  // namespace herald
