// Chat rooms reached by incoming webhooks: Slack, Microsoft Teams (Workflows), Mattermost,
// Discord and Google Chat. Each service has its own payload; sending and classifying are
// shared. None of these webhooks accepts an idempotency key, so none is sent.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "channels/channel.hpp"

namespace herald::channels {

class ChatChannel : public Channel {
 public:
  // POSTs the service's JSON payload to Outgoing.url, with the outbound guard on.
  // Errors: the URL is not http(s).
  Result<Request> build(const Outgoing& message) const final;
  // 2xx delivered; transport errors, 408, 429 (with Retry-After) and 5xx retryable; other
  // statuses permanent (Slack's 400/403/404/410 name the problem in the body).
  Outcome interpret(const Response& response) const final;
  // The JSON body for this service (exposed for tests).
  virtual std::string payload(const Outgoing& message) const = 0;
  const std::string& service() const { return service_; }

 protected:
  explicit ChatChannel(std::string service) : service_(std::move(service)) {}

 private:
  std::string service_;
};

class SlackChannel final : public ChatChannel {
 public:
  static constexpr size_t kMaxSectionChars = 3000;  // Slack rejects longer section text
  SlackChannel() : ChatChannel("Slack") {}
  std::string payload(const Outgoing& message) const override;
};

class TeamsChannel final : public ChatChannel {
 public:
  TeamsChannel() : ChatChannel("Teams") {}
  std::string payload(const Outgoing& message) const override;
};

class MattermostChannel final : public ChatChannel {
 public:
  static constexpr size_t kMaxChars = 16383;
  MattermostChannel() : ChatChannel("Mattermost") {}
  std::string payload(const Outgoing& message) const override;
};

class DiscordChannel final : public ChatChannel {
 public:
  static constexpr size_t kMaxChars = 2000;
  DiscordChannel() : ChatChannel("Discord") {}
  std::string payload(const Outgoing& message) const override;
};

class GoogleChatChannel final : public ChatChannel {
 public:
  static constexpr size_t kMaxChars = 4096;
  GoogleChatChannel() : ChatChannel("Google Chat") {}
  std::string payload(const Outgoing& message) const override;
};

// The channel for an endpoint type ("slack", "teams", "mattermost", "discord",
// "googlechat"), or nullptr for an unknown type.
std::unique_ptr<ChatChannel> make_chat_channel(std::string_view endpoint_type);

}  // namespace herald::channels
