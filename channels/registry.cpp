#include "channels/registry.hpp"

#include "channels/chat/chat_channels.hpp"
#include "channels/webhook/webhook_channel.hpp"

namespace herald::channels {

ChannelRegistry::ChannelRegistry(const ChannelSettings& settings) : entries_(build(settings)) {}

std::vector<ChannelRegistry::Entry> ChannelRegistry::build(const ChannelSettings& settings) {
  std::vector<Entry> entries;
  if (settings.smtp) {
    entries.push_back({"email", "", std::make_unique<EmailChannel>(*settings.smtp)});
  }
  if (settings.sms) {
    entries.push_back({"sms", "", std::make_unique<SmsChannel>(*settings.sms)});
  }
  for (const char* type : {"slack", "teams", "mattermost", "discord", "googlechat"}) {
    entries.push_back({"chat", type, make_chat_channel(type)});
  }
  entries.push_back({"webhook", "", std::make_unique<WebhookChannel>()});
  return entries;
}

void ChannelRegistry::reconfigure(const ChannelSettings& settings) {
  auto fresh = build(settings);
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    retired_.push_back(std::move(e));
  }
  entries_ = std::move(fresh);
}

ChannelRegistry::~ChannelRegistry() = default;

const Channel* ChannelRegistry::find(std::string_view channel,
                                     std::string_view endpoint_type) const {
  std::lock_guard lock(mutex_);
  for (const Entry& e : entries_) {
    if (e.channel == channel && (e.endpoint_type.empty() || e.endpoint_type == endpoint_type)) {
      return e.impl.get();
    }
  }
  return nullptr;
}

}  // namespace herald::channels
