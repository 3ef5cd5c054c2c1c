#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

#include "daemon/transport/transport.hpp"

namespace herald::transport {
namespace {

// A sockaddr for a literal address; never connected to.
struct Addr {
  sockaddr_storage storage{};
  explicit Addr(const std::string& text) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
    } else {
      ADD_FAILURE() << "bad test address " << text;
    }
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

std::vector<Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<Cidr> out;
  for (const char* t : texts) {
    auto c = parse_cidr(t);
    EXPECT_TRUE(c.ok()) << t;
    if (c) {
      out.push_back(*c);
    }
  }
  return out;
}

struct GuardCase {
  const char* address;
  bool forbidden;
  const char* reason;  // expected wording, when forbidden
};

TEST(Guard, ForbiddenDestinations) {
  const GuardCase cases[] = {
      {"10.1.2.3", true, "a private address"},
      {"172.16.0.1", true, "a private address"},
      {"172.31.255.255", true, "a private address"},
      {"172.32.0.1", false, ""},
      {"192.168.1.1", true, "a private address"},
      {"100.64.0.1", true, "a carrier-grade NAT address"},
      {"100.128.0.1", false, ""},
      {"169.254.1.1", true, "a link-local address"},
      {"169.254.169.254", true, "a link-local address"},  // cloud metadata
      {"224.0.0.1", true, "a multicast address"},
      {"127.0.0.1", true, "a loopback address"},
      {"0.0.0.0", true, "an unspecified address"},
      {"255.255.255.255", true, "a reserved address"},
      {"::1", true, "a loopback address"},
      {"::", true, "an unspecified address"},
      {"fe80::1", true, "a link-local address"},
      {"fc00::1", true, "a private address"},
      {"fd12:3456::1", true, "a private address"},
      {"ff02::1", true, "a multicast address"},
      {"::ffff:10.0.0.1", true, "a private address"},
      {"::ffff:127.0.0.1", true, "a loopback address"},
      {"64:ff9b::a00:1", true, "a private address"},  // NAT64 of 10.0.0.1
      {"8.8.8.8", false, ""},
      {"2001:4860::1", false, ""},
      {"::ffff:8.8.8.8", false, ""},
  };
  for (const GuardCase& c : cases) {
    Addr addr(c.address);
    EXPECT_EQ(is_forbidden_destination(addr.get(), {}), c.forbidden) << c.address;
    auto reason = forbidden_reason(addr.get(), {});
    EXPECT_EQ(reason.value_or(""), c.reason) << c.address;
  }
}

TEST(Guard, AllowedRangesOverride) {
  struct Case {
    const char* address;
    bool forbidden;
  };
  auto allowed = cidrs({"127.0.0.0/8", "::1/128", "10.20.0.0/16"});
  const Case cases[] = {
      {"127.0.0.1", false},        {"127.9.9.9", false},   {"::1", false},
      {"::ffff:127.0.0.1", false}, {"10.20.30.40", false}, {"10.21.0.1", true},
      {"192.168.1.1", true},       {"fe80::1", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(is_forbidden_destination(Addr(c.address).get(), allowed), c.forbidden) << c.address;
  }
}

TEST(Guard, ParseCidr) {
  struct Case {
    const char* text;
    bool ok;
    int prefix;
  };
  const Case cases[] = {
      {"127.0.0.0/8", true, 104}, {"10.1.2.3", true, 128},  {"::1/128", true, 128},
      {"fc00::/7", true, 7},      {"0.0.0.0/0", true, 96},  {"10.0.0.0/33", false, 0},
      {"::/129", false, 0},       {"10.0.0/8", false, 0},   {"example.com/8", false, 0},
      {"10.0.0.0/", false, 0},    {"10.0.0.0/x", false, 0}, {"", false, 0},
  };
  for (const Case& c : cases) {
    auto r = parse_cidr(c.text);
    EXPECT_EQ(r.ok(), c.ok) << c.text;
    if (r && c.ok) {
      EXPECT_EQ(r->prefix, c.prefix) << c.text;
    }
  }
  // Host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8.
  auto wide = parse_cidr("10.1.2.3/8");
  ASSERT_TRUE(wide.ok());
  EXPECT_FALSE(is_forbidden_destination(Addr("10.200.0.1").get(), {*wide}));
}

}  // namespace
}  // namespace herald::transport
