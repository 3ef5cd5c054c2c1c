// Quiet hours: when a message to a person may go out, given their time zone and quiet period.
// Pure: no clock reads, no I/O beyond the OS time-zone database that date loads once.
#pragma once

#include <string_view>

#include "daemon/core/domain.hpp"
#include "daemon/core/time.hpp"

namespace herald::schedule {

// Zones are IANA names ("Europe/Berlin"). An unknown zone never throws: a period in an unknown
// zone is never quiet. A period with start == end, or a minute outside [0, 1440), is never quiet.

// True when the local wall-clock time of `t` in `zone` falls in [start, end) of the quiet
// period (crossing midnight when end < start).
bool in_quiet_hours(Timestamp t, const QuietHours& q, std::string_view zone);

// The first instant at or after t that is outside the quiet period: t itself when not quiet,
// else the end of the period (end_minute local, on the right local day) converted to UTC.
// DST: an end time inside a spring-forward gap becomes the first instant after the gap; one
// that exists twice (fall-back overlap) becomes the earlier one, unless t is already past it,
// then the later one. Should the instant after a gap be quiet again (the whole free window was
// skipped), the next period's end is taken. Always terminates; the result is never before t.
Timestamp end_of_quiet_hours(Timestamp t, const QuietHours& q, std::string_view zone);

// The time a message to a person should go out: `due` itself when the policy is ignore, the
// contact has no quiet hours, or its zone is unknown (a defensive fallback: the API validates
// zones on save, so nothing is logged); else end_of_quiet_hours(due, ...).
Timestamp send_time(Timestamp due, const Contact& contact, QuietHoursPolicy policy);

// True when `name` is a zone of the OS time-zone database; for validating input on save.
bool is_known_zone(std::string_view name);

}  // namespace herald::schedule
