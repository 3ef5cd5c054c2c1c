#include "channels/common.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace herald::channels {
namespace {

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) {
    return false;
  }
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view reason_phrase(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace

std::optional<std::string> find_header(const Headers& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) {
      return value;
    }
  }
  return std::nullopt;
}

std::optional<Timestamp> parse_http_date(std::string_view text) {
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", fixed width.
  text = trim(text);
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  if (!parse_int(text.substr(5, 2), day) || !parse_int(text.substr(12, 4), year) ||
      !parse_int(text.substr(17, 2), hour) || !parse_int(text.substr(20, 2), minute) ||
      !parse_int(text.substr(23, 2), second)) {
    return std::nullopt;
  }
  unsigned month = 0;
  for (unsigned i = 0; i < kMonths.size(); ++i) {
    if (kMonths[i] == text.substr(8, 3)) {
      month = i + 1;
    }
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{month},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (month == 0 || !ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  return Timestamp(sys_days(ymd) + hours(hour) + minutes(minute) + seconds(second));
}

std::optional<Millis> parse_retry_after(std::string_view value, Timestamp now) {
  value = trim(value);
  if (!value.empty() && std::isdigit(static_cast<unsigned char>(value.front()))) {
    long long secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) {
      secs = 365LL * 24 * 3600;  // absurdly large: cap, the dispatcher caps further
    } else if (ec != std::errc() || p != value.data() + value.size()) {
      return std::nullopt;
    }
    secs = std::min(secs, 365LL * 24 * 3600);
    return Millis(secs * 1000);
  }
  if (auto at = parse_http_date(value)) {
    return *at > now ? Millis(*at - now) : Millis(0);
  }
  return std::nullopt;
}

std::optional<Millis> retry_after_of(const Response& response) {
  auto value = find_header(response.headers, "retry-after");
  if (!value) {
    return std::nullopt;
  }
  Timestamp now = SystemClock().now();
  if (auto date = find_header(response.headers, "date")) {
    if (auto server_now = parse_http_date(*date)) {
      now = *server_now;
    }
  }
  return parse_retry_after(*value, now);
}

std::string body_excerpt(std::string_view body, size_t max_chars) {
  std::string out;
  for (char c : utf8_truncate(trim(body), max_chars)) {
    out += (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
  }
  if (body.size() > out.size() && !out.empty()) {
    out += "...";
  }
  return out;
}

Outcome classify_http(const Response& response, std::string_view service) {
  Outcome out;
  out.status_code = response.status_code;
  if (response.transport_error != 0) {
    // A refused destination stays refused until an operator changes [network] allow_private;
    // then the delivery can be replayed. Retrying it for a day would only hide the problem.
    out.verdict = response.destination_refused ? Verdict::permanent : Verdict::retryable;
    out.detail = fmt::format("{} not reached: {}", service, response.transport_message);
    return out;
  }
  long s = response.status_code;
  std::string said = fmt::format("{} answered {}", service, s);
  if (auto phrase = reason_phrase(s); !phrase.empty()) {
    said += fmt::format(" {}", phrase);
  }
  if (std::string excerpt = body_excerpt(response.body); !excerpt.empty()) {
    said += ": " + excerpt;
  }
  if (s >= 200 && s < 300) {
    out.verdict = Verdict::delivered;
  } else if (s == 408 || s == 429 || (s >= 500 && s < 600)) {
    out.verdict = Verdict::retryable;
    out.retry_after = retry_after_of(response);
  } else if (s >= 300 && s < 400) {
    out.verdict = Verdict::permanent;
    said += " (redirects are not followed; update the endpoint URL)";
  } else {
    out.verdict = Verdict::permanent;
  }
  out.detail = std::move(said);
  return out;
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {
std::string percent_encode(std::string_view text, bool plus_for_space) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    bool unreserved = std::isalnum(c) || c == '-' || c == '.' || c == '_';
    if (unreserved || (plus_for_space ? c == '*' : c == '~')) {
      out += static_cast<char>(c);
    } else if (plus_for_space && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}
}  // namespace

std::string form_encode(std::string_view text) {
  return percent_encode(text, true);
}
std::string path_encode(std::string_view text) {
  return percent_encode(text, false);
}

std::string utf8_truncate(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (chars == max_chars) {
      return std::string(text.substr(0, i));
    }
    auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 1;
    i = std::min(text.size(), i + len);
    ++chars;
  }
  return std::string(text);
}

}  // namespace herald::channels
