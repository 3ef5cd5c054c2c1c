// The explicit list of channels: adding a channel is one folder and one line in registry.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channels/channel.hpp"
#include "channels/email/email_channel.hpp"
#include "channels/sms/sms_channel.hpp"

namespace herald::channels {

struct ChannelSettings {
  std::optional<SmtpSettings> smtp;
  std::optional<SmsSettings> sms;
};

class ChannelRegistry {
 public:
  explicit ChannelRegistry(const ChannelSettings& settings);
  ~ChannelRegistry();
  ChannelRegistry(const ChannelRegistry&) = delete;
  ChannelRegistry& operator=(const ChannelRegistry&) = delete;

  // channel is "email", "sms", "chat" (endpoint_type picks the service) or "webhook";
  // nullptr when not available (e.g. email without [smtp] configured, an unknown chat type).
  const Channel* find(std::string_view channel, std::string_view endpoint_type = {}) const;

 private:
  struct Entry {
    std::string channel;
    std::string endpoint_type;  // empty: any
    std::unique_ptr<Channel> impl;
  };
  std::vector<Entry> entries_;
};

}  // namespace herald::channels
