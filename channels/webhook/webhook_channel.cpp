#include "channels/webhook/webhook_channel.hpp"

#include <fmt/format.h>

#include <chrono>

#include "channels/common.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::channels {
namespace {
constexpr std::string_view kSecretPrefix = "whsec_";
}  // namespace

Result<std::string> sign_standard_webhook(const std::vector<std::string>& secrets,
                                          std::string_view id, long long timestamp,
                                          std::string_view body) {
  if (secrets.empty()) {
    return make_error(ErrorKind::invalid, "missing_secret",
                      "the webhook endpoint has no signing secret", "secret");
  }
  std::string signed_content = fmt::format("{}.{}.{}", id, timestamp, body);
  std::string header;
  for (size_t i = 0; i < secrets.size(); ++i) {
    std::string_view secret = secrets[i];
    if (secret.rfind(kSecretPrefix, 0) == 0) {
      secret.remove_prefix(kSecretPrefix.size());
    }
    std::string key;
    if (secret.empty() || !base64_decode(secret, key) || key.empty()) {
      // Never echo the secret itself.
      return make_error(ErrorKind::invalid, "invalid_secret",
                        fmt::format("webhook signing secret #{} is not whsec_ followed by "
                                    "base64",
                                    i + 1),
                        "secret");
    }
    if (!header.empty()) {
      header += ' ';
    }
    header += "v1," + base64_encode(hmac_sha256_raw(key, signed_content));
  }
  return header;
}

Result<Request> WebhookChannel::build(const Outgoing& m) const {
  if (m.url.rfind("https://", 0) != 0 && m.url.rfind("http://", 0) != 0) {
    return make_error(ErrorKind::invalid, "invalid_url",
                      "the webhook endpoint URL is not an http(s) URL", "url");
  }
  long long timestamp = std::chrono::floor<std::chrono::seconds>(m.now).time_since_epoch().count();
  auto signature = sign_standard_webhook(m.secrets, m.message_id, timestamp, m.payload_json);
  if (!signature) {
    return signature.error();
  }
  HttpRequest r;
  r.method = "POST";
  r.url = m.url;
  r.headers = {{"content-type", "application/json"},
               {"webhook-id", m.message_id},
               {"webhook-timestamp", std::to_string(timestamp)},
               {"webhook-signature", std::move(signature).value()}};
  r.body = m.payload_json;
  r.guard_destination = true;
  return Request(std::move(r));
}

Outcome WebhookChannel::interpret(const Response& response) const {
  Outcome out = classify_http(response, "webhook receiver");
  if (response.transport_error == 0 && response.status_code == 410) {
    out.detail = "410 Gone: endpoint asks to stop";
  }
  return out;
}

}  // namespace herald::channels
