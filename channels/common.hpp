// Helpers every channel shares: the one HTTP status classification, Retry-After parsing,
// JSON dumping, form encoding and UTF-8-safe truncation. Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "channels/channel.hpp"
#include "daemon/core/time.hpp"

namespace herald::channels {

// The value of a response header (names are lower-case in a Response), or nullopt.
std::optional<std::string> find_header(const Headers& headers, std::string_view lower_name);

// Retry-After as delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"),
// measured from `now`. A date in the past gives zero; garbage gives nullopt.
std::optional<Millis> parse_retry_after(std::string_view value, Timestamp now);

// Retry-After of a response. An HTTP-date is measured against the response's own Date header
// when there is one (so the two clocks' skew cancels out), else against the system clock.
std::optional<Millis> retry_after_of(const Response& response);

// "Wed, 21 Oct 2015 07:28:00 GMT" (IMF-fixdate, RFC 9110); nullopt when malformed.
std::optional<Timestamp> parse_http_date(std::string_view text);

// The classification shared by every HTTP channel (STYLE.md "Errors"):
//   transport error -> retryable; 2xx -> delivered; 408, 429, 5xx -> retryable with any
//   Retry-After; 3xx (redirects are not followed) and other 4xx -> permanent.
// `service` names the provider in the detail ("Slack answered 404: channel_not_found").
Outcome classify_http(const Response& response, std::string_view service);

// A short, single-line excerpt of a response body for an Outcome's detail.
std::string body_excerpt(std::string_view body, size_t max_chars = 200);

// nlohmann dump that replaces invalid UTF-8 instead of throwing.
std::string dump_json(const nlohmann::json& value);

// application/x-www-form-urlencoded encoding of one key or value.
std::string form_encode(std::string_view text);
// Percent-encoding of one URL path segment.
std::string path_encode(std::string_view text);

// At most `max_chars` Unicode code points of `text`, never cutting a UTF-8 sequence.
std::string utf8_truncate(std::string_view text, size_t max_chars);

}  // namespace herald::channels
