#include "channels/sms/sms_channel.hpp"

#include <gtest/gtest.h>

#include "channels/common.hpp"

namespace herald::channels {
namespace {

SmsChannel channel() {
  return SmsChannel({"https://api.twilio.test/", "AC0123456789", "tok3n", "+15550000000"});
}

Outgoing sms(std::string text = "INC-42: containment started & more") {
  Outgoing m;
  m.message_id = "m-9";
  m.channel = "sms";
  m.address = "+41791234567";
  m.text = std::move(text);
  return m;
}

TEST(E164, Validation) {
  struct Case {
    const char* number;
    bool ok;
  };
  const Case cases[] = {
      {"+41791234567", true},
      {"+12025550123", true},
      {"+12345678", true},
      {"+123456789012345", true},
      {"+1234567", false},
      {"+1234567890123456", false},
      {"41791234567", false},
      {"+41 79 123 45 67", false},
      {"+4179123456a", false},
      {"", false},
      {"+", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(valid_e164(c.number), c.ok) << c.number;
  }
}

TEST(SmsChannel, BuildsTheTwilioRequest) {
  auto built = channel().build(sms());
  ASSERT_TRUE(built.ok());
  const auto& r = std::get<HttpRequest>(*built);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://api.twilio.test/2010-04-01/Accounts/AC0123456789/Messages.json");
  EXPECT_EQ(r.body,
            "To=%2B41791234567&From=%2B15550000000&Body=INC-42%3A+containment+started+%26+more");
  EXPECT_EQ(r.username, "AC0123456789");
  EXPECT_EQ(r.password, "tok3n");
  EXPECT_FALSE(r.guard_destination);
  EXPECT_FALSE(r.follow_redirects);
  EXPECT_EQ(find_header(r.headers, "I-Twilio-Idempotency-Token"), "m-9");
  EXPECT_EQ(find_header(r.headers, "Content-Type"), "application/x-www-form-urlencoded");
}

TEST(SmsChannel, BodyIsCutTo1600CharactersUtf8Safe) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += "é€";
  }
  auto built = channel().build(sms(text));
  ASSERT_TRUE(built.ok());
  const std::string& body = std::get<HttpRequest>(*built).body;
  std::string encoded = body.substr(body.find("&Body=") + 6);
  // 800 × "é€" = 1600 characters, each fully encoded.
  std::string expected;
  for (int i = 0; i < 800; ++i) {
    expected += "%C3%A9%E2%82%AC";
  }
  EXPECT_EQ(encoded, expected);
}

TEST(SmsChannel, BadNumbersAreBuildErrors) {
  Outgoing m = sms();
  m.address = "0791234567";
  auto built = channel().build(m);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.error().code, "invalid_phone");
  auto bad_from = SmsChannel({"https://api.twilio.test", "AC1", "t", "Herald"}).build(sms());
  ASSERT_FALSE(bad_from.ok());
  EXPECT_EQ(bad_from.error().code, "invalid_from");
}

TEST(SmsChannel, Interpret) {
  struct Case {
    int transport_error;
    long status;
    std::string body;
    Headers headers;
    Verdict verdict;
    std::string detail;
    std::optional<Millis> retry_after;
  };
  const Case cases[] = {
      {0,
       201,
       R"({"sid":"SM123","status":"queued"})",
       {},
       Verdict::delivered,
       "Twilio accepted the message (201): sid SM123",
       std::nullopt},
      {0,
       200,
       R"({"sid":"SM124"})",
       {},
       Verdict::delivered,
       "Twilio accepted the message (200): sid SM124",
       std::nullopt},
      {0,
       400,
       R"({"code":21211,"message":"The 'To' number +4179 is not a valid phone number.","status":400})",
       {},
       Verdict::permanent,
       "Twilio answered 400 with error 21211: The 'To' number +4179 is not a valid phone number.",
       std::nullopt},
      {0,
       401,
       R"({"code":20003,"message":"Authenticate","status":401})",
       {},
       Verdict::permanent,
       "Twilio answered 401 with error 20003: Authenticate",
       std::nullopt},
      {0,
       429,
       R"({"code":20429,"message":"Too Many Requests"})",
       {{"retry-after", "12"}},
       Verdict::retryable,
       "Twilio answered 429 with error 20429: Too Many Requests",
       Millis(12'000)},
      {0,
       400,
       R"({"code":21611,"message":"This 'From' number has exceeded the maximum number of queued messages"})",
       {},
       Verdict::retryable,
       "Twilio answered 400 with error 21611: This 'From' number has exceeded the maximum "
       "number of queued messages",
       std::nullopt},
      {0,
       400,
       R"({"code":21610,"message":"Attempt to send to unsubscribed recipient"})",
       {},
       Verdict::permanent,
       "Twilio answered 400 with error 21610: Attempt to send to unsubscribed recipient",
       std::nullopt},
      {0,
       400,
       R"({"code":20429,"message":"Too Many Requests"})",
       {{"retry-after", "3"}},
       Verdict::retryable,
       "Twilio answered 400 with error 20429: Too Many Requests",
       Millis(3'000)},
      {0,
       503,
       "upstream down",
       {},
       Verdict::retryable,
       "Twilio answered 503 Service Unavailable: upstream down",
       std::nullopt},
      {7, 0, "", {}, Verdict::retryable, "Twilio not reached: Connection refused", std::nullopt},
  };
  SmsChannel ch = channel();
  for (const Case& c : cases) {
    Response r;
    r.transport_error = c.transport_error;
    r.transport_message = "Connection refused";
    r.status_code = c.status;
    r.body = c.body;
    r.headers = c.headers;
    Outcome o = ch.interpret(r);
    EXPECT_EQ(o.verdict, c.verdict) << c.status;
    EXPECT_EQ(o.detail, c.detail) << c.status;
    EXPECT_EQ(o.retry_after, c.retry_after) << c.status;
  }
}

}  // namespace
}  // namespace herald::channels
