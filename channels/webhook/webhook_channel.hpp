// Generic webhooks signed per the Standard Webhooks specification (webhook-id,
// webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "channels/channel.hpp"

namespace herald::channels {

// The webhook-signature header value for one message: "v1,<sig>" per secret, separated by a
// space (several secrets while one is being rotated). Secrets are "whsec_<base64 key>" (the
// prefix is optional). Errors: no secret, or a secret that does not decode to a key.
Result<std::string> sign_standard_webhook(const std::vector<std::string>& secrets,
                                          std::string_view id, long long timestamp,
                                          std::string_view body);

class WebhookChannel final : public Channel {
 public:
  // POSTs Outgoing.payload_json to Outgoing.url with the outbound guard on.
  // Errors: unusable secrets, a URL that is not http(s).
  Result<Request> build(const Outgoing& message) const override;
  // 2xx delivered; 410 permanent (the receiver asks to stop); transport errors, 408, 429 and
  // 5xx retryable (with Retry-After); other statuses permanent.
  Outcome interpret(const Response& response) const override;
};

}  // namespace herald::channels
