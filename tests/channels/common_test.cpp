#include "channels/common.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace herald::channels {
namespace {

using std::chrono::seconds;

Timestamp at(long long unix_seconds) {
  return Timestamp(seconds(unix_seconds));
}

// 2015-10-21T07:28:00Z
constexpr long long kOct21 = 1445412480;

TEST(RetryAfter, Parses) {
  struct Case {
    const char* value;
    std::optional<Millis> expected;
  };
  const Timestamp now = at(kOct21 - 60);
  const Case cases[] = {
      {"120", Millis(120'000)},
      {" 5 ", Millis(5'000)},
      {"0", Millis(0)},
      {"99999999999999999999", Millis(365LL * 24 * 3600 * 1000)},  // capped, not overflowed
      {"-1", std::nullopt},
      {"1.5", std::nullopt},
      {"soon", std::nullopt},
      {"", std::nullopt},
      {"Wed, 21 Oct 2015 07:28:00 GMT", Millis(60'000)},
      {"Wed, 21 Oct 2015 07:00:00 GMT", Millis(0)},  // in the past: now
      {"Wed, 21 Oct 2015 07:28:00 UTC", std::nullopt},
      {"Wed, 32 Oct 2015 07:28:00 GMT", std::nullopt},
      {"Wednesday, 21-Oct-15 07:28:00 GMT", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parse_retry_after(c.value, now), c.expected) << c.value;
  }
}

TEST(RetryAfter, DateIsMeasuredAgainstTheResponseDate) {
  Response r;
  r.status_code = 503;
  r.headers = {{"date", "Wed, 21 Oct 2015 07:27:30 GMT"},
               {"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  EXPECT_EQ(retry_after_of(r), Millis(30'000));
  r.headers = {{"retry-after", "42"}};
  EXPECT_EQ(retry_after_of(r), Millis(42'000));
  r.headers = {};
  EXPECT_EQ(retry_after_of(r), std::nullopt);
}

TEST(HttpDate, Parses) {
  EXPECT_EQ(parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"), at(kOct21));
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"), at(1709164800));
  EXPECT_EQ(parse_http_date("Fri, 29 Feb 2023 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_http_date("Wed, 21 Foo 2015 07:28:00 GMT"), std::nullopt);
}

TEST(ClassifyHttp, MapsStatusToVerdict) {
  struct Case {
    int transport_error;
    long status;
    Verdict verdict;
  };
  const Case cases[] = {
      {7, 0, Verdict::retryable},   {28, 0, Verdict::retryable},  {0, 200, Verdict::delivered},
      {0, 201, Verdict::delivered}, {0, 202, Verdict::delivered}, {0, 204, Verdict::delivered},
      {0, 301, Verdict::permanent}, {0, 400, Verdict::permanent}, {0, 401, Verdict::permanent},
      {0, 403, Verdict::permanent}, {0, 404, Verdict::permanent}, {0, 408, Verdict::retryable},
      {0, 410, Verdict::permanent}, {0, 413, Verdict::permanent}, {0, 429, Verdict::retryable},
      {0, 500, Verdict::retryable}, {0, 502, Verdict::retryable}, {0, 503, Verdict::retryable},
      {0, 504, Verdict::retryable}, {0, 100, Verdict::permanent},
  };
  for (const Case& c : cases) {
    Response r;
    r.transport_error = c.transport_error;
    r.transport_message = "Connection refused";
    r.status_code = c.status;
    Outcome o = classify_http(r, "Service");
    EXPECT_EQ(o.verdict, c.verdict) << c.transport_error << " " << c.status;
    EXPECT_EQ(o.status_code, c.status);
    EXPECT_FALSE(o.detail.empty());
  }
}

TEST(ClassifyHttp, DetailAndRetryAfter) {
  Response r;
  r.status_code = 429;
  r.headers = {{"retry-after", "30"}};
  r.body = "rate\nlimited";
  Outcome o = classify_http(r, "Slack");
  EXPECT_EQ(o.verdict, Verdict::retryable);
  EXPECT_EQ(o.retry_after, Millis(30'000));
  EXPECT_EQ(o.detail, "Slack answered 429 Too Many Requests: rate limited");

  Response refused;
  refused.transport_error = 7;
  refused.transport_message = "Failed to connect to hooks.example port 443";
  EXPECT_EQ(classify_http(refused, "Slack").detail,
            "Slack not reached: Failed to connect to hooks.example port 443");
  EXPECT_EQ(classify_http(refused, "Slack").verdict, Verdict::retryable);

  Response guarded;
  guarded.transport_error = 7;
  guarded.destination_refused = true;
  guarded.transport_message = "destination 10.0.0.5 is a private address";
  EXPECT_EQ(classify_http(guarded, "Slack").verdict, Verdict::permanent);

  Response gone;
  gone.status_code = 404;
  gone.headers = {{"retry-after", "30"}};
  EXPECT_EQ(classify_http(gone, "Slack").retry_after, std::nullopt);
}

TEST(FormEncode, Encodes) {
  EXPECT_EQ(form_encode("+15551234567"), "%2B15551234567");
  EXPECT_EQ(form_encode("a b&c=d"), "a+b%26c%3Dd");
  EXPECT_EQ(form_encode("é"), "%C3%A9");
  EXPECT_EQ(form_encode("*-._~"), "*-._%7E");
  EXPECT_EQ(form_encode("line\r\nbreak"), "line%0D%0Abreak");
  EXPECT_EQ(path_encode("AC12 /x"), "AC12%20%2Fx");
}

TEST(Utf8Truncate, NeverCutsACharacter) {
  struct Case {
    const char* text;
    size_t max;
    const char* expected;
  };
  const Case cases[] = {
      {"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "hé"}, {"€€€", 2, "€€"},
      {"😀a", 1, "😀"},         {"", 5, ""},         {"abc", 0, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(utf8_truncate(c.text, c.max), c.expected) << c.text << " " << c.max;
  }
}

TEST(FindHeader, ByLowerCaseName) {
  Headers h = {{"content-type", "text/plain"}, {"retry-after", "5"}};
  EXPECT_EQ(find_header(h, "retry-after"), "5");
  EXPECT_EQ(find_header(h, "date"), std::nullopt);
}

}  // namespace
}  // namespace herald::channels
