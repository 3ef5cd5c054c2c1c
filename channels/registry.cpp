#include "channels/registry.hpp"

#include "channels/chat/chat_channels.hpp"
#include "channels/webhook/webhook_channel.hpp"

namespace herald::channels {

ChannelRegistry::ChannelRegistry(const ChannelSettings& settings) {
  if (settings.smtp) {
    entries_.push_back({"email", "", std::make_unique<EmailChannel>(*settings.smtp)});
  }
  if (settings.sms) {
    entries_.push_back({"sms", "", std::make_unique<SmsChannel>(*settings.sms)});
  }
  for (const char* type : {"slack", "teams", "mattermost", "discord", "googlechat"}) {
    entries_.push_back({"chat", type, make_chat_channel(type)});
  }
  entries_.push_back({"webhook", "", std::make_unique<WebhookChannel>()});
}

ChannelRegistry::~ChannelRegistry() = default;

const Channel* ChannelRegistry::find(std::string_view channel,
                                     std::string_view endpoint_type) const {
  for (const Entry& e : entries_) {
    if (e.channel == channel && (e.endpoint_type.empty() || e.endpoint_type == endpoint_type)) {
      return e.impl.get();
    }
  }
  return nullptr;
}

}  // namespace herald::channels
