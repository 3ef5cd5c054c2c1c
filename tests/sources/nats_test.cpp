// The NATS source's pure part (a message body as an event) and the rejections it records.
#include <gtest/gtest.h>

#include <string>

#include "daemon/sources/nats/nats.hpp"
#include "daemon/store/repo.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::sources {
namespace {

const std::string kGood =
    R"({"event_id": "evt-1", "client": "acme", "incident": {"id": "INC-1", "severity": "high"},
        "phase": "containment"})";

TEST(NatsEventTest, AGoodBodyIsAnEventFromNats) {
  auto e = nats_event(kGood);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->event_id, "evt-1");
  EXPECT_EQ(e->phase, Phase::containment);
  EXPECT_EQ(e->source, "nats");
  EXPECT_EQ(e->token_name, "nats");
}

TEST(NatsEventTest, EachMistakeIsNamed) {
  struct Case {
    std::string body;
    ErrorKind kind;
    std::string code;
    std::string field;
  };
  const Case cases[] = {
      {"", ErrorKind::invalid, "malformed_json", ""},
      {"{\"event_id\": ", ErrorKind::invalid, "malformed_json", ""},
      {"[1, 2]", ErrorKind::unprocessable, "invalid_event", ""},
      {R"({"event_id": "e", "client": "acme", "incident": {"id": "I", "severity": "high"},
          "phase": "panic"})",
       ErrorKind::unprocessable, "invalid_phase", "phase"},
      {R"({"event_id": "e", "client": "acme", "incident": {"id": "I", "severity": "dire"},
          "phase": "containment"})",
       ErrorKind::unprocessable, "invalid_severity", "incident.severity"},
      {R"({"client": "acme"})", ErrorKind::unprocessable, "missing_field", "event_id"},
      {std::string(1 << 20, ' ') + "{}", ErrorKind::invalid, "too_large", ""},
      // fuzz/fuzz_plan: a number beyond a double threw out_of_range, which nothing caught.
      {R"({"event_id": "e", "client": "acme", "severity": 1e999})", ErrorKind::invalid,
       "malformed_json", ""},
      // fuzz/regressions/event: details nested this deep overflowed the stack when printed.
      {R"({"event_id": "e", "client": "acme", "incident": {"id": "I", "severity": "high"},
          "phase": "containment", "details": {"a": )" +
           std::string(200'000, '[') + std::string(200'000, ']') + "}}",
       ErrorKind::invalid, "malformed_json", ""},
  };
  for (const auto& c : cases) {
    auto e = nats_event(c.body);
    ASSERT_FALSE(e) << c.body.substr(0, 80);
    EXPECT_EQ(e.error().kind, c.kind) << c.body.substr(0, 80);
    EXPECT_EQ(e.error().code, c.code) << c.body.substr(0, 80);
    EXPECT_EQ(e.error().field, c.field) << c.body.substr(0, 80);
    EXPECT_FALSE(e.error().message.empty());
  }
}

class RejectionStoreTest : public herald::testing::StoreFixture {};

TEST_F(RejectionStoreTest, RecordedOncePerMessageAndPaged) {
  store::SourceRejection r;
  r.source = "nats";
  r.subject = "incidents.phase";
  r.received_at = Timestamp{Millis{1'000}};
  r.code = "malformed_json";
  r.message = "the message is not valid JSON";
  r.payload = "{";
  r.size = 1;
  // A redelivery of message 3 is the same rejection, not a second one.
  const std::pair<int, bool> records[] = {{3, true}, {4, true}, {3, false}, {5, true}};
  for (auto [seq, expect_created] : records) {
    r.ref = "INCIDENTS:" + std::to_string(seq);
    bool created = false;
    ASSERT_TRUE(write([&](store::Repo& repo) -> Status {
      auto inserted = repo.insert_source_rejection(r);
      if (!inserted) {
        return inserted.error();
      }
      created = *inserted;
      return {};
    }));
    EXPECT_EQ(created, expect_created) << seq;
    r.received_at = Timestamp{Millis{2'000}};
  }
  auto all = store_->read<std::vector<store::SourceRejection>>(
      [](store::Repo& repo) { return repo.source_rejections("nats", 0, 10); });
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ref, "INCIDENTS:3");
  EXPECT_EQ((*all)[0].received_at, Timestamp{Millis{1'000}});
  EXPECT_EQ((*all)[2].ref, "INCIDENTS:5");
  auto after = store_->read<std::vector<store::SourceRejection>>(
      [&](store::Repo& repo) { return repo.source_rejections("nats", (*all)[0].id, 1); });
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].ref, "INCIDENTS:4");
  auto other = store_->read<std::vector<store::SourceRejection>>(
      [](store::Repo& repo) { return repo.source_rejections("kafka", 0, 10); });
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->empty());
}

}  // namespace
}  // namespace herald::sources
