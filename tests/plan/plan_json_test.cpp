#include "daemon/plan/plan_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace herald::plan {
namespace {

using nlohmann::json;

const char* kContractPlan = R"({"rules": [
  {"id": "contain-execs", "phases": ["containment", "eradication"], "min_severity": "high",
   "roles": ["executive", "legal"], "channels": ["email", "sms"],
   "delay": "0s", "repeat": "30m", "quiet_hours": "ignore",
   "escalate": {"after": "15m", "to_roles": ["incident_commander"]}},
  {"id": "contain-chat", "phases": ["containment"], "min_severity": "low",
   "endpoints": ["soc-slack"], "delay": "0s"}
]})";

TEST(PlanJson, ParsesTheContractExampleAndRoundTrips) {
  auto plan = parse_plan(json::parse(kContractPlan), {"soc-slack"});
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->rules.size(), 2u);
  EXPECT_EQ(plan->rules[0].repeat, Millis{30 * 60 * 1000});
  EXPECT_EQ(plan->rules[0].quiet_hours, QuietHoursPolicy::ignore);
  ASSERT_TRUE(plan->rules[0].escalate);
  auto again = parse_plan(plan_to_json(*plan), {"soc-slack"});
  ASSERT_TRUE(again);
  EXPECT_EQ(plan_to_json(*again), plan_to_json(*plan));
}

TEST(PlanJson, RejectionsNameRuleAndField) {
  struct Case {
    const char* rule;
    const char* field;
    const char* message_part;
  } cases[] = {
      {R"({"id":"a","phases":["contianment"],"roles":["x"]})", "rules[0].phases[0]",
       "unknown phase \"contianment\""},
      {R"({"id":"a","phases":["containment"],"min_severity":"urgent","roles":["x"]})",
       "rules[0].min_severity", "low, medium, high, critical"},
      {R"({"id":"a","phases":["containment"],"roles":["x"],"delay":"5 minutes"})", "rules[0].delay",
       "duration"},
      {R"({"id":"a","phases":["containment"],"endpoints":["nope"]})", "rules[0].endpoints[0]",
       "unknown endpoint \"nope\""},
      {R"({"id":"a","phases":["containment"],"roles":["x"],"channels":["pigeon"]})",
       "rules[0].channels[0]", "unknown channel \"pigeon\""},
      {R"({"id":"a","phases":["containment"]})", "rules[0].roles", "reaches nobody"},
      {R"({"id":"a","phases":["containment"],"roles":["x"],"quiet_hours":"maybe"})",
       "rules[0].quiet_hours", "respect"},
      {R"({"id":"a","phases":["containment"],"roles":["x"],"escalate":{"after":"0s","to_roles":["y"]}})",
       "rules[0].escalate.after", "positive"},
      {R"({"id":"a","phases":["containment"],"roles":["x"],"colour":"red"})", "rules[0].colour",
       "unknown field"},
      {R"({"phases":["containment"],"roles":["x"]})", "rules[0].id", "required"},
      {R"({"id":"a","phases":[],"roles":["x"]})", "rules[0].phases", "non-empty"},
  };
  for (const auto& c : cases) {
    auto body = json{{"rules", json::array({json::parse(c.rule)})}};
    auto plan = parse_plan(body, {"soc"});
    ASSERT_FALSE(plan) << c.rule;
    EXPECT_EQ(plan.error().kind, ErrorKind::unprocessable);
    EXPECT_EQ(plan.error().field, c.field) << c.rule;
    EXPECT_NE(plan.error().message.find(c.message_part), std::string::npos) << plan.error().message;
  }
}

TEST(PlanJson, DuplicateRuleIdsRejected) {
  auto body = json::parse(
      R"({"rules":[{"id":"a","phases":["recovery"],"roles":["x"]},{"id":"a","phases":["closed"],"roles":["y"]}]})");
  auto plan = parse_plan(body, {});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().field, "rules[1].id");
  EXPECT_NE(plan.error().message.find("duplicate"), std::string::npos);
}

TEST(PlanJson, WarningsNameGaps) {
  auto plan = parse_plan(json::parse(kContractPlan), {"soc-slack"});
  ASSERT_TRUE(plan);
  Contact dana;
  dana.roles = {"legal"};
  auto warnings = plan_warnings(*plan, {dana});
  auto has = [&](const std::string& text) {
    for (const auto& w : warnings) {
      if (w.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has("\"executive\""));
  EXPECT_TRUE(has("\"incident_commander\""));
  EXPECT_FALSE(has("\"legal\""));
  EXPECT_TRUE(has("phase \"identification\""));
  EXPECT_FALSE(has("phase \"containment\""));
}

}  // namespace
}  // namespace herald::plan
