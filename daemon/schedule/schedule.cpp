#include "daemon/schedule/schedule.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <chrono>

namespace herald::schedule {
namespace {

using std::chrono::minutes;

constexpr int kMinutesPerDay = 24 * 60;
// Each step moves to a later period end; more than two are only needed when a DST gap
// swallows the whole free window, so this bound is never reached by real zones.
constexpr int kMaxSteps = 8;

const date::time_zone* find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (...) {
    // Unknown zone, or no readable zoneinfo at all: both mean "no zone".
    return nullptr;
  }
}

bool valid(const QuietHours& q) {
  return q.start_minute >= 0 && q.start_minute < kMinutesPerDay && q.end_minute >= 0 &&
         q.end_minute < kMinutesPerDay && q.start_minute != q.end_minute;
}

struct LocalClock {
  date::local_days day;
  int minute;  // of the local day, [0, 1440)
};

LocalClock local_clock(Timestamp t, const date::time_zone* zone) {
  auto local = zone->to_local(t);
  auto day = date::floor<date::days>(local);
  return {day, static_cast<int>(date::floor<minutes>(local - day).count())};
}

bool quiet_at(int minute, const QuietHours& q) {
  if (q.start_minute < q.end_minute) {
    return minute >= q.start_minute && minute < q.end_minute;
  }
  return minute >= q.start_minute || minute < q.end_minute;
}

bool quiet(Timestamp t, const QuietHours& q, const date::time_zone* zone) {
  return valid(q) && quiet_at(local_clock(t, zone).minute, q);
}

// The end of the quiet period that `t` (quiet) lies in, never at or before t.
Timestamp period_end(Timestamp t, const QuietHours& q, const date::time_zone* zone) {
  auto [day, minute] = local_clock(t, zone);
  bool ends_tomorrow = q.end_minute < q.start_minute && minute >= q.start_minute;
  auto end_local =
      date::local_time<minutes>(day + date::days(ends_tomorrow ? 1 : 0)) + minutes(q.end_minute);
  // In a gap both choices give the first instant after it; in an overlap take the earlier
  // pass unless t has already gone beyond it (t is itself in the later pass).
  Timestamp end = date::floor<Millis>(zone->to_sys(end_local, date::choose::earliest));
  if (end <= t) {
    end = date::floor<Millis>(zone->to_sys(end_local, date::choose::latest));
  }
  return end > t ? end : t + minutes(1);
}

Timestamp end_of_quiet(Timestamp t, const QuietHours& q, const date::time_zone* zone) {
  for (int step = 0; step < kMaxSteps && quiet(t, q, zone); ++step) {
    t = period_end(t, q, zone);
  }
  return t;
}

}  // namespace

bool in_quiet_hours(Timestamp t, const QuietHours& q, std::string_view zone) {
  const date::time_zone* tz = find_zone(zone);
  return tz != nullptr && quiet(t, q, tz);
}

Timestamp end_of_quiet_hours(Timestamp t, const QuietHours& q, std::string_view zone) {
  const date::time_zone* tz = find_zone(zone);
  return tz == nullptr ? t : end_of_quiet(t, q, tz);
}

Timestamp send_time(Timestamp due, const Contact& contact, QuietHoursPolicy policy) {
  if (policy == QuietHoursPolicy::ignore || !contact.quiet_hours) {
    return due;
  }
  return end_of_quiet_hours(due, *contact.quiet_hours, contact.timezone);
}

bool is_known_zone(std::string_view name) {
  return find_zone(name) != nullptr;
}

}  // namespace herald::schedule
