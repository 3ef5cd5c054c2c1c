#include "channels/registry.hpp"

#include <gtest/gtest.h>

#include "channels/chat/chat_channels.hpp"
#include "channels/webhook/webhook_channel.hpp"

namespace herald::channels {
namespace {

TEST(ChannelRegistry, FindsConfiguredChannels) {
  ChannelRegistry none(ChannelSettings{});
  EXPECT_EQ(none.find("email"), nullptr);
  EXPECT_EQ(none.find("sms"), nullptr);
  EXPECT_NE(none.find("webhook"), nullptr);

  ChannelSettings settings;
  settings.smtp =
      SmtpSettings{"smtp://127.0.0.1:2525", SmtpTls::opportunistic, "herald@msp.example", "", ""};
  settings.sms = SmsSettings{"https://api.twilio.test", "AC1", "t", "+15550000000"};
  ChannelRegistry all(settings);
  EXPECT_NE(dynamic_cast<const EmailChannel*>(all.find("email")), nullptr);
  EXPECT_NE(dynamic_cast<const SmsChannel*>(all.find("sms")), nullptr);
  EXPECT_NE(dynamic_cast<const WebhookChannel*>(all.find("webhook")), nullptr);
  EXPECT_NE(dynamic_cast<const SlackChannel*>(all.find("chat", "slack")), nullptr);
  EXPECT_NE(dynamic_cast<const TeamsChannel*>(all.find("chat", "teams")), nullptr);
  EXPECT_NE(dynamic_cast<const MattermostChannel*>(all.find("chat", "mattermost")), nullptr);
  EXPECT_NE(dynamic_cast<const DiscordChannel*>(all.find("chat", "discord")), nullptr);
  EXPECT_NE(dynamic_cast<const GoogleChatChannel*>(all.find("chat", "googlechat")), nullptr);
  EXPECT_EQ(all.find("chat"), nullptr);
  EXPECT_EQ(all.find("chat", "irc"), nullptr);
  EXPECT_EQ(all.find("pager"), nullptr);
}

}  // namespace
}  // namespace herald::channels
