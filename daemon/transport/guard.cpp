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
