// Building blocks of an RFC 5322 / MIME message: quoted-printable bodies, RFC 2047 headers,
// dates, mailboxes. Pure functions, exposed for the email channel and its tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/time.hpp"

namespace herald::channels::email {

// Quoted-printable (RFC 2045 6.7) with CRLF line ends; any input line ending (LF, CRLF, CR)
// becomes CRLF. No output line is longer than 76 characters.
std::string quoted_printable(std::string_view text);

// One header line "Name: value" ready to be placed in a message, folded with CRLF SP.
// CR, LF and other control characters in `value` become spaces (no header injection); a
// value that is not plain ASCII or does not fit one line becomes RFC 2047 encoded-words
// (=?UTF-8?B?...?=, each at most 75 characters). No trailing CRLF.
std::string unstructured_header(std::string_view name, std::string_view value);

// A display name for From/To: as is when it is a plain atom sequence, a quoted-string when it
// holds specials, RFC 2047 encoded-words when it is not ASCII. Control characters dropped.
std::string display_name(std::string_view name);

// "Thu, 04 Dec 2026 10:00:00 +0000"
std::string rfc5322_date(Timestamp t);

// A plain addr-spec we accept: one '@', non-empty local part and domain, no spaces, control
// characters, quotes, commas or angle brackets.
bool valid_address(std::string_view address);

struct Mailbox {
  std::string name;     // may be empty
  std::string address;  // bare addr-spec
};
// "Herald <herald@msp.example>" or "herald@msp.example".
std::optional<Mailbox> parse_mailbox(std::string_view text);

}  // namespace herald::channels::email
