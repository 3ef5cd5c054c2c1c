#include "daemon/core/ack_link.hpp"

#include "daemon/core/crypto.hpp"

namespace herald {
namespace {

// URL-safe base64 without padding (RFC 4648 §5), so the signature needs no escaping.
std::string base64url(std::string_view data) {
  std::string out = base64_encode(data);
  for (char& c : out) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  return out;
}

}  // namespace

std::string new_ack_key() {
  return base64_encode(random_bytes(32));
}

std::string ack_signature(std::string_view key, std::string_view message_id) {
  std::string data = "herald-ack:";
  data += message_id;
  return base64url(hmac_sha256_raw(key, data));
}

std::string ack_url(std::string_view public_url, std::string_view key,
                    std::string_view message_id) {
  std::string url(public_url);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  url += "/ack/";
  url += message_id;
  url += "?sig=";
  url += ack_signature(key, message_id);
  return url;
}

bool verify_ack_signature(std::string_view key, std::string_view message_id,
                          std::string_view signature) {
  return constant_time_equal(ack_signature(key, message_id), signature);
}

}  // namespace herald
