// The explicit list of channels: adding a channel is one folder and one line in registry.cpp.
#pragma once

#include <memory>
#include <mutex>
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
  // The pointer stays valid for the registry's lifetime, across reconfigure(): an attempt in
  // flight finishes with the channel that started it. Thread-safe.
  const Channel* find(std::string_view channel, std::string_view endpoint_type = {}) const;

  // New email and SMS settings (SIGHUP): later find() calls get channels built from them.
  void reconfigure(const ChannelSettings& settings);

 private:
  struct Entry {
    std::string channel;
    std::string endpoint_type;  // empty: any
    std::unique_ptr<Channel> impl;
  };
  static std::vector<Entry> build(const ChannelSettings& settings);
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::vector<Entry> retired_;  // replaced by reconfigure(), kept for attempts in flight
};

}  // namespace herald::channels
