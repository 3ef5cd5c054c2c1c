// The [delivery] keys that drive the dispatcher's limits: defaults, accepted values and the
// message for each mistake.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "daemon/config/config.hpp"

namespace herald::config {
namespace {

Getenv no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

TEST(DeliveryConfig, Defaults) {
  auto c = parse_config("", "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.concurrency, 64);
  EXPECT_EQ(c->delivery.destination_concurrency, 4);
  EXPECT_EQ(c->delivery.server_concurrency, 32);
  EXPECT_EQ(c->delivery.breaker_threshold, 5);
  EXPECT_EQ(c->delivery.breaker_cool_down, Millis{30'000});
  EXPECT_EQ(c->delivery.breaker_max_cool_down, Millis{300'000});
  EXPECT_EQ(c->delivery.rate_limits,
            (std::map<std::string, std::string>{{"slack", "1/s"}, {"sms", "1/s"}}));
}

TEST(DeliveryConfig, Accepted) {
  auto c = parse_config(R"([delivery]
destination_concurrency = 2
breaker_threshold = 3
breaker_cool_down = "10s"
breaker_max_cool_down = "2m"
rate_limits = { webhook = "20/s", teams = "4/s burst 4", sms = "none" }
)",
                        "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.destination_concurrency, 2);
  EXPECT_EQ(c->delivery.breaker_threshold, 3);
  EXPECT_EQ(c->delivery.breaker_cool_down, Millis{10'000});
  EXPECT_EQ(c->delivery.breaker_max_cool_down, Millis{120'000});
  // Named kinds are replaced; the Slack default stays.
  EXPECT_EQ(c->delivery.rate_limits,
            (std::map<std::string, std::string>{
                {"slack", "1/s"}, {"sms", "none"}, {"teams", "4/s burst 4"}, {"webhook", "20/s"}}));
}

// server_concurrency limits SMS and email servers; a configuration that sets only
// destination_concurrency (written when that key limited every destination) keeps its meaning.
TEST(DeliveryConfig, ServerConcurrency) {
  auto both = parse_config("[delivery]\ndestination_concurrency = 2\nserver_concurrency = 40\n",
                           "h.toml", no_env());
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->delivery.destination_concurrency, 2);
  EXPECT_EQ(both->delivery.server_concurrency, 40);
  auto old = parse_config("[delivery]\ndestination_concurrency = 2\n", "h.toml", no_env());
  ASSERT_TRUE(old) << old.error().message;
  EXPECT_EQ(old->delivery.server_concurrency, 2);
  auto server = parse_config("[delivery]\nserver_concurrency = 8\n", "h.toml", no_env());
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(server->delivery.destination_concurrency, 4);
  EXPECT_EQ(server->delivery.server_concurrency, 8);
  auto bad = parse_config("[delivery]\nserver_concurrency = 0\n", "h.toml", no_env());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("delivery.server_concurrency: expected 1 to 1024, got 0"),
            std::string::npos)
      << bad.error().message;
}

TEST(DeliveryConfig, RetryScheduleDefaultAndConfigured) {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  auto c = parse_config("", "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.retry_schedule, (std::vector<Millis>{seconds(5), minutes(5), minutes(30),
                                                             hours(2), hours(5), hours(10)}));
  EXPECT_EQ(c->delivery.retry_horizon, hours(24));
  EXPECT_EQ(c->delivery.max_backoff, Millis{0});  // no cap beyond the schedule's own steps
  c = parse_config(
      "[delivery]\nretry_schedule = [\"1s\", \"1m\"]\nmax_backoff = \"30s\"\n"
      "retry_horizon = \"2h\"\n",
      "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.retry_schedule, (std::vector<Millis>{seconds(1), minutes(1)}));
  EXPECT_EQ(c->delivery.max_backoff, seconds(30));
  EXPECT_EQ(c->delivery.retry_horizon, hours(2));
}

TEST(DeliveryConfig, TimeoutsPerKind) {
  using std::chrono::seconds;
  auto c = parse_config("", "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.timeouts, (std::map<std::string, Millis>{{"slack", seconds(10)},
                                                                 {"teams", seconds(30)},
                                                                 {"mattermost", seconds(10)},
                                                                 {"discord", seconds(10)},
                                                                 {"googlechat", seconds(10)},
                                                                 {"webhook", seconds(15)},
                                                                 {"sms", seconds(15)},
                                                                 {"email", seconds(60)}}));
  // [delivery.timeouts] replaces the kinds it names.
  c = parse_config("[delivery.timeouts]\nwebhook = \"3s\"\nemail = \"2m\"\n", "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.timeouts.at("webhook"), seconds(3));
  EXPECT_EQ(c->delivery.timeouts.at("email"), seconds(120));
  EXPECT_EQ(c->delivery.timeouts.at("slack"), seconds(10));
  // A configuration written before per-kind timeouts: attempt_timeout still limits every
  // kind, except those [delivery.timeouts] names.
  c = parse_config("[delivery]\nattempt_timeout = \"8s\"\n[delivery.timeouts]\nsms = \"20s\"\n",
                   "h.toml", no_env());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->delivery.attempt_timeout, seconds(8));
  EXPECT_EQ(c->delivery.timeouts.at("webhook"), seconds(8));
  EXPECT_EQ(c->delivery.timeouts.at("email"), seconds(8));
  EXPECT_EQ(c->delivery.timeouts.at("sms"), seconds(20));
}

TEST(DeliveryConfig, Mistakes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"destination_concurrency = 0", "h.toml:2:27: delivery.destination_concurrency: expected 1"},
      {"breaker_threshold = \"5\"", "delivery.breaker_threshold: expected an integer"},
      {"breaker_cool_down = \"soon\"", "delivery.breaker_cool_down: expected a positive duration"},
      {"rate_limits = { fax = \"1/s\" }", "unknown key \"delivery.rate_limits.fax\""},
      {"rate_limits = { slack = \"fast\" }",
       "delivery.rate_limits.slack: expected a rate like \"1/s\""},
      {"rate_limits = { slack = 1 }", "delivery.rate_limits.slack: expected a string"},
      {"rate_limits = \"1/s\"", "delivery.rate_limits: expected a table"},
      {"retry_schedule = []", "delivery.retry_schedule: expected an array of durations"},
      {"retry_schedule = \"5s\"", "delivery.retry_schedule: expected an array of durations"},
      {"retry_schedule = [5]", "delivery.retry_schedule: expected an array of durations"},
      {"retry_schedule = [\"5s\", \"soon\"]",
       "h.toml:2:25: delivery.retry_schedule: expected a positive duration like \"5m\", got "
       "\"soon\""},
      {"retry_schedule = [\"0s\"]", "delivery.retry_schedule: expected a positive duration"},
      {"max_backoff = \"never\"", "delivery.max_backoff: expected a positive duration"},
      {"timeouts = { fax = \"1s\" }", "unknown key \"delivery.timeouts.fax\""},
      {"timeouts = { webhook = \"quick\" }",
       "delivery.timeouts.webhook: expected a positive duration like \"10s\""},
      {"timeouts = { webhook = 10 }", "delivery.timeouts.webhook: expected a string"},
      {"timeouts = \"10s\"", "delivery.timeouts: expected a table"},
  };
  for (const auto& [line, want] : cases) {
    auto c = parse_config("[delivery]\n" + line + "\n", "h.toml", no_env());
    ASSERT_FALSE(c) << line;
    EXPECT_NE(c.error().message.find(want), std::string::npos)
        << line << " -> " << c.error().message;
  }
}

}  // namespace
}  // namespace herald::config
