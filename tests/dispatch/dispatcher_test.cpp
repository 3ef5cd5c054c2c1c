#include "daemon/dispatch/dispatcher.hpp"

#include <gtest/gtest.h>

namespace herald::dispatch {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(Backoff, FullJitterOverAnExponentialWindowWithACap) {
  DispatcherOptions o;
  o.retry_base = seconds(5);
  o.max_backoff = hours(1);
  o.min_backoff = Millis(500);
  struct Case {
    int attempt;
    double random01;
    Millis expected;
  } cases[] = {
      {1, 0.999999, Millis(4999)},    {1, 0.5, Millis(2500)}, {2, 0.5, Millis(5000)},
      {3, 1.0, Millis(20000)},        {1, 0.0, Millis(500)},  {20, 1.0, Millis(3'600'000)},
      {1000, 1.0, Millis(3'600'000)},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(backoff(c.attempt, o, c.random01), c.expected)
        << "attempt " << c.attempt << " r " << c.random01;
  }
}

Message message(int attempts, Timestamp created) {
  Message m;
  m.id = "msg_x";
  m.attempts = attempts;
  m.created_at = created;
  m.send_at = created;
  return m;
}

TEST(Decide, OutcomesTable) {
  DispatcherOptions o;
  o.retry_base = seconds(5);
  o.retry_horizon = hours(24);
  Timestamp t0{Millis{1'000'000'000'000}};
  Timestamp now = t0 + minutes(1);

  channels::Outcome delivered{channels::Verdict::delivered, "", std::nullopt, 200};
  auto d = decide(message(1, t0), delivered, now, o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::delivered);
  EXPECT_EQ(d.delivered_at, now);

  channels::Outcome permanent{channels::Verdict::permanent, "404 Not Found", std::nullopt, 404};
  d = decide(message(1, t0), permanent, now, o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::failed);
  EXPECT_EQ(d.last_error, "404 Not Found");

  channels::Outcome transient{channels::Verdict::retryable, "503", std::nullopt, 503};
  d = decide(message(2, t0), transient, now, o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, now + seconds(5));

  // Retry-After wins over a shorter backoff.
  channels::Outcome limited{channels::Verdict::retryable, "429", Millis(seconds(120)), 429};
  d = decide(message(1, t0), limited, now, o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, now + seconds(120));

  // Past the horizon: failed, saying how long it tried.
  d = decide(message(9, t0), transient, t0 + hours(24), o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::failed);
  EXPECT_NE(d.last_error.find("gave up after 9 attempts"), std::string::npos) << d.last_error;
}

}  // namespace
}  // namespace herald::dispatch
