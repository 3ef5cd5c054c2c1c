#include "daemon/plan/planner.hpp"

#include <gtest/gtest.h>

namespace herald::plan {
namespace {

Contact contact(std::string id, std::vector<std::string> roles, std::string email,
                std::string phone, std::vector<std::string> channels = {}) {
  Contact c;
  c.client_id = "acme";
  c.id = std::move(id);
  c.roles = std::move(roles);
  c.email = std::move(email);
  c.phone = std::move(phone);
  c.channels = std::move(channels);
  return c;
}

Rule rule(std::string id, std::vector<Phase> phases, Severity min, std::vector<std::string> roles,
          std::vector<std::string> channels, std::vector<std::string> endpoints = {}) {
  Rule r;
  r.id = std::move(id);
  r.phases = std::move(phases);
  r.min_severity = min;
  r.roles = std::move(roles);
  r.channels = std::move(channels);
  r.endpoints = std::move(endpoints);
  return r;
}

std::vector<std::string> summary(const std::vector<Intent>& intents) {
  std::vector<std::string> out;
  for (const auto& i : intents) {
    out.push_back(i.rule_id + "/" + (i.contact_id.empty() ? i.endpoint_id : i.contact_id) + "/" +
                  i.channel);
  }
  return out;
}

TEST(Planner, MatrixTable) {
  Plan plan;
  plan.rules = {rule("execs", {Phase::containment, Phase::eradication}, Severity::high,
                     {"executive", "legal"}, {"email", "sms"}),
                rule("chat", {Phase::containment}, Severity::low, {}, {}, {"soc", "gone"})};
  std::vector<Contact> contacts{
      contact("dana", {"legal"}, "dana@acme.example", "+15551234567"),
      contact("eve", {"executive", "legal"}, "eve@acme.example", "", {"sms", "email"}),
      contact("sam", {"executive"}, "sam@acme.example", "+15550001111", {"sms"}),
      contact("tim", {"technician"}, "tim@msp.example", "+15550002222")};
  Endpoint soc;
  soc.id = "soc";
  soc.type = EndpointType::slack;
  std::vector<Endpoint> endpoints{soc};

  struct Case {
    Phase phase;
    Severity severity;
    std::vector<std::string> expected;
  } cases[] = {
      {Phase::containment,
       Severity::critical,
       {"execs/dana/email", "execs/dana/sms", "execs/eve/email", "execs/sam/sms", "chat/soc/chat"}},
      {Phase::containment, Severity::medium, {"chat/soc/chat"}},
      {Phase::eradication,
       Severity::high,
       {"execs/dana/email", "execs/dana/sms", "execs/eve/email", "execs/sam/sms"}},
      {Phase::recovery, Severity::critical, {}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(summary(plan_messages(plan, c.phase, c.severity, contacts, endpoints)), c.expected)
        << to_string(c.phase) << "/" << to_string(c.severity);
  }
}

TEST(Planner, RuleWithoutChannelsFollowsContactPreference) {
  Rule r = rule("all", {Phase::identification}, Severity::low, {"technician"}, {});
  auto c = contact("tim", {"technician"}, "tim@msp.example", "+15550002222", {"sms", "email"});
  EXPECT_EQ(channels_for(r, c), (std::vector<std::string>{"sms", "email"}));
  c.channels.clear();
  EXPECT_EQ(channels_for(r, c), (std::vector<std::string>{"email", "sms"}));
}

TEST(Planner, DisabledEndpointsAreSkipped) {
  Plan plan;
  plan.rules = {rule("hook", {Phase::recovery}, Severity::low, {}, {}, {"siem"})};
  Endpoint siem;
  siem.id = "siem";
  siem.type = EndpointType::webhook;
  siem.enabled = false;
  EXPECT_TRUE(plan_messages(plan, Phase::recovery, Severity::low, {}, {siem}).empty());
  siem.enabled = true;
  EXPECT_EQ(summary(plan_messages(plan, Phase::recovery, Severity::low, {}, {siem})),
            (std::vector<std::string>{"hook/siem/webhook"}));
}

TEST(Planner, MessageIdsAreDeterministicAndDistinct) {
  auto a = message_id("acme", "evt-1", "r", "contact:dana", "email", 1);
  EXPECT_EQ(a, message_id("acme", "evt-1", "r", "contact:dana", "email", 1));
  EXPECT_NE(a, message_id("acme", "evt-1", "r", "contact:dana", "sms", 1));
  EXPECT_NE(a, message_id("acme", "evt-1", "r", "contact:dana", "email", 2));
  EXPECT_NE(a, message_id("acme", "evt-1r", "", "contact:dana", "email", 1));
  EXPECT_EQ(a.rfind("msg_", 0), 0u);
}

}  // namespace
}  // namespace herald::plan
