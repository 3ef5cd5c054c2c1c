// Address ranges (CIDR), for the outbound guard and the configuration that relaxes it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "daemon/core/result.hpp"

namespace herald {

// An address range. IPv4 ranges are held as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n), so one
// comparison covers both families and an IPv4-mapped destination matches its IPv4 range.
struct Cidr {
  std::array<uint8_t, 16> address{};
  int prefix = 0;  // 0..128, counted on the 128-bit form
  bool contains(const std::array<uint8_t, 16>& ip) const;
};

// "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Host bits are cleared.
// Error: invalid "invalid_cidr", naming the text and why.
Result<Cidr> parse_cidr(std::string_view text);

// IPv4 bytes as the IPv4-mapped IPv6 form Cidr uses.
std::array<uint8_t, 16> mapped_v4(const uint8_t v4[4]);

}  // namespace herald
