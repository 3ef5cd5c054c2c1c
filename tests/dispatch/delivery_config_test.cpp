// The [delivery] keys that drive the dispatcher's limits: defaults, accepted values and the
// message for each mistake.
#include <gtest/gtest.h>

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
  EXPECT_EQ(c->delivery.destination_concurrency, 4);
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
