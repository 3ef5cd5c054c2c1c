#include "channels/webhook/webhook_channel.hpp"

#include <gtest/gtest.h>

#include "channels/common.hpp"

namespace herald::channels {
namespace {

// The signing test vector of the Standard Webhooks reference libraries
// (standard-webhooks/standard-webhooks, libraries/*, "sign" tests).
constexpr const char* kVectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kVectorId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr long long kVectorTimestamp = 1614265330;
constexpr const char* kVectorBody = R"({"test": 2432232314})";
constexpr const char* kVectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

Outgoing vector_message() {
  Outgoing m;
  m.message_id = kVectorId;
  m.channel = "webhook";
  m.url = "https://receiver.example.test/herald";
  m.payload_json = kVectorBody;
  m.secrets = {kVectorSecret};
  m.now = Timestamp(std::chrono::milliseconds(kVectorTimestamp * 1000 + 999));
  return m;
}

TEST(StandardWebhooks, ReproducesTheSpecVector) {
  auto sig = sign_standard_webhook({kVectorSecret}, kVectorId, kVectorTimestamp, kVectorBody);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(*sig, kVectorSignature);
  // The whsec_ prefix is optional, as in the reference libraries.
  auto bare = sign_standard_webhook({"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, kVectorId,
                                    kVectorTimestamp, kVectorBody);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, kVectorSignature);
}

TEST(WebhookChannel, BuildsSignedRequest) {
  auto built = WebhookChannel().build(vector_message());
  ASSERT_TRUE(built.ok()) << built.error().message;
  const auto& r = std::get<HttpRequest>(*built);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://receiver.example.test/herald");
  EXPECT_EQ(r.body, kVectorBody);
  EXPECT_TRUE(r.guard_destination);
  EXPECT_FALSE(r.follow_redirects);
  EXPECT_EQ(r.headers, (Headers{{"content-type", "application/json"},
                                {"webhook-id", kVectorId},
                                {"webhook-timestamp", "1614265330"},
                                {"webhook-signature", kVectorSignature}}));
}

TEST(WebhookChannel, RotationSignsWithEverySecret) {
  Outgoing m = vector_message();
  m.secrets = {kVectorSecret, "whsec_" + std::string("c2Vjb25kLWtleQ==")};  // "second-key"
  auto built = WebhookChannel().build(m);
  ASSERT_TRUE(built.ok());
  std::string header =
      find_header(std::get<HttpRequest>(*built).headers, "webhook-signature").value_or("");
  ASSERT_EQ(header.find(std::string(kVectorSignature) + " v1,"), 0u) << header;
  EXPECT_EQ(header.size(), std::string(kVectorSignature).size() * 2 + 1);
}

TEST(WebhookChannel, UnusableSecretsAreBuildErrors) {
  struct Case {
    std::vector<std::string> secrets;
    const char* code;
  };
  const Case cases[] = {
      {{}, "missing_secret"},
      {{"whsec_"}, "invalid_secret"},
      {{"whsec_not base64!"}, "invalid_secret"},
      {{"whsec_abc"}, "invalid_secret"},
      {{kVectorSecret, "whsec_%%%%"}, "invalid_secret"},
  };
  for (const Case& c : cases) {
    Outgoing m = vector_message();
    m.secrets = c.secrets;
    auto built = WebhookChannel().build(m);
    ASSERT_FALSE(built.ok());
    EXPECT_EQ(built.error().code, c.code);
    // The error never repeats the secret.
    for (const std::string& s : c.secrets) {
      if (s.size() > 6) {
        EXPECT_EQ(built.error().message.find(s.substr(6)), std::string::npos);
      }
    }
  }
  Outgoing m = vector_message();
  m.url = "ftp://receiver.example.test/";
  EXPECT_FALSE(WebhookChannel().build(m).ok());
}

TEST(WebhookChannel, Interpret) {
  struct Case {
    int transport_error;
    long status;
    Headers headers;
    Verdict verdict;
    std::optional<Millis> retry_after;
  };
  const Case cases[] = {
      {0, 200, {}, Verdict::delivered, std::nullopt},
      {0, 202, {}, Verdict::delivered, std::nullopt},
      {0, 204, {}, Verdict::delivered, std::nullopt},
      {0, 301, {}, Verdict::permanent, std::nullopt},
      {0, 400, {}, Verdict::permanent, std::nullopt},
      {0, 401, {}, Verdict::permanent, std::nullopt},
      {0, 404, {}, Verdict::permanent, std::nullopt},
      {0, 410, {}, Verdict::permanent, std::nullopt},
      {0, 429, {{"retry-after", "60"}}, Verdict::retryable, Millis(60'000)},
      {0, 500, {}, Verdict::retryable, std::nullopt},
      {0, 503, {{"retry-after", "7"}}, Verdict::retryable, Millis(7'000)},
      {28, 0, {}, Verdict::retryable, std::nullopt},
      {7, 0, {}, Verdict::retryable, std::nullopt},
  };
  for (const Case& c : cases) {
    Response r;
    r.transport_error = c.transport_error;
    r.transport_message = "Operation timed out";
    r.status_code = c.status;
    r.headers = c.headers;
    Outcome o = WebhookChannel().interpret(r);
    EXPECT_EQ(o.verdict, c.verdict) << c.status;
    EXPECT_EQ(o.retry_after, c.retry_after) << c.status;
    if (c.status == 410) {
      EXPECT_EQ(o.detail, "410 Gone: endpoint asks to stop");
    }
  }
}

}  // namespace
}  // namespace herald::channels
