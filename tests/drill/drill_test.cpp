// Drill schedules (days, windows, zones), percentiles, and notification deadlines on a real
// store with a driven clock: reminders planned from the phase change, a late event, phase
// changes that leave reminders alone, marking met, overdue records.
#include <gtest/gtest.h>

#include "daemon/drill/drill.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/obligation/obligation.hpp"
#include "daemon/report/report.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald {
namespace {

using namespace std::chrono_literals;

Timestamp at(const char* text) {
  auto t = parse_rfc3339(text);
  EXPECT_TRUE(t) << text;
  return t.value_or(Timestamp{});
}

TEST(DrillDaysTest, ParseAndFormat) {
  struct Case {
    const char* text;
    std::optional<int> bits;
    const char* formatted;
  };
  const Case cases[] = {
      {"mon-fri", 0x1F, "mon-fri"},
      {"daily", 0x7F, "daily"},
      {"mon,wed,fri", 0x15, "mon,wed,fri"},
      {"sat-sun", 0x60, "sat,sun"},
      {"fri-mon", 0x71, "mon,fri-sun"},
      {"mon-fri,sun", 0x5F, "mon-fri,sun"},
      {"", std::nullopt, ""},
      {"monday", std::nullopt, ""},
      {"mon-", std::nullopt, ""},
      {"mon,,tue", std::nullopt, ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(drill::parse_days(c.text), c.bits) << c.text;
    if (c.bits) {
      EXPECT_EQ(drill::format_days(*c.bits), c.formatted) << c.text;
    }
  }
}

TEST(DrillScheduleTest, NextSlotIsInsideTheWindowOnAnAllowedDayInTheClientsZone) {
  drill::DrillSchedule s;  // 09:00-17:00, mon-fri
  const char* berlin = "Europe/Berlin";
  // Friday 19:00 in Berlin: the next slot is Monday 09:00 (08:00 UTC in winter).
  EXPECT_EQ(drill::next_slot(s, berlin, at("2026-12-04T18:00:00Z")), at("2026-12-07T08:00:00Z"));
  // Inside the window: at once.
  EXPECT_EQ(drill::next_slot(s, berlin, at("2026-12-07T10:30:00Z")), at("2026-12-07T10:30:00Z"));
  // Before it on a weekday: the same day's start.
  EXPECT_EQ(drill::next_slot(s, berlin, at("2026-12-08T05:00:00Z")), at("2026-12-08T08:00:00Z"));
  // Across the change to summer time (28 March 2027): 09:00 CEST is 07:00 UTC.
  EXPECT_EQ(drill::next_slot(s, berlin, at("2027-03-27T12:00:00Z")), at("2027-03-29T07:00:00Z"));
  // Another zone, a weekend-only window ending at midnight.
  s.days = *drill::parse_days("sat-sun");
  s.window_start = 22 * 60;
  s.window_end = 24 * 60;
  EXPECT_EQ(drill::next_slot(s, "America/New_York", at("2026-12-04T12:00:00Z")),
            at("2026-12-06T03:00:00Z"));
}

TEST(DrillScheduleTest, ParseNamesTheField) {
  Client c{"acme", "Acme", "Europe/Berlin", "en"};
  auto now = at("2026-12-04T10:00:00Z");
  auto ok = drill::parse_schedule(
      nlohmann::json{{"every", "90d"}, {"phase", "containment"}, {"severity", "high"}}, c, now);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->next_at, at("2027-03-04T10:00:00Z"));  // 90 days later: a Thursday, 11:00
  EXPECT_EQ(drill::schedule_json(*ok)["window"], "09:00-17:00");
  auto start = drill::parse_schedule(nlohmann::json{{"every", "1d"},
                                                    {"phase", "recovery"},
                                                    {"severity", "low"},
                                                    {"window", "00:00-24:00"},
                                                    {"days", "daily"},
                                                    {"start", "2026-12-05T03:00:00Z"}},
                                     c, now);
  ASSERT_TRUE(start) << start.error().message;
  EXPECT_EQ(start->next_at, at("2026-12-05T03:00:00Z"));
  for (const auto& [body, field] : std::vector<std::pair<nlohmann::json, std::string>>{
           {{{"phase", "containment"}, {"severity", "high"}}, "every"},
           {{{"every", "30m"}, {"phase", "containment"}, {"severity", "high"}}, "every"},
           {{{"every", "1d"}, {"severity", "high"}}, "phase"},
           {{{"every", "1d"}, {"phase", "containment"}, {"severity", "x"}}, "severity"},
           {{{"every", "1d"}, {"phase", "containment"}, {"severity", "high"}, {"window", "9-5"}},
            "window"},
           {{{"every", "1d"}, {"phase", "containment"}, {"severity", "high"}, {"extra", 1}},
            "extra"}}) {
    auto r = drill::parse_schedule(body, c, now);
    ASSERT_FALSE(r) << body.dump();
    EXPECT_EQ(r.error().field, field) << body.dump();
  }
}

TEST(PercentileTest, NearestRank) {
  EXPECT_EQ(report::percentile({}, 0.5), std::nullopt);
  EXPECT_EQ(report::percentile({7}, 0.9), 7);
  std::vector<int64_t> v{10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  EXPECT_EQ(report::percentile(v, 0.5), 50);
  EXPECT_EQ(report::percentile(v, 0.9), 90);
  EXPECT_EQ(report::percentile(v, 1.0), 100);
}

class DeadlineTest : public testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    ASSERT_TRUE(write([](store::Repo& r) -> Status {
      auto t = at("2026-12-01T00:00:00Z");
      if (auto s = r.put_client(Client{"acme", "Acme", "UTC", "en"}, t); !s) {
        return s.error();
      }
      Contact lee;
      lee.client_id = "acme";
      lee.id = "lee";
      lee.name = "Lee";
      lee.roles = {"legal"};
      lee.email = "lee@acme.example";
      if (auto s = r.put_contact(lee, t); !s) {
        return s.error();
      }
      Contact dana = lee;
      dana.id = "dana";
      dana.roles = {"executive"};
      dana.email = "dana@acme.example";
      dana.phone = "+15551234567";
      if (auto s = r.put_contact(dana, t); !s) {
        return s.error();
      }
      auto list = obligation::parse_obligations(nlohmann::json::parse(R"({"obligations": [
        {"id": "gdpr-72h", "starts": "identification", "within": "72h",
         "remind": ["4h", "24h"], "roles": ["legal"], "escalate_to": ["executive"],
         "channels": ["email"], "quiet_hours": "ignore"}]})"));
      if (!list) {
        return list.error();
      }
      auto v = obligation::save(r, "acme", *list, t);
      return v ? Status{} : Status(v.error());
    }));
  }

  Result<ingest::IngestResult> send(const char* id, Phase phase, Timestamp occurred,
                                    Timestamp now) {
    Event e;
    e.event_id = id;
    e.client_id = "acme";
    e.incident_id = "INC-1";
    e.severity = Severity::high;
    e.phase = phase;
    e.occurred_at = occurred;
    e.source = "api";
    e.token_name = "test";
    std::optional<Result<ingest::IngestResult>> out;
    auto st = write([&](store::Repo& r) -> Status {
      out.emplace(ingest::apply_event(r, e, now));
      return *out ? Status{} : Status(out->error());
    });
    if (!st) {
      return st.error();
    }
    return std::move(*out);
  }

  // kind, contact, send_at, status of the obligation's messages, in send order.
  std::vector<std::tuple<std::string, std::string, Timestamp, MessageStatus>> messages() {
    auto page = store_->read<store::MessagePage>([](store::Repo& r) {
      store::MessageFilter f;
      f.client_id = "acme";
      f.incident_id = "INC-1";
      f.limit = 100;
      return r.messages(f);
    });
    EXPECT_TRUE(page);
    std::vector<std::tuple<std::string, std::string, Timestamp, MessageStatus>> out;
    for (const auto& m : page->items) {
      if (m.rule_id.rfind("obligation:", 0) == 0) {
        out.emplace_back(m.kind, m.contact_id, m.send_at, m.status);
      }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(std::get<2>(a), std::get<1>(a)) < std::tie(std::get<2>(b), std::get<1>(b));
    });
    return out;
  }
};

TEST_F(DeadlineTest, RemindersBeforeTheDeadlineAndTheNoticeAtIt) {
  auto t0 = at("2026-12-04T10:00:00Z");
  ASSERT_TRUE(send("e1", Phase::identification, t0, t0 + 2s));
  using M = std::tuple<std::string, std::string, Timestamp, MessageStatus>;
  EXPECT_EQ(messages(), (std::vector<M>{
                            {"reminder", "lee", t0 + 48h, MessageStatus::scheduled},
                            {"reminder", "lee", t0 + 68h, MessageStatus::scheduled},
                            {"overdue", "dana", t0 + 72h, MessageStatus::scheduled},
                            {"overdue", "lee", t0 + 72h, MessageStatus::scheduled},
                        }));
  // Later phase changes leave the deadline's messages alone; a return to the phase does not
  // restart the clock.
  ASSERT_TRUE(send("e2", Phase::containment, t0 + 1h, t0 + 1h));
  ASSERT_TRUE(send("e3", Phase::identification, t0 + 2h, t0 + 2h));
  auto after = messages();
  ASSERT_EQ(after.size(), 4u);
  for (const auto& m : after) {
    EXPECT_EQ(std::get<3>(m), MessageStatus::scheduled);
  }
  // A reminder carries its obligation for the templates; other messages carry none.
  auto notices = store_->read<std::vector<std::optional<obligation::Notice>>>(
      [](store::Repo& r) -> Result<std::vector<std::optional<obligation::Notice>>> {
        store::MessageFilter f;
        f.client_id = "acme";
        f.limit = 100;
        auto page = r.messages(f);
        if (!page) {
          return page.error();
        }
        std::vector<std::optional<obligation::Notice>> out;
        for (const auto& m : page->items) {
          auto n = obligation::notice_for(r, m);
          if (!n) {
            return n.error();
          }
          out.push_back(*n);
        }
        out.push_back(std::nullopt);
        auto plain = obligation::notice_for(r, Message{});
        if (!plain) {
          return plain.error();
        }
        out.back() = *plain;
        return out;
      });
  ASSERT_TRUE(notices);
  ASSERT_EQ(notices->size(), 5u);
  EXPECT_FALSE(notices->back().has_value());
  const auto& first = (*notices)[0];
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, "gdpr-72h");
  EXPECT_EQ(first->due_at, t0 + 72h);
  EXPECT_EQ(first->within, 72h);

  // Nothing is overdue before the deadline; at it, once.
  auto overdue = [&](Timestamp now) {
    int n = -1;
    EXPECT_TRUE(write([&](store::Repo& r) -> Status {
      auto o = obligation::mark_overdue(r, now);
      if (!o) {
        return o.error();
      }
      n = *o;
      return {};
    }));
    return n;
  };
  EXPECT_EQ(overdue(t0 + 71h), 0);
  EXPECT_EQ(overdue(t0 + 72h), 1);
  EXPECT_EQ(overdue(t0 + 73h), 0);
}

TEST_F(DeadlineTest, MetStopsWhatIsLeftAndALateEventSendsOnlyTheLastReminder) {
  auto t0 = at("2026-12-04T10:00:00Z");
  // Reported 70 hours late: both reminder moments passed; the 4h one goes at once.
  auto now = t0 + 70h;
  ASSERT_TRUE(send("e1", Phase::identification, t0, now));
  using M = std::tuple<std::string, std::string, Timestamp, MessageStatus>;
  EXPECT_EQ(messages(), (std::vector<M>{
                            {"reminder", "lee", now, MessageStatus::scheduled},
                            {"overdue", "dana", t0 + 72h, MessageStatus::scheduled},
                            {"overdue", "lee", t0 + 72h, MessageStatus::scheduled},
                        }));
  std::optional<obligation::MetOutcome> met;
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto m = obligation::mark_met(r, "acme", "INC-1", "gdpr-72h", "ops", "filed", now + 1h);
    if (!m) {
      return m.error();
    }
    met = *m;
    return {};
  }));
  EXPECT_TRUE(met->first);
  EXPECT_EQ(met->cancelled, 3);
  EXPECT_EQ(met->obligation["state"], "met");
  for (const auto& m : messages()) {
    EXPECT_EQ(std::get<3>(m), MessageStatus::cancelled);
  }
  // A met obligation is never overdue.
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto o = obligation::mark_overdue(r, t0 + 80h);
    EXPECT_TRUE(o && *o == 0);
    return {};
  }));
  // Unknown and not-started obligations.
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto unknown = obligation::mark_met(r, "acme", "INC-1", "nope", "ops", "", now);
    EXPECT_FALSE(unknown);
    EXPECT_EQ(unknown.error().kind, ErrorKind::not_found);
    auto no_incident = obligation::mark_met(r, "acme", "INC-9", "gdpr-72h", "ops", "", now);
    EXPECT_FALSE(no_incident);
    EXPECT_EQ(no_incident.error().kind, ErrorKind::not_found);
    return {};
  }));
}

TEST_F(DeadlineTest, DrillsStartNoClock) {
  auto t0 = at("2026-12-04T10:00:00Z");
  std::optional<drill::DrillRecord> d;
  ASSERT_TRUE(write([&](store::Repo& r) -> Status {
    auto x =
        drill::start_drill(r, "acme", Phase::identification, Severity::critical, "ops", false, t0);
    if (!x) {
      return x.error();
    }
    d = *x;
    return {};
  }));
  auto obligations = store_->read<nlohmann::json>([&](store::Repo& r) {
    return obligation::incident_obligations(r, "acme", d->incident_id, t0);
  });
  ASSERT_TRUE(obligations);
  EXPECT_TRUE(obligations->empty());
  auto drills = store_->read<std::vector<drill::DrillRecord>>(
      [](store::Repo& r) { return drill::list_drills(r, "acme", std::nullopt, std::nullopt); });
  ASSERT_TRUE(drills);
  ASSERT_EQ(drills->size(), 1u);
  EXPECT_EQ((*drills)[0].id, d->id);
  EXPECT_EQ((*drills)[0].phase, Phase::identification);
}

}  // namespace
}  // namespace herald
