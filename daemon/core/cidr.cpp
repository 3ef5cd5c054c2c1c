#include "daemon/core/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>

namespace herald {

std::array<uint8_t, 16> mapped_v4(const uint8_t v4[4]) {
  std::array<uint8_t, 16> b{};
  b[10] = 0xff;
  b[11] = 0xff;
  std::memcpy(b.data() + 12, v4, 4);
  return b;
}

bool Cidr::contains(const std::array<uint8_t, 16>& ip) const {
  int full = prefix / 8;
  if (std::memcmp(address.data(), ip.data(), static_cast<size_t>(full)) != 0) {
    return false;
  }
  int rest = prefix % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address[static_cast<size_t>(full)] & mask) == (ip[static_cast<size_t>(full)] & mask);
}

Result<Cidr> parse_cidr(std::string_view text) {
  auto bad = [&](std::string why) {
    return make_error(ErrorKind::invalid, "invalid_cidr",
                      fmt::format("'{}' is not a CIDR range: {}", text, why));
  };
  std::string_view addr_text = text;
  std::optional<int> bits;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    std::string_view len = text.substr(slash + 1);
    int n = -1;
    auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
    if (ec != std::errc() || p != len.data() + len.size() || len.empty()) {
      return bad("the prefix length is not a number");
    }
    bits = n;
  }
  std::string addr(addr_text);
  Cidr cidr;
  uint8_t v4[4];
  if (inet_pton(AF_INET, addr.c_str(), v4) == 1) {
    int n = bits.value_or(32);
    if (n < 0 || n > 32) {
      return bad("an IPv4 prefix length is 0 to 32");
    }
    cidr.address = mapped_v4(v4);
    cidr.prefix = 96 + n;
  } else if (inet_pton(AF_INET6, addr.c_str(), cidr.address.data()) == 1) {
    int n = bits.value_or(128);
    if (n < 0 || n > 128) {
      return bad("an IPv6 prefix length is 0 to 128");
    }
    cidr.prefix = n;
  } else {
    return bad("not an IPv4 or IPv6 address");
  }
  // Clear host bits so that "10.1.2.3/8" means 10.0.0.0/8.
  for (int i = cidr.prefix; i < 128; ++i) {
    cidr.address[static_cast<size_t>(i / 8)] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  }
  return cidr;
}

}  // namespace herald
