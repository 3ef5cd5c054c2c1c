#include "daemon/dispatch/dispatcher.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace herald::dispatch {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(RetryWait, DefaultScheduleIsStandardWebhooksWithJitterBelowEachStep) {
  DispatcherOptions o;  // the defaults: 5s, 5m, 30m, 2h, 5h, 10h; jitter 0.2; no cap
  struct Case {
    int attempt;
    double random01;
    Millis expected;
  } cases[] = {
      {1, 0.0, seconds(5)}, {1, 1.0, Millis(4000)}, {1, 0.5, Millis(4500)}, {2, 0.0, minutes(5)},
      {2, 1.0, minutes(4)}, {3, 0.0, minutes(30)},  {4, 0.0, hours(2)},     {5, 0.0, hours(5)},
      {6, 0.0, hours(10)},  {7, 0.0, hours(10)},    {7, 1.0, hours(8)},     {1000, 0.0, hours(10)},
      {0, 0.0, seconds(5)},  // an attempt number below 1 is the first step
  };
  for (const auto& c : cases) {
    EXPECT_EQ(retry_wait(c.attempt, o, c.random01), c.expected)
        << "attempt " << c.attempt << " r " << c.random01;
  }
}

TEST(RetryWait, MaxBackoffCapsEveryStepAndTheFloorHolds) {
  DispatcherOptions o;
  o.max_backoff = minutes(10);
  EXPECT_EQ(retry_wait(1, o, 0.0), seconds(5));
  EXPECT_EQ(retry_wait(2, o, 0.0), minutes(5));
  EXPECT_EQ(retry_wait(3, o, 0.0), minutes(10));
  EXPECT_EQ(retry_wait(3, o, 1.0), minutes(8));  // jitter stays below the cap
  EXPECT_EQ(retry_wait(9, o, 0.0), minutes(10));
  o.max_backoff = Millis(100);
  EXPECT_EQ(retry_wait(1, o, 0.0), Millis(500));  // min_backoff
}

TEST(RetryWait, ConfiguredScheduleLastStepRepeats) {
  DispatcherOptions o;
  o.retry_schedule = {seconds(1), seconds(10)};
  o.retry_jitter = 0;
  EXPECT_EQ(retry_wait(1, o, 0.7), seconds(1));
  EXPECT_EQ(retry_wait(2, o, 0.7), seconds(10));
  EXPECT_EQ(retry_wait(3, o, 0.7), seconds(10));
  EXPECT_EQ(retry_wait(50, o, 0.7), seconds(10));
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
  d = decide(message(1, t0), transient, now, o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, now + seconds(5));
  d = decide(message(2, t0), transient, now, o, 0.5);
  EXPECT_EQ(d.send_at, now + minutes(4) + seconds(30));

  // Retry-After wins over a shorter backoff.
  channels::Outcome limited{channels::Verdict::retryable, "429", Millis(seconds(120)), 429};
  d = decide(message(1, t0), limited, now, o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, now + seconds(120));

  // Past the horizon: failed, saying how long it tried.
  d = decide(message(9, t0), transient, t0 + hours(24), o, 0.5);
  EXPECT_EQ(d.status, MessageStatus::failed);
  EXPECT_NE(d.last_error.find("gave up after 9 attempts over 1d"), std::string::npos)
      << d.last_error;
}

// The default schedule within the default 24 h horizon, attempt by attempt: the step that
// would overshoot is cut to land on the horizon, which makes eight attempts in all (Standard
// Webhooks makes eight over 27.6 h), then the message fails.
TEST(Decide, DefaultScheduleWalksToTheHorizonThenFails) {
  DispatcherOptions o;
  Timestamp t0{Millis{1'000'000'000'000}};
  channels::Outcome transient{channels::Verdict::retryable, "503", std::nullopt, 503};
  Message m = message(1, t0);
  m.first_attempt_at = t0;
  Timestamp now = t0;
  std::vector<Millis> starts;  // since the first attempt
  for (int guard = 0; guard < 20; ++guard) {
    starts.push_back(std::chrono::duration_cast<Millis>(now - t0));
    Decision d = decide(m, transient, now, o, 0.0);
    if (d.status == MessageStatus::failed) {
      EXPECT_NE(d.last_error.find("gave up after 8 attempts over 1d: 503"), std::string::npos)
          << d.last_error;
      break;
    }
    ASSERT_EQ(d.status, MessageStatus::retrying);
    now = d.send_at;
    ++m.attempts;
  }
  std::vector<Millis> want = {Millis(0),
                              seconds(5),
                              seconds(5) + minutes(5),
                              seconds(5) + minutes(35),
                              seconds(5) + minutes(35) + hours(2),
                              seconds(5) + minutes(35) + hours(7),
                              seconds(5) + minutes(35) + hours(17),
                              hours(24)};
  EXPECT_EQ(starts, want);
}

TEST(Decide, HorizonCountsFromTheFirstAttemptNotCreation) {
  DispatcherOptions o;
  o.retry_horizon = hours(1);
  Timestamp created{Millis{1'000'000'000'000}};
  Timestamp first = created + hours(10);  // planned with a delay, or deferred by quiet hours
  channels::Outcome transient{channels::Verdict::retryable, "timeout", std::nullopt, 0};
  Message m = message(1, created);
  m.first_attempt_at = first;
  Decision d = decide(m, transient, first, o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, first + seconds(5));
  // Near the horizon the next step is cut short to land on it ...
  m.attempts = 3;
  d = decide(m, transient, first + minutes(50), o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::retrying);
  EXPECT_EQ(d.send_at, first + hours(1));
  // ... and the attempt made there is the last.
  m.attempts = 4;
  d = decide(m, transient, first + hours(1), o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::failed);
  // Less than min_backoff before the horizon: no immediate extra attempt.
  d = decide(m, transient, first + hours(1) - Millis(100), o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::failed);
  // Without a recorded first attempt (rows from before it was kept): counted from creation.
  m.first_attempt_at.reset();
  d = decide(m, transient, created + hours(2), o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::failed);
}

TEST(Decide, RetryAfterWinsButNeverPastTheHorizon) {
  DispatcherOptions o;
  o.retry_horizon = hours(1);
  Timestamp t0{Millis{1'000'000'000'000}};
  Message m = message(1, t0);
  m.first_attempt_at = t0;
  // Longer than the step: honoured.
  channels::Outcome later{channels::Verdict::retryable, "429", Millis(seconds(90)), 429};
  Decision d = decide(m, later, t0, o, 0.0);
  EXPECT_EQ(d.send_at, t0 + seconds(90));
  // Shorter than the step: the step stands.
  channels::Outcome soon{channels::Verdict::retryable, "503", Millis(seconds(1)), 503};
  d = decide(m, soon, t0, o, 0.0);
  EXPECT_EQ(d.send_at, t0 + seconds(5));
  // Past the horizon: not cut short (that would call before the receiver asked): failed.
  channels::Outcome too_late{channels::Verdict::retryable, "429", Millis(hours(2)), 429};
  d = decide(m, too_late, t0 + minutes(1), o, 0.0);
  EXPECT_EQ(d.status, MessageStatus::failed);
  EXPECT_NE(d.last_error.find("gave up after 1 attempts"), std::string::npos) << d.last_error;
  // max_backoff does not cut a Retry-After.
  o.max_backoff = seconds(10);
  d = decide(m, later, t0, o, 0.0);
  EXPECT_EQ(d.send_at, t0 + seconds(90));
}

}  // namespace
}  // namespace herald::dispatch
