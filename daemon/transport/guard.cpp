// The outbound guard's address arithmetic: which resolved addresses Herald refuses to connect
// to on behalf of client-supplied URLs (server-side request forgery protection).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <charconv>
#include <cstring>

#include "daemon/transport/transport.hpp"

namespace herald::transport {
namespace {

using Bytes = std::array<uint8_t, 16>;

Bytes mapped_v4(const uint8_t v4[4]) {
  Bytes b{};
  b[10] = 0xff;
  b[11] = 0xff;
  std::memcpy(b.data() + 12, v4, 4);
  return b;
}

struct Range {
  Cidr cidr;
  const char* what;
};

Cidr must_parse(std::string_view text) {
  return parse_cidr(text).value();
}

// Order matters only for the wording: the first range that contains the address names it.
const std::vector<Range>& forbidden_ranges() {
  static const std::vector<Range> kRanges = {
      {must_parse("0.0.0.0/8"), "an unspecified address"},
      {must_parse("127.0.0.0/8"), "a loopback address"},
      {must_parse("10.0.0.0/8"), "a private address"},
      {must_parse("172.16.0.0/12"), "a private address"},
      {must_parse("192.168.0.0/16"), "a private address"},
      {must_parse("100.64.0.0/10"), "a carrier-grade NAT address"},
      {must_parse("169.254.0.0/16"), "a link-local address"},
      {must_parse("224.0.0.0/4"), "a multicast address"},
      {must_parse("240.0.0.0/4"), "a reserved address"},
      {must_parse("::/128"), "an unspecified address"},
      {must_parse("::1/128"), "a loopback address"},
      {must_parse("::/96"), "a reserved address"},  // deprecated IPv4-compatible form
      {must_parse("fc00::/7"), "a private address"},
      {must_parse("fe80::/10"), "a link-local address"},
      {must_parse("ff00::/8"), "a multicast address"},
  };
  return kRanges;
}

// NAT64 (64:ff9b::/96) reaches the embedded IPv4 address: judge that one instead.
Bytes unwrap_nat64(const Bytes& ip) {
  static const Cidr kNat64 = must_parse("64:ff9b::/96");
  if (kNat64.contains(ip)) {
    return mapped_v4(ip.data() + 12);
  }
  return ip;
}

std::optional<Bytes> to_bytes(const sockaddr* addr) {
  if (addr == nullptr) {
    return std::nullopt;
  }
  if (addr->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof in);
    uint8_t v4[4];
    std::memcpy(v4, &in.sin_addr.s_addr, 4);
    return mapped_v4(v4);
  }
  if (addr->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, addr, sizeof in6);
    Bytes b{};
    std::memcpy(b.data(), in6.sin6_addr.s6_addr, 16);
    return b;
  }
  return std::nullopt;
}

}  // namespace

bool Cidr::contains(const Bytes& ip) const {
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

std::optional<std::string> forbidden_reason(const sockaddr* addr,
                                            const std::vector<Cidr>& allowed) {
  auto bytes = to_bytes(addr);
  if (!bytes) {
    return std::string("not an IP address");
  }
  for (const Cidr& c : allowed) {
    if (c.contains(*bytes)) {
      return std::nullopt;
    }
  }
  Bytes ip = unwrap_nat64(*bytes);
  for (const Range& r : forbidden_ranges()) {
    if (r.cidr.contains(ip)) {
      return std::string(r.what);
    }
  }
  return std::nullopt;
}

bool is_forbidden_destination(const sockaddr* addr, const std::vector<Cidr>& allowed) {
  return forbidden_reason(addr, allowed).has_value();
}

}  // namespace herald::transport
