#include "channels/chat/chat_channels.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "channels/common.hpp"

namespace herald::channels {

using nlohmann::json;

Result<Request> ChatChannel::build(const Outgoing& m) const {
  if (m.url.rfind("https://", 0) != 0 && m.url.rfind("http://", 0) != 0) {
    return make_error(ErrorKind::invalid, "invalid_url",
                      fmt::format("the {} endpoint URL is not an http(s) URL", service_), "url");
  }
  HttpRequest r;
  r.method = "POST";
  r.url = m.url;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = payload(m);
  r.guard_destination = true;
  return Request(std::move(r));
}

Outcome ChatChannel::interpret(const Response& response) const {
  return classify_http(response, service_);
}

std::string SlackChannel::payload(const Outgoing& m) const {
  json section = {
      {"type", "section"},
      {"text", {{"type", "mrkdwn"}, {"text", utf8_truncate(m.text, kMaxSectionChars)}}}};
  return dump_json({{"text", m.text}, {"blocks", json::array({section})}});
}

std::string TeamsChannel::payload(const Outgoing& m) const {
  json card = {{"type", "AdaptiveCard"},
               {"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
               {"version", "1.4"},
               {"body", json::array({{{"type", "TextBlock"}, {"text", m.text}, {"wrap", true}}})}};
  json attachment = {{"contentType", "application/vnd.microsoft.card.adaptive"},
                     {"content", std::move(card)}};
  return dump_json({{"type", "message"}, {"attachments", json::array({attachment})}});
}

std::string MattermostChannel::payload(const Outgoing& m) const {
  return dump_json({{"text", utf8_truncate(m.text, kMaxChars)}});
}

std::string DiscordChannel::payload(const Outgoing& m) const {
  return dump_json({{"content", utf8_truncate(m.text, kMaxChars)}});
}

std::string GoogleChatChannel::payload(const Outgoing& m) const {
  return dump_json({{"text", utf8_truncate(m.text, kMaxChars)}});
}

std::unique_ptr<ChatChannel> make_chat_channel(std::string_view type) {
  if (type == "slack") {
    return std::make_unique<SlackChannel>();
  }
  if (type == "teams") {
    return std::make_unique<TeamsChannel>();
  }
  if (type == "mattermost") {
    return std::make_unique<MattermostChannel>();
  }
  if (type == "discord") {
    return std::make_unique<DiscordChannel>();
  }
  if (type == "googlechat") {
    return std::make_unique<GoogleChatChannel>();
  }
  return nullptr;
}

}  // namespace herald::channels
