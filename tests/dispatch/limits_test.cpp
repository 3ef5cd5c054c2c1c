#include "daemon/dispatch/limits.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald::dispatch {
namespace {

Timestamp at_ms(int64_t ms) {
  return Timestamp{} + Millis{ms};
}

// One step of a breaker script: at time `t`, either ask to send ('a': expect `admitted`) or
// record a result ('f' retryable failure, 's' success); then the state must be `state`.
struct Step {
  int64_t t;
  char op;
  bool admitted;
  BreakerState state;
};

struct Script {
  std::string name;
  std::vector<Step> steps;
};

TEST(CircuitBreaker, Scripts) {
  BreakerOptions o;
  o.failure_threshold = 3;
  o.cool_down = Millis{1'000};
  o.max_cool_down = Millis{3'000};
  o.probe_wait = Millis{100};
  using S = BreakerState;
  const std::vector<Script> scripts = {
      {"stays closed below the threshold",
       {{0, 'a', true, S::closed},
        {0, 'f', false, S::closed},
        {1, 'f', false, S::closed},
        {2, 'a', true, S::closed}}},
      {"a success resets the count",
       {{0, 'f', false, S::closed},
        {1, 'f', false, S::closed},
        {2, 's', false, S::closed},
        {3, 'f', false, S::closed},
        {4, 'f', false, S::closed},
        {5, 'a', true, S::closed}}},
      {"opens on the threshold, holds back, then one probe",
       {{0, 'f', false, S::closed},
        {1, 'f', false, S::closed},
        {2, 'f', false, S::open},
        {500, 'a', false, S::open},
        {1'001, 'a', false, S::open},
        {1'002, 'a', true, S::half_open},
        {1'003, 'a', false, S::half_open},
        {1'500, 's', false, S::closed},
        {1'501, 'a', true, S::closed}}},
      {"a failed probe reopens for twice as long, capped",
       {{0, 'f', false, S::closed},
        {0, 'f', false, S::closed},
        {0, 'f', false, S::open},
        {1'000, 'a', true, S::half_open},
        {1'000, 'f', false, S::open},
        {2'999, 'a', false, S::open},
        {3'000, 'a', true, S::half_open},
        {3'000, 'f', false, S::open},
        {5'999, 'a', false, S::open},  // 4 s would exceed the 3 s cap
        {6'000, 'a', true, S::half_open},
        {6'000, 's', false, S::closed},
        // After a success the pause starts over at the base cool-down.
        {7'000, 'f', false, S::closed},
        {7'000, 'f', false, S::closed},
        {7'000, 'f', false, S::open},
        {8'000, 'a', true, S::half_open}}},
      {"late failures while open do not extend the pause",
       {{0, 'f', false, S::closed},
        {0, 'f', false, S::closed},
        {0, 'f', false, S::open},
        {500, 'f', false, S::open},
        {1'000, 'a', true, S::half_open}}},
  };
  for (const auto& script : scripts) {
    CircuitBreaker b(o);
    for (size_t i = 0; i < script.steps.size(); ++i) {
      const Step& s = script.steps[i];
      SCOPED_TRACE(script.name + ", step " + std::to_string(i));
      if (s.op == 'a') {
        auto wait = b.admit(at_ms(s.t));
        EXPECT_EQ(!wait.has_value(), s.admitted);
        if (wait) {
          EXPECT_GT(*wait, at_ms(s.t));
        }
      } else {
        b.record(s.op == 'f', at_ms(s.t));
      }
      EXPECT_EQ(to_string(b.state()), to_string(s.state));
    }
  }
}

TEST(CircuitBreaker, HeldBackUntilReopenTimeOrProbeWait) {
  BreakerOptions o;
  o.failure_threshold = 1;
  o.cool_down = Millis{30'000};
  o.probe_wait = Millis{1'000};
  CircuitBreaker b(o);
  b.record(true, at_ms(10));
  EXPECT_EQ(b.admit(at_ms(20)), at_ms(30'010));
  EXPECT_FALSE(b.admit(at_ms(30'010)));
  EXPECT_EQ(b.admit(at_ms(30'020)), at_ms(31'020));
}

TEST(ParseRate, Table) {
  struct Case {
    std::string text;
    bool ok;
    double per_second;
    double burst;
  };
  const std::vector<Case> cases = {
      {"1/s", true, 1, 1},
      {"10/s", true, 10, 10},
      {"30/m", true, 0.5, 1},
      {"3600/h", true, 1, 1},
      {"1/s burst 3", true, 1, 3},
      {"0.5/s", true, 0.5, 1},
      {"", false, 0, 0},
      {"1", false, 0, 0},
      {"1/d", false, 0, 0},
      {"0/s", false, 0, 0},
      {"-1/s", false, 0, 0},
      {"1/s burst", false, 0, 0},
      {"1/s burst 0", false, 0, 0},
      {"1/s  burst 2", false, 0, 0},
      {"x/s", false, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_rate(c.text);
    ASSERT_EQ(static_cast<bool>(r), c.ok);
    if (c.ok) {
      EXPECT_DOUBLE_EQ(r->per_second, c.per_second);
      EXPECT_DOUBLE_EQ(r->burst, c.burst);
    }
  }
}

TEST(TokenBucket, OnePerSecondSpacesTakes) {
  TokenBucket b(Rate{1, 1}, at_ms(0));
  EXPECT_FALSE(b.available_at(at_ms(0)));
  b.take(at_ms(0));
  EXPECT_EQ(b.available_at(at_ms(0)), at_ms(1'000));
  EXPECT_EQ(b.available_at(at_ms(400)), at_ms(1'000));
  EXPECT_FALSE(b.available_at(at_ms(1'000)));
  b.take(at_ms(1'000));
  EXPECT_EQ(b.available_at(at_ms(1'200)), at_ms(2'000));
}

TEST(TokenBucket, BurstThenSteadyRateAndNoHoarding) {
  TokenBucket b(Rate{2, 3}, at_ms(0));
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(b.available_at(at_ms(0))) << i;
    b.take(at_ms(0));
  }
  EXPECT_EQ(b.available_at(at_ms(0)), at_ms(500));
  // A long idle time refills to the burst, never beyond.
  int taken = 0;
  while (!b.available_at(at_ms(60'000)) && taken < 10) {
    b.take(at_ms(60'000));
    ++taken;
  }
  EXPECT_EQ(taken, 3);
}

TEST(TokenBucket, ACostlyTakeLeavesADebt) {
  // "1 segment/s": a 3-segment SMS at t=0 means the next may go at t=3 s.
  TokenBucket b(Rate{1, 1}, at_ms(0));
  ASSERT_FALSE(b.available_at(at_ms(0)));
  b.take(at_ms(0), 3);
  EXPECT_EQ(b.available_at(at_ms(0)), at_ms(3'000));
  EXPECT_EQ(b.available_at(at_ms(2'500)), at_ms(3'000));
  EXPECT_FALSE(b.available_at(at_ms(3'000)));
  b.take(at_ms(3'000), 0);  // never less than one token
  EXPECT_EQ(b.available_at(at_ms(3'000)), at_ms(4'000));
}

TEST(TokenBucket, UnlimitedAlwaysAvailable) {
  TokenBucket b(Rate{0, 1}, at_ms(0));
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(b.available_at(at_ms(0)));
    b.take(at_ms(0));
  }
}

TEST(DestinationOf, Table) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://hooks.slack.com/services/T0/B0/SECRET", "hooks.slack.com:443"},
      {"http://127.0.0.1:8090/hooks/siem?x=1", "127.0.0.1:8090"},
      {"HTTP://Example.COM", "example.com:80"},
      {"https://user:pa@ss@api.example:8443/path", "api.example:8443"},
      {"smtp://127.0.0.1:2525", "127.0.0.1:2525"},
      {"smtps://mail.example", "mail.example:465"},
      {"smtp://mail.example", "mail.example:25"},
      {"http://[::1]:9000/x", "[::1]:9000"},
      {"https://[2001:db8::1]/x", "[2001:db8::1]:443"},
      {"https://h.example#frag", "h.example:443"},
  };
  for (const auto& [url, want] : cases) {
    EXPECT_EQ(destination_of(url), want) << url;
  }
}

}  // namespace
}  // namespace herald::dispatch
