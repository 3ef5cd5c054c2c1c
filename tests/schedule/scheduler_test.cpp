// The plan's schedule over time, with a driven clock: events at given times, then repeats,
// escalations and acknowledgements as time moves, on a real SQLite store.
#include "daemon/schedule/scheduler.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "daemon/ingest/ingest.hpp"
#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::schedule {
namespace {

Timestamp at(const char* text) {
  return *parse_rfc3339(text);
}

class SchedulerTest : public herald::testing::StoreFixture {
 protected:
  void setup(const std::string& plan_json) {
    ASSERT_TRUE(write([&](store::Repo& r) -> Status {
      Timestamp t = at("2026-01-01T00:00:00Z");
      (void)r.put_client(Client{"acme", "Acme", "UTC", "en"}, t);
      auto person = [&](std::string id, std::string role, std::string zone,
                        std::optional<QuietHours> quiet) {
        Contact c;
        c.client_id = "acme";
        c.id = id;
        c.name = id;
        c.roles = {std::move(role)};
        c.email = id + "@acme.example";
        c.timezone = std::move(zone);
        c.quiet_hours = quiet;
        (void)r.put_contact(c, t);
      };
      person("tech", "technician", "UTC", std::nullopt);
      person("tech2", "technician", "UTC", std::nullopt);
      person("boss", "incident_commander", "UTC", std::nullopt);
      // 22:00-07:00 in New York (UTC-5 in winter): 03:00Z-12:00Z.
      person("night", "legal", "America/New_York", QuietHours{22 * 60, 7 * 60});
      auto v = r.put_plan("acme", plan_json, t);
      return v ? Status{} : Status{v.error()};
    }));
  }

  void event(const std::string& id, Phase phase, const char* when) {
    Event e;
    e.event_id = id;
    e.client_id = "acme";
    e.incident_id = "INC-1";
    e.severity = Severity::high;
    e.phase = phase;
    e.occurred_at = at(when);
    ASSERT_TRUE(write([&](store::Repo& r) -> Status {
      auto res = ingest::apply_event(r, e, at(when));
      return res ? Status{} : Status{res.error()};
    }));
  }

  // Claims and "sends" everything due at `now`, as the dispatcher does.
  std::vector<Message> run_due(const char* now) {
    std::vector<Message> claimed;
    EXPECT_TRUE(write([&](store::Repo& r) -> Status {
      auto c = r.claim_due(at(now), 100);
      if (!c) {
        return c.error();
      }
      claimed = *c;
      if (auto s = schedule_repeats(r, claimed, at(now)); !s) {
        return s;
      }
      for (const auto& m : claimed) {
        if (auto s = r.finish_attempt(m.id, MessageStatus::delivered, m.send_at, at(now), ""); !s) {
          return s;
        }
      }
      return {};
    }));
    return claimed;
  }

  std::vector<EscalationOutcome> escalate(const char* now) {
    std::vector<EscalationOutcome> out;
    EXPECT_TRUE(write([&](store::Repo& r) -> Status {
      auto f = fire_due_escalations(r, at(now), 100);
      if (!f) {
        return f.error();
      }
      out = *f;
      return {};
    }));
    return out;
  }

  std::vector<Message> all() {
    store::MessageFilter f;
    f.limit = 500;
    return store_->read<store::MessagePage>([&](store::Repo& r) { return r.messages(f); })->items;
  }

  static std::vector<std::string> who(const std::vector<Message>& ms) {
    std::vector<std::string> out;
    for (const auto& m : ms) {
      out.push_back(m.contact_id + "#" + std::to_string(m.update_number) +
                    (m.kind == "escalation" ? "!" : ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(SchedulerTest, RepeatsEveryIntervalWhileThePhaseLasts) {
  setup(R"({"rules":[{"id":"techs","phases":["containment"],"roles":["technician"],
            "channels":["email"],"repeat":"30m"}]})");
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  struct Step {
    const char* now;
    std::vector<std::string> sent;
  } steps[] = {
      {"2026-01-05T10:00:00Z", {"tech#1", "tech2#1"}},
      {"2026-01-05T10:29:59Z", {}},
      {"2026-01-05T10:30:00Z", {"tech#2", "tech2#2"}},
      {"2026-01-05T11:15:00Z", {"tech#3", "tech2#3"}},  // late (Herald was down)...
      {"2026-01-05T11:15:01Z", {}},                     // ...but never bunched
      {"2026-01-05T11:30:00Z", {"tech#4", "tech2#4"}},
      {"2026-01-05T13:10:00Z", {"tech#5", "tech2#5"}},  // down 1h40m: one update, not three
      {"2026-01-05T13:10:01Z", {}},
      {"2026-01-05T13:30:00Z", {"tech#6", "tech2#6"}},
  };
  for (const auto& s : steps) {
    EXPECT_EQ(who(run_due(s.now)), s.sent) << s.now;
  }
  // The phase moves on: the pending update 7 is cancelled and nothing follows.
  event("e2", Phase::eradication, "2026-01-05T13:45:00Z");
  EXPECT_EQ(who(run_due("2026-01-05T15:00:00Z")), std::vector<std::string>{});
  int cancelled = 0;
  for (const auto& m : all()) {
    cancelled += m.status == MessageStatus::cancelled;
  }
  EXPECT_EQ(cancelled, 2);
}

TEST_F(SchedulerTest, QuietHoursDeferInTheContactsZoneAndRepeatsToo) {
  setup(R"({"rules":[{"id":"legal","phases":["identification"],"roles":["legal"],
            "channels":["email"],"repeat":"1h"}]})");
  // 04:00Z is 23:00 in New York: quiet until 07:00 local = 12:00Z.
  event("e1", Phase::identification, "2026-01-05T04:00:00Z");
  EXPECT_EQ(who(run_due("2026-01-05T11:59:00Z")), std::vector<std::string>{});
  auto first = run_due("2026-01-05T12:00:00Z");
  ASSERT_EQ(who(first), std::vector<std::string>{"night#1"});
  EXPECT_EQ(first[0].planned_at, at("2026-01-05T04:00:00Z"));
  // Updates planned during the quiet night are not sent in a burst: the next one is the next
  // slot of the hourly cadence, 13:00Z.
  EXPECT_EQ(who(run_due("2026-01-05T12:59:59Z")), std::vector<std::string>{});
  auto second = run_due("2026-01-05T13:00:00Z");
  ASSERT_EQ(who(second), std::vector<std::string>{"night#2"});
  EXPECT_EQ(second[0].planned_at, at("2026-01-05T13:00:00Z"));
}

TEST_F(SchedulerTest, EscalatesWhenNobodyAcknowledges) {
  setup(R"({"rules":[{"id":"techs","phases":["containment"],"roles":["technician"],
            "channels":["email"],"escalate":{"after":"15m","to_roles":["incident_commander"]}}]})");
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  run_due("2026-01-05T10:00:00Z");
  EXPECT_TRUE(escalate("2026-01-05T10:14:59Z").empty());
  auto fired = escalate("2026-01-05T10:15:00Z");
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].status, store::EscalationStatus::fired);
  EXPECT_EQ(fired[0].messages, 1);
  EXPECT_EQ(who(run_due("2026-01-05T10:15:00Z")), std::vector<std::string>{"boss#1!"});
  EXPECT_TRUE(escalate("2026-01-05T11:00:00Z").empty());  // fires once
}

TEST_F(SchedulerTest, AnAckStopsRepeatsAndEscalation) {
  setup(R"({"rules":[{"id":"techs","phases":["containment"],"roles":["technician"],
            "channels":["email"],"repeat":"10m",
            "escalate":{"after":"15m","to_roles":["incident_commander"]}}]})");
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  auto sent = run_due("2026-01-05T10:00:00Z");
  auto tech =
      std::find_if(sent.begin(), sent.end(), [](auto& m) { return m.contact_id == "tech"; });
  ASSERT_NE(tech, sent.end());
  AckOutcome ack;
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto a = acknowledge(r, tech->id, "127.0.0.1", at("2026-01-05T10:05:00Z"));
    if (!a) {
      return a.error();
    }
    ack = *a;
    return {};
  }));
  EXPECT_TRUE(ack.first);
  EXPECT_EQ(ack.cancelled, 1);  // tech's scheduled update 2
  EXPECT_EQ(ack.escalations_stopped, 1);
  // tech2 did not acknowledge: their updates go on; tech's stop.
  EXPECT_EQ(who(run_due("2026-01-05T10:10:00Z")), std::vector<std::string>{"tech2#2"});
  EXPECT_TRUE(escalate("2026-01-05T10:15:00Z").empty());  // acknowledged, nothing due
  // A second ack of the same message changes nothing.
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto a = acknowledge(r, tech->id, "127.0.0.1", at("2026-01-05T10:06:00Z"));
    EXPECT_TRUE(a && !a->first);
    return {};
  }));
}

TEST_F(SchedulerTest, LeavingThePhaseCancelsThePendingEscalation) {
  setup(R"({"rules":[{"id":"techs","phases":["containment"],"roles":["technician"],
            "channels":["email"],"escalate":{"after":"15m","to_roles":["incident_commander"]}}]})");
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  event("e2", Phase::recovery, "2026-01-05T10:05:00Z");
  EXPECT_TRUE(escalate("2026-01-05T10:15:00Z").empty());
  auto escalations = store_->read<std::vector<store::EscalationRecord>>(
      [](store::Repo& r) { return r.escalations("acme", "INC-1"); });
  ASSERT_EQ(escalations->size(), 1u);
  EXPECT_EQ((*escalations)[0].status, store::EscalationStatus::cancelled);
}

TEST_F(SchedulerTest, AClaimRepeatedAfterACrashHasOneSuccessor) {
  setup(R"({"rules":[{"id":"techs","phases":["containment"],"roles":["technician"],
            "channels":["email"],"repeat":"10m"}]})");
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  std::vector<Message> claimed;
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto c = r.claim_due(at("2026-01-05T10:00:00Z"), 100);
    claimed = *c;
    return schedule_repeats(r, claimed, at("2026-01-05T10:00:00Z"));
  }));
  // Crash before the outcome was recorded: the restart requeues and claims again.
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    (void)r.requeue_interrupted(at("2026-01-05T10:01:00Z"));
    auto c = r.claim_due(at("2026-01-05T10:01:00Z"), 100);
    EXPECT_EQ(c->size(), 2u);
    return schedule_repeats(r, *c, at("2026-01-05T10:01:00Z"));
  }));
  int second_updates = 0;
  for (const auto& m : all()) {
    second_updates += m.update_number == 2;
  }
  EXPECT_EQ(second_updates, 2);  // one per technician, not two
}

TEST_F(SchedulerTest, AFailedMessageFallsBackToThePersonsNextChannel) {
  setup(R"({"rules":[{"id":"legal","phases":["containment"],"roles":["legal"],
            "channels":["email"],"quiet_hours":"ignore"}]})");
  ASSERT_TRUE(write([](store::Repo& r) -> Status {
    Contact c;
    c.client_id = "acme";
    c.id = "dana";
    c.name = "Dana";
    c.roles = {"legal"};
    c.email = "dana@acme.example";
    c.phone = "+15551234567";
    c.channels = {"email", "sms"};
    return r.put_contact(c, at("2026-01-01T00:00:00Z")).ok()
               ? Status{}
               : Status{make_error(ErrorKind::internal, "", "")};
  }));
  event("e1", Phase::containment, "2026-01-05T10:00:00Z");
  auto sent = run_due("2026-01-05T10:00:00Z");
  auto dana =
      std::find_if(sent.begin(), sent.end(), [](auto& m) { return m.contact_id == "dana"; });
  ASSERT_NE(dana, sent.end());
  Message failed = *dana;
  failed.last_error = "550 no such user";
  std::optional<Message> fallback;
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto f = plan_fallback(r, failed, at("2026-01-05T10:01:00Z"));
    if (!f) {
      return f.error();
    }
    fallback = *f;
    return {};
  }));
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->channel, "sms");
  EXPECT_EQ(fallback->fallback_of, failed.id);
  EXPECT_EQ(fallback->send_at, at("2026-01-05T10:01:00Z"));
  // Once SMS has been used too, nothing is left; and planning again never duplicates.
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto again = plan_fallback(r, *fallback, at("2026-01-05T10:02:00Z"));
    EXPECT_TRUE(again && !again->has_value());
    auto twice = plan_fallback(r, failed, at("2026-01-05T10:03:00Z"));
    EXPECT_TRUE(twice && !twice->has_value());
    return {};
  }));
  auto records = store_->read<std::vector<store::AuditRecord>>(
      [](store::Repo& r) { return r.audit_records(0, 100, "delivery.fallback"); });
  EXPECT_EQ(records->size(), 1u);
}

}  // namespace
}  // namespace herald::schedule
