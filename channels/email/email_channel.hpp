// Email: one rendered message becomes a multipart/alternative RFC 5322 message sent through
// the configured SMTP relay, threaded per incident.
#pragma once

#include <string>

#include "channels/channel.hpp"

namespace herald::channels {

struct SmtpSettings {
  std::string url;  // smtp://host:port or smtps://host:port
  SmtpTls tls = SmtpTls::opportunistic;
  std::string from;  // "Herald <herald@msp.example>" or a bare address
  std::string username, password;
};

class EmailChannel final : public Channel {
 public:
  explicit EmailChannel(SmtpSettings settings);
  // Errors: the recipient address or the configured From is not a usable address.
  Result<Request> build(const Outgoing& message) const override;
  // Transport errors and 4xx replies are retryable, 5xx replies permanent, 2xx delivered.
  Outcome interpret(const Response& response) const override;

  // The message itself, with a given MIME boundary (tests pin it; build() draws a random one).
  Result<std::string> compose(const Outgoing& message, const std::string& boundary) const;

 private:
  SmtpSettings settings_;
};

}  // namespace herald::channels
