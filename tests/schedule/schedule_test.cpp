#include "daemon/schedule/schedule.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace herald::schedule {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

Timestamp at(const char* rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(Timestamp{});
}

QuietHours quiet(int start_hour, int start_min, int end_hour, int end_min) {
  return QuietHours{start_hour * 60 + start_min, end_hour * 60 + end_min};
}

const QuietHours kNight = quiet(22, 0, 7, 0);
const QuietHours kLunch = quiet(13, 0, 14, 0);

struct EndCase {
  const char* name;
  const char* zone;
  QuietHours period;
  const char* t;         // local wall time with the zone's offset that day
  const char* expected;  // same spelling; "Z" where the UTC instant is clearer
};

const EndCase kEndCases[] = {
    {"not quiet", "America/New_York", kLunch, "2026-06-10T10:00:00-04:00",
     "2026-06-10T10:00:00-04:00"},
    {"same-day period", "America/New_York", kLunch, "2026-06-10T13:20:15.250-04:00",
     "2026-06-10T14:00:00-04:00"},
    {"same-day start is quiet", "America/New_York", kLunch, "2026-06-10T13:00:00-04:00",
     "2026-06-10T14:00:00-04:00"},
    {"same-day end is exclusive", "America/New_York", kLunch, "2026-06-10T14:00:00-04:00",
     "2026-06-10T14:00:00-04:00"},
    {"night before midnight", "Europe/Berlin", kNight, "2026-06-10T23:30:00+02:00",
     "2026-06-11T07:00:00+02:00"},
    {"night after midnight", "Europe/Berlin", kNight, "2026-06-10T03:00:00+02:00",
     "2026-06-10T07:00:00+02:00"},
    {"night end is exclusive", "Europe/Berlin", kNight, "2026-06-10T07:00:00+02:00",
     "2026-06-10T07:00:00+02:00"},
    {"night just before end", "Europe/Berlin", kNight, "2026-06-10T06:59:59.999+02:00",
     "2026-06-10T07:00:00+02:00"},
    {"night start is quiet", "Europe/Berlin", kNight, "2026-06-10T22:00:00+02:00",
     "2026-06-11T07:00:00+02:00"},
    {"just before night", "Europe/Berlin", kNight, "2026-06-10T21:59:59.999+02:00",
     "2026-06-10T21:59:59.999+02:00"},
    {"night at midnight", "Europe/Berlin", kNight, "2026-06-11T00:00:00+02:00",
     "2026-06-11T07:00:00+02:00"},
    {"new year crossing", "America/New_York", kNight, "2026-12-31T23:00:00-05:00",
     "2027-01-01T07:00:00-05:00"},
    {"half-hour offset", "Asia/Kolkata", kNight, "2026-01-15T23:00:00+05:30",
     "2026-01-16T07:00:00+05:30"},
    {"half-hour offset not quiet", "Asia/Kolkata", kNight, "2026-01-15T07:00:00+05:30",
     "2026-01-15T07:00:00+05:30"},
    {"Lord Howe summer", "Australia/Lord_Howe", kNight, "2026-01-15T23:00:00+11:00",
     "2026-01-16T07:00:00+11:00"},
    {"Lord Howe winter", "Australia/Lord_Howe", kNight, "2026-07-15T23:00:00+10:30",
     "2026-07-16T07:00:00+10:30"},
    {"Chatham", "Pacific/Chatham", kNight, "2026-07-01T23:00:00+12:45",
     "2026-07-02T07:00:00+12:45"},
    {"UTC", "UTC", kNight, "2026-06-10T23:00:00Z", "2026-06-11T07:00:00Z"},
    {"period ending at midnight", "Europe/Berlin", quiet(20, 0, 0, 0), "2026-06-10T23:59:00+02:00",
     "2026-06-11T00:00:00+02:00"},
    {"period starting at midnight", "Europe/Berlin", quiet(0, 0, 6, 0), "2026-06-10T00:00:00+02:00",
     "2026-06-10T06:00:00+02:00"},

    // Spring forward: the end falls in the gap, so the first instant after the gap.
    {"Berlin gap (02:00->03:00)", "Europe/Berlin", quiet(22, 0, 2, 30), "2026-03-28T23:00:00+01:00",
     "2026-03-29T01:00:00Z"},
    {"New York gap (02:00->03:00)", "America/New_York", quiet(22, 0, 2, 30),
     "2026-03-07T23:00:00-05:00", "2026-03-08T07:00:00Z"},
    {"Lord Howe 30-minute gap (02:00->02:30)", "Australia/Lord_Howe", quiet(22, 0, 2, 15),
     "2026-10-03T23:00:00+10:30", "2026-10-03T15:30:00Z"},
    {"Chatham gap (02:45->03:45)", "Pacific/Chatham", quiet(22, 0, 3, 0),
     "2026-09-26T23:00:00+12:45", "2026-09-26T14:00:00Z"},
    {"end just after the gap", "Europe/Berlin", quiet(22, 0, 3, 0), "2026-03-28T23:00:00+01:00",
     "2026-03-29T03:00:00+02:00"},
    // The gap swallows the whole free window (02:30-02:45): the next day's end.
    {"gap swallows the free window", "Europe/Berlin", quiet(2, 45, 2, 30),
     "2026-03-29T01:00:00+01:00", "2026-03-30T02:30:00+02:00"},

    // Fall back: the end exists twice; the earlier one, unless t is already in the later pass.
    {"Berlin overlap, earlier", "Europe/Berlin", quiet(23, 0, 2, 30), "2026-10-24T23:30:00+02:00",
     "2026-10-25T00:30:00Z"},
    {"Berlin overlap, t in first pass", "Europe/Berlin", quiet(23, 0, 2, 30),
     "2026-10-25T02:10:00+02:00", "2026-10-25T00:30:00Z"},
    {"Berlin overlap, t in second pass", "Europe/Berlin", quiet(23, 0, 2, 30),
     "2026-10-25T02:10:00+01:00", "2026-10-25T01:30:00Z"},
    {"New York overlap (02:00->01:00)", "America/New_York", quiet(23, 0, 1, 30),
     "2026-10-31T23:30:00-04:00", "2026-11-01T05:30:00Z"},
    {"Lord Howe 30-minute overlap", "Australia/Lord_Howe", quiet(23, 0, 1, 45),
     "2026-04-04T23:30:00+11:00", "2026-04-04T14:45:00Z"},

    // Periods that are never quiet.
    {"empty period", "Europe/Berlin", quiet(7, 0, 7, 0), "2026-06-10T07:00:00+02:00",
     "2026-06-10T07:00:00+02:00"},
    {"minute out of range", "Europe/Berlin", QuietHours{-60, 1500}, "2026-06-10T03:00:00+02:00",
     "2026-06-10T03:00:00+02:00"},
    {"unknown zone", "Mars/Olympus_Mons", kNight, "2026-06-10T23:30:00Z", "2026-06-10T23:30:00Z"},
};

TEST(EndOfQuietHours, Table) {
  for (const auto& c : kEndCases) {
    SCOPED_TRACE(c.name);
    Timestamp t = at(c.t);
    Timestamp expected = at(c.expected);
    EXPECT_EQ(format_rfc3339(end_of_quiet_hours(t, c.period, c.zone)), format_rfc3339(expected));
    EXPECT_EQ(in_quiet_hours(t, c.period, c.zone), expected != t);
    EXPECT_FALSE(in_quiet_hours(expected, c.period, c.zone));
  }
}

TEST(EndOfQuietHours, RelativeToTheContactsZoneNotUtc) {
  struct Case {
    const char* zone;
    const char* expected;
  };
  const Timestamp t = at("2026-06-10T03:00:00Z");
  const Case cases[] = {
      {"UTC", "2026-06-10T07:00:00Z"},               // 03:00 local: quiet
      {"America/New_York", "2026-06-10T11:00:00Z"},  // 23:00 local: quiet until 07:00 EDT
      {"Asia/Kolkata", "2026-06-10T03:00:00Z"},      // 08:30 local: not quiet
      {"Pacific/Chatham", "2026-06-10T03:00:00Z"},   // 15:45 local: not quiet
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.zone);
    EXPECT_EQ(format_rfc3339(end_of_quiet_hours(t, kNight, c.zone)), c.expected);
  }
}

TEST(SendTime, Table) {
  struct Case {
    const char* name;
    const char* zone;
    std::optional<QuietHours> period;
    QuietHoursPolicy policy;
    const char* expected;
  };
  const Timestamp due = at("2026-06-10T23:30:00+02:00");
  const Case cases[] = {
      {"respect", "Europe/Berlin", kNight, QuietHoursPolicy::respect, "2026-06-11T05:00:00Z"},
      {"ignore", "Europe/Berlin", kNight, QuietHoursPolicy::ignore, "2026-06-10T21:30:00Z"},
      {"no quiet hours", "Europe/Berlin", std::nullopt, QuietHoursPolicy::respect,
       "2026-06-10T21:30:00Z"},
      {"unknown zone", "Nowhere/Special", kNight, QuietHoursPolicy::respect,
       "2026-06-10T21:30:00Z"},
      {"empty zone", "", kNight, QuietHoursPolicy::respect, "2026-06-10T21:30:00Z"},
      {"other zone", "Asia/Kolkata", kNight, QuietHoursPolicy::respect,
       "2026-06-11T07:00:00+05:30"},  // 03:00 local there
      {"not quiet in zone", "America/New_York", kNight, QuietHoursPolicy::respect,
       "2026-06-10T21:30:00Z"},  // 17:30 local there
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Contact contact;
    contact.timezone = c.zone;
    contact.quiet_hours = c.period;
    EXPECT_EQ(format_rfc3339(send_time(due, contact, c.policy)), format_rfc3339(at(c.expected)));
  }
}

TEST(IsKnownZone, Table) {
  struct Case {
    const char* zone;
    bool known;
  };
  const Case cases[] = {
      {"UTC", true},
      {"Europe/Berlin", true},
      {"Australia/Lord_Howe", true},
      {"Pacific/Chatham", true},
      {"Mars/Olympus_Mons", false},
      {"", false},
      {"europe/berlin", false},
      {"../../etc/passwd", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.zone);
    EXPECT_EQ(is_known_zone(c.zone), c.known);
  }
}

// For random instants and periods, the result is the first non-quiet instant at 15-minute
// granularity and never more than a day (plus a DST hour) away.
TEST(EndOfQuietHours, FirstNonQuietInstantProperty) {
  const std::array<const char*, 6> zones = {"America/New_York", "Europe/Berlin",
                                            "Asia/Kolkata",     "Australia/Lord_Howe",
                                            "Pacific/Chatham",  "UTC"};
  const Timestamp year_start = at("2026-01-01T00:00:00Z");
  const auto year_ms = std::chrono::duration_cast<Millis>(hours(24 * 365)).count();
  std::mt19937_64 rng(20260101);
  std::uniform_int_distribution<long long> offset(0, year_ms - 1);
  std::uniform_int_distribution<int> minute(0, 24 * 60 - 1);
  std::uniform_int_distribution<std::size_t> zone_index(0, zones.size() - 1);

  int quiet_count = 0;
  for (int i = 0; i < 2000; ++i) {
    const Timestamp t = year_start + Millis(offset(rng));
    const QuietHours q{minute(rng), minute(rng)};
    const char* zone = zones[zone_index(rng)];
    SCOPED_TRACE(::testing::Message() << "t=" << format_rfc3339(t) << " zone=" << zone
                                      << " quiet=" << q.start_minute << "-" << q.end_minute);
    const Timestamp r = end_of_quiet_hours(t, q, zone);
    ASSERT_GE(r, t);
    ASSERT_LE(r - t, hours(25));
    ASSERT_FALSE(in_quiet_hours(r, q, zone));
    for (Timestamp s = t; s < r; s += minutes(15)) {
      ASSERT_TRUE(in_quiet_hours(s, q, zone)) << "sample " << format_rfc3339(s);
    }
    quiet_count += r != t ? 1 : 0;
  }
  // Both outcomes must be exercised for the property to mean anything.
  EXPECT_GT(quiet_count, 200);
  EXPECT_LT(quiet_count, 1800);
}

// The same property, concentrated on the nights of the 2026 DST transitions, where a period's
// end may fall in a gap or an overlap.
TEST(EndOfQuietHours, FirstNonQuietInstantAroundDstTransitions) {
  struct Transition {
    const char* zone;
    const char* at;  // the transition instant
  };
  const Transition transitions[] = {
      {"Europe/Berlin", "2026-03-29T01:00:00Z"},
      {"Europe/Berlin", "2026-10-25T01:00:00Z"},
      {"America/New_York", "2026-03-08T07:00:00Z"},
      {"America/New_York", "2026-11-01T06:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-04T15:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-03T15:30:00Z"},
      {"Pacific/Chatham", "2026-04-04T14:00:00Z"},
      {"Pacific/Chatham", "2026-09-26T14:00:00Z"},
  };
  std::mt19937_64 rng(4242);
  const auto window_ms = std::chrono::duration_cast<Millis>(hours(36)).count();
  std::uniform_int_distribution<long long> offset(0, window_ms - 1);
  std::uniform_int_distribution<int> quarter(0, 24 * 4 - 1);
  for (const auto& tr : transitions) {
    const Timestamp window_start = at(tr.at) - hours(30);
    for (int i = 0; i < 250; ++i) {
      const Timestamp t = window_start + Millis(offset(rng));
      // Quarter-hour periods, as people set them, so ends land on gap and overlap edges.
      const QuietHours q{quarter(rng) * 15, quarter(rng) * 15};
      SCOPED_TRACE(::testing::Message() << "t=" << format_rfc3339(t) << " zone=" << tr.zone
                                        << " quiet=" << q.start_minute << "-" << q.end_minute);
      const Timestamp r = end_of_quiet_hours(t, q, tr.zone);
      ASSERT_GE(r, t);
      ASSERT_FALSE(in_quiet_hours(r, q, tr.zone));
      for (Timestamp s = t; s < r; s += minutes(15)) {
        ASSERT_TRUE(in_quiet_hours(s, q, tr.zone)) << "sample " << format_rfc3339(s);
      }
      // A gap can swallow a whole free window and push the end one more day away.
      ASSERT_LE(r - t, hours(49));
    }
  }
}

}  // namespace
}  // namespace herald::schedule
