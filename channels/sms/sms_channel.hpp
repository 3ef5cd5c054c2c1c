// SMS through Twilio's Messages API (or any provider that speaks it): a form POST with basic
// auth and an idempotency token.
#pragma once

#include <string>
#include <string_view>

#include "channels/channel.hpp"

namespace herald::channels {

struct SmsSettings {
  std::string base_url;  // "https://api.twilio.com"
  std::string account_sid, auth_token;
  std::string from;  // E.164
};

// "+" then 8 to 15 digits.
bool valid_e164(std::string_view number);

class SmsChannel final : public Channel {
 public:
  static constexpr size_t kMaxBodyChars = 1600;  // Twilio's limit for one message

  explicit SmsChannel(SmsSettings settings);
  // Errors: the recipient (or the configured From) is not an E.164 number.
  Result<Request> build(const Outgoing& message) const override;
  // 200/201 delivered (detail names the message sid); 429 and 5xx retryable; other 4xx
  // permanent with Twilio's error code and message.
  Outcome interpret(const Response& response) const override;

 private:
  SmsSettings settings_;
};

}  // namespace herald::channels
