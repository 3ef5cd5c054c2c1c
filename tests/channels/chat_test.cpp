#include "channels/chat/chat_channels.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "channels/common.hpp"

namespace herald::channels {
namespace {

Outgoing chat(std::string text = "INC-42 \"Ransomware\" is in *containment*\n<@here>") {
  Outgoing m;
  m.message_id = "m-7";
  m.channel = "chat";
  m.url = "https://hooks.example.test/services/T/B/secret";
  m.text = std::move(text);
  return m;
}

TEST(ChatChannels, ExactPayloads) {
  struct Case {
    const char* type;
    std::string expected;
  };
  const std::string t = R"("INC-42 \"Ransomware\" is in *containment*\n<@here>")";
  const Case cases[] = {
      {"slack", R"({"blocks":[{"text":{"text":)" + t +
                    R"(,"type":"mrkdwn"},"type":"section"}],"text":)" + t + "}"},
      {"teams",
       R"({"attachments":[{"content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","body":[{"text":)" +
           t +
           R"(,"type":"TextBlock","wrap":true}],"type":"AdaptiveCard","version":"1.4"},"contentType":"application/vnd.microsoft.card.adaptive"}],"type":"message"})"},
      {"mattermost", R"({"text":)" + t + "}"},
      {"discord", R"({"content":)" + t + "}"},
      {"googlechat", R"({"text":)" + t + "}"},
  };
  for (const Case& c : cases) {
    auto ch = make_chat_channel(c.type);
    ASSERT_TRUE(ch) << c.type;
    auto built = ch->build(chat());
    ASSERT_TRUE(built.ok()) << c.type;
    const auto& r = std::get<HttpRequest>(*built);
    EXPECT_EQ(r.body, c.expected) << c.type;
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.url, "https://hooks.example.test/services/T/B/secret");
    EXPECT_EQ(r.headers, (Headers{{"Content-Type", "application/json"}})) << c.type;
    EXPECT_TRUE(r.guard_destination);
    EXPECT_FALSE(r.follow_redirects);
  }
  EXPECT_EQ(make_chat_channel("irc"), nullptr);
}

TEST(ChatChannels, LimitsAndInvalidUtf8) {
  std::string long_text;
  for (int i = 0; i < 2500; ++i) {
    long_text += "ü";
  }
  auto discord = nlohmann::json::parse(DiscordChannel().payload(chat(long_text)));
  EXPECT_EQ(discord["content"].get<std::string>().size(), 2000u * 2);
  auto slack = nlohmann::json::parse(SlackChannel().payload(chat(long_text + long_text)));
  EXPECT_EQ(slack["blocks"][0]["text"]["text"].get<std::string>().size(), 3000u * 2);
  // Invalid UTF-8 is replaced rather than throwing.
  auto mm = nlohmann::json::parse(MattermostChannel().payload(chat("bad \xff byte")));
  EXPECT_EQ(mm["text"], "bad \xEF\xBF\xBD byte");
}

TEST(ChatChannels, UrlMustBeHttp) {
  Outgoing m = chat();
  for (const char* url : {"", "ftp://x/y", "file:///etc/passwd", "gopher://x"}) {
    m.url = url;
    auto built = SlackChannel().build(m);
    ASSERT_FALSE(built.ok()) << url;
    EXPECT_EQ(built.error().code, "invalid_url");
  }
}

TEST(ChatChannels, Interpret) {
  struct Case {
    const char* type;
    int transport_error;
    long status;
    const char* body;
    Headers headers;
    Verdict verdict;
  };
  const Case cases[] = {
      {"slack", 0, 200, "ok", {}, Verdict::delivered},
      {"slack", 0, 400, "invalid_payload", {}, Verdict::permanent},
      {"slack", 0, 403, "action_prohibited", {}, Verdict::permanent},
      {"slack", 0, 404, "channel_not_found", {}, Verdict::permanent},
      {"slack", 0, 410, "channel_is_archived", {}, Verdict::permanent},
      {"slack", 0, 429, "", {{"retry-after", "5"}}, Verdict::retryable},
      {"slack", 0, 500, "", {}, Verdict::retryable},
      {"slack", 7, 0, "", {}, Verdict::retryable},
      {"teams", 0, 200, "", {}, Verdict::delivered},
      {"teams", 0, 202, "", {}, Verdict::delivered},
      {"teams", 0, 400, "Bad Request", {}, Verdict::permanent},
      {"mattermost", 0, 200, "ok", {}, Verdict::delivered},
      {"discord", 0, 204, "", {}, Verdict::delivered},
      {"discord", 0, 429, "", {{"retry-after", "2"}}, Verdict::retryable},
      {"googlechat", 0, 200, "{}", {}, Verdict::delivered},
      {"googlechat", 0, 503, "", {}, Verdict::retryable},
  };
  for (const Case& c : cases) {
    auto ch = make_chat_channel(c.type);
    Response r;
    r.transport_error = c.transport_error;
    r.transport_message = "Connection refused";
    r.status_code = c.status;
    r.body = c.body;
    r.headers = c.headers;
    Outcome o = ch->interpret(r);
    EXPECT_EQ(o.verdict, c.verdict) << c.type << " " << c.status;
    if (c.status == 404) {
      EXPECT_EQ(o.detail, "Slack answered 404 Not Found: channel_not_found");
    }
    if (c.status == 429) {
      EXPECT_TRUE(o.retry_after.has_value());
    }
  }
}

}  // namespace
}  // namespace herald::channels
