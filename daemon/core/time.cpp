#include "daemon/core/time.hpp"

#include <date/date.h>

#include <cctype>
#include <sstream>

namespace herald {

Timestamp SystemClock::now() const {
  return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

std::string format_rfc3339(Timestamp t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  auto ms = (t - secs).count();
  // By hand for years 0000-9999: date::format goes through an ostringstream and costs more
  // than the rest of an audit record's formatting (several times per event at ingest).
  const auto day = std::chrono::floor<date::days>(secs);
  const date::year_month_day ymd{day};
  const int year = static_cast<int>(ymd.year());
  if (year >= 0 && year <= 9999) {
    const date::hh_mm_ss<std::chrono::seconds> hms{secs - day};
    char buf[32];
    auto put = [&buf](int pos, int value, int digits) {
      for (int i = digits - 1; i >= 0; --i, value /= 10) {
        buf[pos + i] = static_cast<char>('0' + value % 10);
      }
    };
    put(0, year, 4);
    buf[4] = '-';
    put(5, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
    buf[7] = '-';
    put(8, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
    buf[10] = 'T';
    put(11, static_cast<int>(hms.hours().count()), 2);
    buf[13] = ':';
    put(14, static_cast<int>(hms.minutes().count()), 2);
    buf[16] = ':';
    put(17, static_cast<int>(hms.seconds().count()), 2);
    int len = 19;
    if (ms != 0) {
      buf[len] = '.';
      put(len + 1, static_cast<int>(ms), 3);
      len += 4;
    }
    buf[len++] = 'Z';
    return std::string(buf, static_cast<size_t>(len));
  }
  std::string out = date::format("%Y-%m-%dT%H:%M:%S", secs);
  if (ms != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(ms));
    out += buf;
  }
  out += 'Z';
  return out;
}

std::optional<Timestamp> parse_rfc3339(std::string_view text) {
  // date::parse's %z is lenient about forms we do not want, so the shape is checked by hand.
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto digits = [&](size_t pos, size_t n) {
    if (pos + n > text.size()) {
      return false;
    }
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
        return false;
      }
    }
    return true;
  };
  auto num = [&](size_t pos, size_t n) {
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  if (text.size() < 20 || !digits(0, 4) || text[4] != '-' || !digits(5, 2) || text[7] != '-' ||
      !digits(8, 2) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(11, 2) ||
      text[13] != ':' || !digits(14, 2) || text[16] != ':' || !digits(17, 2)) {
    return std::nullopt;
  }
  date::year_month_day ymd{date::year{num(0, 4)}, date::month{static_cast<unsigned>(num(5, 2))},
                           date::day{static_cast<unsigned>(num(8, 2))}};
  int hh = num(11, 2), mm = num(14, 2), ss = num(17, 2);
  if (!ymd.ok() || hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  long ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (pos - start < 3) {
        ms = ms * 10 + (text[pos] - '0');
      }
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
    for (size_t n = pos - start; n < 3; ++n) {
      ms *= 10;
    }
  }
  if (pos >= text.size()) {
    return std::nullopt;
  }
  long offset_minutes = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int sign = text[pos] == '-' ? -1 : 1;
    if (!digits(pos + 1, 2) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(pos + 4, 2)) {
      return std::nullopt;
    }
    int oh = num(pos + 1, 2), om = num(pos + 4, 2);
    if (oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = sign * (oh * 60 + om);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) {
    return std::nullopt;
  }
  if (ss == 60) {
    ss = 59;  // a leap second reads as the last second of its minute
  }
  Timestamp t = date::sys_days{ymd} + std::chrono::hours{hh} + std::chrono::minutes{mm} +
                std::chrono::seconds{ss} + Millis{ms};
  return t - std::chrono::minutes{offset_minutes};
}

std::optional<Millis> parse_duration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  long long total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    long long value = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      value = value * 10 + (text[pos] - '0');
      if (value > 1'000'000'000LL) {
        return std::nullopt;
      }
      ++pos;
    }
    if (pos == start || pos >= text.size()) {
      return std::nullopt;
    }
    long long unit = 0;
    if (text.substr(pos, 2) == "ms") {
      unit = 1;
      pos += 2;
    } else {
      switch (text[pos]) {
        case 's':
          unit = 1000;
          break;
        case 'm':
          unit = 60'000;
          break;
        case 'h':
          unit = 3'600'000;
          break;
        case 'd':
          unit = 86'400'000;
          break;
        default:
          return std::nullopt;
      }
      ++pos;
    }
    total += value * unit;
    if (total > 10LL * 365 * 86'400'000) {
      return std::nullopt;  // more than ten years is a typo, not a plan
    }
  }
  return Millis{total};
}

std::string format_duration(Millis d) {
  long long ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::ostringstream out;
  if (ms < 0) {
    out << '-';
    ms = -ms;
  }
  const std::pair<long long, const char*> units[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (auto [size, name] : units) {
    if (ms >= size) {
      out << ms / size << name;
      ms %= size;
    }
  }
  return out.str();
}

}  // namespace herald
