#include "daemon/ingest/ingest.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::ingest {
namespace {

using nlohmann::json;

Timestamp at(const char* text) {
  return *parse_rfc3339(text);
}

json contract_event() {
  return json::parse(R"({"event_id": "evt-7f3a", "client": "acme",
    "incident": {"id": "INC-42", "title": "Ransomware on FS01", "severity": "critical"},
    "phase": "containment", "occurred_at": "2026-12-04T10:00:00Z",
    "summary": "FS01 isolated from the network", "details": {"host": "FS01"}, "drill": false})");
}

TEST(ParseEvent, ContractExample) {
  auto e = parse_event(contract_event());
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->event_id, "evt-7f3a");
  EXPECT_EQ(e->incident_id, "INC-42");
  EXPECT_EQ(e->severity, Severity::critical);
  EXPECT_EQ(e->phase, Phase::containment);
  EXPECT_EQ(e->occurred_at, at("2026-12-04T10:00:00Z"));
  EXPECT_EQ(json::parse(e->details_json), json({{"host", "FS01"}}));
}

TEST(ParseEvent, RejectionsNameTheField) {
  struct Case {
    std::function<void(json&)> change;
    const char* code;
    const char* field;
  } cases[] = {
      {[](json& j) { j["phase"] = "contianment"; }, "invalid_phase", "phase"},
      {[](json& j) { j.erase("phase"); }, "missing_field", "phase"},
      {[](json& j) { j["incident"]["severity"] = "urgent"; }, "invalid_severity",
       "incident.severity"},
      {[](json& j) { j.erase("event_id"); }, "missing_field", "event_id"},
      {[](json& j) { j["event_id"] = 7; }, "invalid_field", "event_id"},
      {[](json& j) { j.erase("client"); }, "missing_field", "client"},
      {[](json& j) { j["incident"].erase("id"); }, "missing_field", "incident.id"},
      {[](json& j) { j["incident"] = "INC-42"; }, "invalid_field", "incident"},
      {[](json& j) { j["occurred_at"] = "yesterday"; }, "invalid_field", "occurred_at"},
      {[](json& j) { j["details"] = json::array(); }, "invalid_field", "details"},
      {[](json& j) { j["drill"] = "yes"; }, "invalid_field", "drill"},
      {[](json& j) { j["ocurred_at"] = "2026-12-04T10:00:00Z"; }, "unknown_field", "ocurred_at"},
      {[](json& j) { j["incident"]["sev"] = "high"; }, "unknown_field", "incident.sev"},
  };
  for (const auto& c : cases) {
    json body = contract_event();
    c.change(body);
    auto e = parse_event(body);
    ASSERT_FALSE(e) << body.dump();
    EXPECT_EQ(e.error().kind, ErrorKind::unprocessable);
    EXPECT_EQ(e.error().code, c.code) << body.dump();
    EXPECT_EQ(e.error().field, c.field) << body.dump();
  }
}

class ApplyEventTest : public herald::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    ASSERT_TRUE(store_->write_sync([](store::Repo& r) -> Status {
      Timestamp t = at("2026-12-01T00:00:00Z");
      (void)r.put_client(Client{"acme", "Acme Corp", "UTC", "en"}, t);
      Contact dana;
      dana.client_id = "acme";
      dana.id = "dana";
      dana.name = "Dana";
      dana.roles = {"legal"};
      dana.email = "dana@acme.example";
      dana.phone = "+15551234567";
      (void)r.put_contact(dana, t);
      Endpoint slack;
      slack.client_id = "acme";
      slack.id = "soc";
      slack.type = EndpointType::slack;
      slack.url = "https://hooks.slack.example/x";
      (void)r.put_endpoint(slack, t);
      auto v = r.put_plan("acme", R"({"rules":[
        {"id":"legal","phases":["containment","eradication"],"min_severity":"high",
         "roles":["legal"],"channels":["email","sms"],"delay":"10m"},
        {"id":"room","phases":["identification","containment"],"endpoints":["soc"]}]})",
                          t);
      return v ? Status{} : Status{v.error()};
    }));
  }

  Result<IngestResult> apply(const Event& e, Timestamp now) {
    std::optional<Result<IngestResult>> out;
    Status st = store_->write_sync([&](store::Repo& r) -> Status {
      out.emplace(apply_event(r, e, now));
      return (*out) ? Status{} : Status{out->error()};
    });
    return std::move(*out);
  }

  std::vector<Message> messages() {
    store::MessageFilter f;
    f.limit = 100;
    return store_->read<store::MessagePage>([&](store::Repo& r) { return r.messages(f); })->items;
  }

  Event event(std::string id, Phase phase, const char* occurred, Severity s = Severity::critical) {
    Event e;
    e.event_id = std::move(id);
    e.client_id = "acme";
    e.incident_id = "INC-42";
    e.title = "Ransomware";
    e.severity = s;
    e.phase = phase;
    e.occurred_at = at(occurred);
    return e;
  }
};

// The hand-over: messages due at once that the dispatcher takes are claimed in the event's
// own transaction (sending, attempt 1); the others, and those it declines, stay scheduled.
TEST_F(ApplyEventTest, MessagesDueAtOnceTakenByTheDispatcherAreClaimedInTheSameCommit) {
  std::vector<std::string> asked;
  std::function<bool(const Message&)> take_now = [&asked](const Message& m) {
    asked.push_back(m.id);
    return m.channel == "chat";
  };
  std::optional<Result<IngestResult>> out;
  ASSERT_TRUE(store_->write_sync([&](store::Repo& r) -> Status {
    out.emplace(apply_event(r, event("e1", Phase::containment, "2026-12-04T10:00:00Z"),
                            at("2026-12-04T10:00:05Z"), take_now));
    return *out ? Status{} : Status{out->error()};
  }));
  ASSERT_TRUE(*out) << (*out).error().message;
  const IngestResult& r = **out;
  EXPECT_EQ(r.messages, 3);
  ASSERT_EQ(asked.size(), 1u);  // the email and the SMS are 10 minutes away: not asked
  ASSERT_EQ(r.claimed.size(), 1u);
  EXPECT_EQ(r.claimed[0].id, asked[0]);
  EXPECT_EQ(r.claimed[0].status, MessageStatus::sending);
  EXPECT_EQ(r.claimed[0].attempts, 1);
  for (const auto& m : messages()) {
    if (m.id == asked[0]) {
      EXPECT_EQ(m.status, MessageStatus::sending);
      EXPECT_EQ(m.attempts, 1);
    } else {
      EXPECT_EQ(m.status, MessageStatus::scheduled) << m.id;
      EXPECT_EQ(m.attempts, 0);
    }
  }
  // Declined: nothing claimed, the message waits for the dispatcher's own claim.
  std::optional<Result<IngestResult>> second;
  ASSERT_TRUE(store_->write_sync([&](store::Repo& rr) -> Status {
    Event e = event("e2", Phase::containment, "2026-12-04T10:01:00Z");
    e.incident_id = "INC-43";
    second.emplace(
        apply_event(rr, e, at("2026-12-04T10:01:05Z"), [](const Message&) { return false; }));
    return *second ? Status{} : Status{second->error()};
  }));
  ASSERT_TRUE(*second);
  EXPECT_TRUE((*second)->claimed.empty());
  int sending = 0;
  for (const auto& m : messages()) {
    sending += m.status == MessageStatus::sending ? 1 : 0;
  }
  EXPECT_EQ(sending, 1);
}

TEST_F(ApplyEventTest, PlansMessagesScheduledAfterTheDelay) {
  auto r =
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:00:05Z"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->messages, 3);  // email + sms to dana, chat to the room
  EXPECT_FALSE(r->duplicate);
  auto ms = messages();
  ASSERT_EQ(ms.size(), 3u);
  for (const auto& m : ms) {
    if (m.rule_id == "legal") {
      EXPECT_EQ(m.send_at, at("2026-12-04T10:10:00Z"));
    } else {
      EXPECT_EQ(m.send_at, at("2026-12-04T10:00:05Z"));  // occurred_at is past: now
    }
  }
}

TEST_F(ApplyEventTest, DuplicateEventIdCreatesNothing) {
  auto first =
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:00:05Z"));
  ASSERT_TRUE(first);
  auto again =
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:01:00Z"));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->messages, 3);
  EXPECT_EQ(messages().size(), 3u);
}

TEST_F(ApplyEventTest, BelowMinimumSeverityOnlyTheRoom) {
  auto r = apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z", Severity::medium),
                 at("2026-12-04T10:00:05Z"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->messages, 1);
}

TEST_F(ApplyEventTest, NewPhaseCancelsPendingOfTheOldOne) {
  ASSERT_TRUE(
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:00:01Z")));
  ASSERT_TRUE(
      apply(event("e2", Phase::eradication, "2026-12-04T10:05:00Z"), at("2026-12-04T10:05:01Z")));
  int cancelled = 0, scheduled = 0;
  for (const auto& m : messages()) {
    if (m.phase == Phase::containment) {
      EXPECT_EQ(m.status, MessageStatus::cancelled);
      ++cancelled;
    } else {
      EXPECT_EQ(m.status, MessageStatus::scheduled);
      ++scheduled;
    }
  }
  EXPECT_EQ(cancelled, 3);
  EXPECT_EQ(scheduled, 2);
  auto incident = store_->read<std::optional<Incident>>(
      [](store::Repo& r) { return r.incident("acme", "INC-42"); });
  EXPECT_EQ((*incident)->phase, Phase::eradication);
  EXPECT_EQ((*incident)->previous_phase, Phase::containment);
}

TEST_F(ApplyEventTest, OutOfOrderEventIsRecordedButNeverRollsBack) {
  ASSERT_TRUE(
      apply(event("e2", Phase::eradication, "2026-12-04T10:05:00Z"), at("2026-12-04T10:05:01Z")));
  auto late =
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:06:00Z"));
  ASSERT_TRUE(late);
  EXPECT_FALSE(late->applied);
  EXPECT_EQ(late->messages, 0);
  auto incident = store_->read<std::optional<Incident>>(
      [](store::Repo& r) { return r.incident("acme", "INC-42"); });
  EXPECT_EQ((*incident)->phase, Phase::eradication);
  auto events = store_->read<std::vector<store::StoredEvent>>(
      [](store::Repo& r) { return r.incident_events("acme", "INC-42"); });
  ASSERT_EQ(events->size(), 2u);
  EXPECT_FALSE((*events)[0].applied);
}

TEST_F(ApplyEventTest, UnknownClientIsUnprocessable) {
  Event e = event("e1", Phase::containment, "2026-12-04T10:00:00Z");
  e.client_id = "globex";
  auto r = apply(e, at("2026-12-04T10:00:05Z"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unknown_client");
  EXPECT_EQ(r.error().kind, ErrorKind::unprocessable);
}

TEST_F(ApplyEventTest, EveryEventIsAudited) {
  ASSERT_TRUE(
      apply(event("e1", Phase::containment, "2026-12-04T10:00:00Z"), at("2026-12-04T10:00:05Z")));
  auto records = store_->read<std::vector<store::AuditRecord>>(
      [](store::Repo& r) { return r.audit_records(0, 10, "event.received"); });
  ASSERT_EQ(records->size(), 1u);
  auto data = json::parse((*records)[0].data);
  EXPECT_EQ(data["messages"], 3);
  EXPECT_EQ(data["phase"], "containment");
}

}  // namespace
}  // namespace herald::ingest
