#include "channels/email/mime.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstring>

#include "channels/common.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::channels::email {
namespace {

constexpr size_t kMaxQpLine = 76;
// 36 bytes of UTF-8 give 48 base64 characters: an encoded-word of 60, so "Subject: " plus one
// word stays within the recommended 78 columns.
constexpr size_t kWordBytes = 36;

bool is_ascii_printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

std::string without_controls(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  return out;
}

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) {
    return 1;
  }
  if ((lead >> 5) == 0x6) {
    return 2;
  }
  if ((lead >> 4) == 0xE) {
    return 3;
  }
  if ((lead >> 3) == 0x1E) {
    return 4;
  }
  return 1;
}

// Encoded-words of at most kWordBytes each, never splitting a UTF-8 sequence (RFC 2047 5.3).
std::vector<std::string> encoded_words(std::string_view text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = start;
    while (end < text.size()) {
      size_t len = utf8_length(static_cast<unsigned char>(text[end]));
      if (end + len - start > kWordBytes) {
        break;
      }
      end = std::min(text.size(), end + len);
    }
    if (end == start) {  // cannot happen with kWordBytes >= 4, but never loop forever
      end = std::min(text.size(), start + kWordBytes);
    }
    words.push_back("=?UTF-8?B?" + base64_encode(text.substr(start, end - start)) + "?=");
    start = end;
  }
  return words;
}

bool is_atext_or_space(unsigned char c) {
  return std::isalnum(c) || c == ' ' || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

}  // namespace

std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t line_len = 0;
  auto put = [&](std::string_view token) {
    // Leave room for the '=' of a soft line break.
    if (line_len + token.size() > kMaxQpLine - 1) {
      out += "=\r\n";
      line_len = 0;
    }
    out += token;
    line_len += token.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
      out += "\r\n";
      line_len = 0;
      continue;
    }
    bool line_end = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
    if (literal) {
      char ch = static_cast<char>(c);
      put(std::string_view(&ch, 1));
    } else {
      const char token[3] = {'=', kHex[c >> 4], kHex[c & 0xF]};
      put(std::string_view(token, 3));
    }
  }
  return out;
}

std::string unstructured_header(std::string_view name, std::string_view value) {
  std::string clean = without_controls(value);
  std::string head = std::string(name) + ": ";
  if (is_ascii_printable(clean) && clean.find("=?") == std::string::npos &&
      head.size() + clean.size() <= 78) {
    return head + clean;
  }
  std::string out = head;
  bool first = true;
  for (const std::string& word : encoded_words(clean)) {
    if (!first) {
      out += "\r\n ";
    }
    out += word;
    first = false;
  }
  return out;
}

std::string display_name(std::string_view name) {
  std::string clean = utf8_truncate(without_controls(name), 200);
  if (!is_ascii_printable(clean)) {
    std::string out;
    for (const std::string& word : encoded_words(clean)) {
      out += out.empty() ? "" : " ";
      out += word;
    }
    return out;
  }
  bool atoms = true;
  for (unsigned char c : clean) {
    atoms = atoms && is_atext_or_space(c);
  }
  if (atoms && clean.find("=?") == std::string::npos) {
    return clean;
  }
  std::string out = "\"";
  for (char c : clean) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

std::string rfc5322_date(Timestamp t) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{floor<seconds>(t - day)};
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", kDays[weekday{day}.c_encoding()],
                     static_cast<unsigned>(ymd.day()),
                     kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

bool valid_address(std::string_view address) {
  auto at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size() ||
      address.find('@', at + 1) != std::string_view::npos || address.size() > 254) {
    return false;
  }
  for (unsigned char c : address) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("<>\"(),;:\\[]", c) != nullptr) {
      return false;
    }
  }
  std::string_view domain = address.substr(at + 1);
  return domain.front() != '.' && domain.back() != '.' &&
         domain.find("..") == std::string_view::npos;
}

std::optional<Mailbox> parse_mailbox(std::string_view text) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') {
      s.remove_prefix(1);
    }
    while (!s.empty() && s.back() == ' ') {
      s.remove_suffix(1);
    }
    return s;
  };
  text = trim(text);
  Mailbox box;
  auto open = text.find('<');
  if (open == std::string_view::npos) {
    box.address = std::string(text);
  } else {
    if (text.back() != '>') {
      return std::nullopt;
    }
    std::string_view name = trim(text.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
    }
    box.name = std::string(name);
    box.address = std::string(text.substr(open + 1, text.size() - open - 2));
  }
  if (!valid_address(box.address)) {
    return std::nullopt;
  }
  return box;
}

}  // namespace herald::channels::email
