#include "daemon/core/time.hpp"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(Rfc3339, RoundTripsUtc) {
  auto t = parse_rfc3339("2026-12-04T10:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_rfc3339(*t), "2026-12-04T10:00:00Z");
}

TEST(Rfc3339, AppliesOffsetsAndFractions) {
  auto t = parse_rfc3339("2026-12-04T11:30:00.25+01:30");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_rfc3339(*t), "2026-12-04T10:00:00.250Z");
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* bad : {"", "2026-12-04", "2026-12-04T10:00:00", "2026-13-04T10:00:00Z",
                          "2026-02-30T10:00:00Z", "2026-12-04T25:00:00Z", "2026-12-04T10:00:00Zx",
                          "2026-12-04T10:00:00+1:00", "2026-12-04T10:00:00."}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Duration, ParsesContractForms) {
  struct Case {
    const char* text;
    long long ms;
  } cases[] = {{"0s", 0},          {"90s", 90'000}, {"15m", 900'000},    {"2h", 7'200'000},
               {"1d", 86'400'000}, {"500ms", 500},  {"1h30m", 5'400'000}};
  for (auto c : cases) {
    auto d = parse_duration(c.text);
    ASSERT_TRUE(d) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
    EXPECT_EQ(parse_duration(format_duration(*d))->count(), c.ms);
  }
}

TEST(Duration, RejectsMalformed) {
  for (const char* bad : {"", "s", "10", "10x", "-5s", "1.5h", "99999999999h"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

}  // namespace
}  // namespace herald
