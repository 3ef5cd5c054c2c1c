#include "daemon/sources/alertmanager/alertmanager.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace herald::sources {
namespace {

using nlohmann::json;

// Shaped like what Alertmanager 0.25 posts to a webhook receiver.
json payload() {
  return json::parse(R"({
    "version": "4", "groupKey": "{}:{alertname=\"DiskEncrypting\"}", "truncatedAlerts": 0,
    "status": "firing", "receiver": "herald",
    "groupLabels": {"alertname": "DiskEncrypting"},
    "commonLabels": {"alertname": "DiskEncrypting", "severity": "critical"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
    "alerts": [{
      "status": "firing",
      "labels": {"alertname": "DiskEncrypting", "severity": "critical", "host": "FS01"},
      "annotations": {"summary": "Mass encryption on FS01",
                      "description": "1,200 files renamed in a minute"},
      "startsAt": "2026-12-04T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph", "fingerprint": "c0ffee00c0ffee00"}]})");
}

TEST(Alertmanager, FiringAlertBecomesIdentification) {
  auto events = alertmanager_events(payload(), "acme");
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 1u);
  const Event& e = (*events)[0];
  EXPECT_EQ(e.client_id, "acme");
  EXPECT_EQ(e.incident_id, "{}:{alertname=\"DiskEncrypting\"}");
  EXPECT_EQ(e.phase, Phase::identification);
  EXPECT_EQ(e.severity, Severity::critical);
  EXPECT_EQ(e.title, "Mass encryption on FS01");
  EXPECT_EQ(e.summary, "1,200 files renamed in a minute");
  EXPECT_EQ(e.occurred_at, *parse_rfc3339("2026-12-04T10:00:00Z"));
  EXPECT_EQ(e.source, "alertmanager");
  EXPECT_EQ(json::parse(e.details_json)["labels"]["host"], "FS01");
}

TEST(Alertmanager, ResolvedAlertBecomesRecoveryWithAnotherEventId) {
  auto firing = alertmanager_events(payload(), "acme");
  json resolved = payload();
  resolved["alerts"][0]["status"] = "resolved";
  resolved["alerts"][0]["endsAt"] = "2026-12-04T11:00:00Z";
  auto events = alertmanager_events(resolved, "acme");
  ASSERT_TRUE(events);
  EXPECT_EQ((*events)[0].phase, Phase::recovery);
  EXPECT_EQ((*events)[0].occurred_at, *parse_rfc3339("2026-12-04T11:00:00Z"));
  EXPECT_NE((*events)[0].event_id, (*firing)[0].event_id);
  // A repeated notification of the same alert in the same state: the same event id.
  EXPECT_EQ((*alertmanager_events(payload(), "acme"))[0].event_id, (*firing)[0].event_id);
}

TEST(Alertmanager, LabelsOverrideTheDefaults) {
  json p = payload();
  p["alerts"][0]["labels"]["client"] = "globex";
  p["alerts"][0]["labels"]["incident"] = "INC-7";
  p["alerts"][0]["labels"]["phase"] = "containment";
  auto events = alertmanager_events(p, "acme");
  ASSERT_TRUE(events);
  EXPECT_EQ((*events)[0].client_id, "globex");
  EXPECT_EQ((*events)[0].incident_id, "INC-7");
  EXPECT_EQ((*events)[0].phase, Phase::containment);
}

TEST(Alertmanager, SeverityMapping) {
  struct Case {
    const char* label;
    Severity expected;
  } cases[] = {{"critical", Severity::critical},
               {"warning", Severity::medium},
               {"high", Severity::high},
               {"info", Severity::low},
               {"", Severity::low}};
  for (const auto& c : cases) {
    json p = payload();
    p["alerts"][0]["labels"]["severity"] = c.label;
    auto events = alertmanager_events(p, "acme");
    ASSERT_TRUE(events);
    EXPECT_EQ((*events)[0].severity, c.expected) << c.label;
  }
}

TEST(Alertmanager, LongGroupKeysGiveAStableShortIncident) {
  json p = payload();
  p["groupKey"] = std::string(500, 'k');
  auto a = alertmanager_events(p, "acme");
  auto b = alertmanager_events(p, "acme");
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*a)[0].incident_id, (*b)[0].incident_id);
  EXPECT_LE((*a)[0].incident_id.size(), 200u);
}

// POST /v1/events refuses a title over 1,000 bytes or a summary over 20,000; an alert's are
// shortened instead, at a character boundary, and marked with an ellipsis.
TEST(Alertmanager, LongTitleAndSummaryAreShortenedNotRefused) {
  json p = payload();
  std::string euro;
  for (int i = 0; i < 600; ++i) {
    euro += "\xE2\x82\xAC";  // 3 bytes each: 1,800 bytes
  }
  p["alerts"][0]["annotations"]["summary"] = euro;
  p["alerts"][0]["annotations"]["description"] = std::string(30'000, 'd');
  auto events = alertmanager_events(p, "acme");
  ASSERT_TRUE(events) << events.error().message;
  const Event& e = events->front();
  EXPECT_LE(e.title.size(), kMaxEventTitle);
  EXPECT_GE(e.title.size(), kMaxEventTitle - 5);
  EXPECT_EQ(e.title.substr(e.title.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ((e.title.size() - 3) % 3, 0u);  // whole characters only
  EXPECT_EQ(e.title.substr(0, 6), "\xE2\x82\xAC\xE2\x82\xAC");
  EXPECT_EQ(e.summary.size(), kMaxEventSummary);
  EXPECT_EQ(e.summary.substr(0, 3), "ddd");
  // Details past 256 KiB cannot be shortened meaningfully: refused, naming the alert.
  p["alerts"][0]["annotations"]["runbook"] = std::string(300'000, 'r');
  auto big = alertmanager_events(p, "acme");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().field, "alerts[0].annotations");
}

TEST(Alertmanager, RejectionsNameTheAlert) {
  struct Case {
    std::function<void(json&)> change;
    const char* field;
  } cases[] = {
      {[](json& p) { p["alerts"] = "nope"; }, "alerts"},
      {[](json& p) { p["version"] = "3"; }, "version"},
      {[](json& p) { p["alerts"][0]["status"] = "pending"; }, "alerts[0].status"},
      {[](json& p) { p["alerts"][0]["labels"]["phase"] = "panic"; }, "alerts[0].labels.phase"},
      // The ids POST /v1/events would refuse (fuzz/regressions/alertmanager).
      {[](json& p) { p["alerts"][0]["labels"]["incident"] = std::string(201, 'I'); },
       "alerts[0].labels.incident"},
      {[](json& p) { p["alerts"][0]["labels"]["incident"] = "INC\n42"; },
       "alerts[0].labels.incident"},
      {[](json& p) { p["alerts"][0]["labels"]["client"] = "acme\x7f"; }, "alerts[0].labels.client"},
  };
  for (const auto& c : cases) {
    json p = payload();
    c.change(p);
    auto events = alertmanager_events(p, "acme");
    ASSERT_FALSE(events) << p.dump();
    EXPECT_EQ(events.error().kind, ErrorKind::unprocessable);
    EXPECT_EQ(events.error().field, c.field);
  }
  auto no_client = alertmanager_events(payload(), "");
  ASSERT_FALSE(no_client);
  EXPECT_EQ(no_client.error().field, "alerts[0].labels.client");
}

}  // namespace
}  // namespace herald::sources
