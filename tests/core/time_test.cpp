#include "daemon/core/time.hpp"

#include <date/date.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <vector>

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

// format_rfc3339 formats by hand; the date library's own formatting is the reference, from
// before 1970 to 9999, across leap days, year ends, and every millisecond form.
TEST(Rfc3339, FormatsAsTheDateLibraryDoes) {
  auto reference = [](Timestamp t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    auto ms = (t - secs).count();
    std::string out = date::format("%Y-%m-%dT%H:%M:%S", secs);
    if (ms != 0) {
      out += fmt::format(".{:03}", ms);
    }
    return out + "Z";
  };
  std::vector<Timestamp> cases;
  for (const char* text :
       {"0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z",
        "2000-02-29T12:34:56.001Z", "2024-12-31T23:59:59.010Z", "2026-12-04T10:00:00.250Z",
        "9999-12-31T23:59:59.999Z"}) {
    cases.push_back(*parse_rfc3339(text));
  }
  // About every 37 hours and 7 ms over a span of 150 years.
  for (int64_t ms = -2'000'000'000'000; ms < 2'700'000'000'000; ms += 133'200'007) {
    cases.push_back(Timestamp{Millis{ms}});
  }
  for (auto t : cases) {
    EXPECT_EQ(format_rfc3339(t), reference(t)) << t.time_since_epoch().count();
  }
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
