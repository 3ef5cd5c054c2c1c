// Fuzz target "plan": the body of PUT /v1/clients/{client}/plan through api::parse_body and
// plan::parse_plan (the validator that names rule and field), and for a valid plan what the
// daemon then does with it: plan_to_json (what GET returns and the store keeps), which must
// parse back to the same plan, plan_warnings, and the planner for every phase and severity.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/api/context.hpp"
#include "daemon/plan/plan_json.hpp"
#include "daemon/plan/planner.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

using namespace herald;

const std::set<std::string> kEndpointIds{"soc-slack", "siem", "teams-room"};

std::vector<Contact> contacts() {
  Contact dana{
      "acme",         "dana", "Dana Lee",         {"legal", "executive"},      "dana@acme.example",
      "+15551234567", "",     "America/New_York", QuietHours{22 * 60, 7 * 60}, {"email", "sms"}};
  Contact tim{"acme", "tim",  "Tim Okafor",    {"technician"}, "tim@msp.example",
              "",     "@tim", "Europe/Berlin", std::nullopt,   {}};
  Contact ivy{"acme",       "ivy",          "Ivy", {"incident_commander", "technician"},
              "",           "+15550001111", "",    "UTC",
              std::nullopt, {"sms"}};
  return {dana, tim, ivy};
}

std::vector<Endpoint> endpoints() {
  return {
      Endpoint{"acme", "soc-slack", EndpointType::slack, "https://hooks.example/x", {}, true},
      Endpoint{"acme",
               "siem",
               EndpointType::webhook,
               "https://siem.example/h",
               {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
               true},
      Endpoint{"acme", "teams-room", EndpointType::teams, "https://teams.example/y", {}, false}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  http::Request request;
  request.method = "PUT";
  request.target = request.path = "/v1/clients/acme/plan";
  request.body.assign(reinterpret_cast<const char*>(data), size);

  auto body = api::parse_body(request);
  if (!body) {
    FUZZ_CHECK(api::error_response(body.error()).status == 400);
    return 0;
  }
  auto plan = plan::parse_plan(*body, kEndpointIds);
  if (!plan) {
    FUZZ_CHECK(api::error_response(plan.error()).status == 422);
    return 0;
  }
  // The canonical form is what the store keeps and GET returns: it must be a valid plan, and
  // canonical already.
  const json canonical = plan::plan_to_json(*plan);
  auto again = plan::parse_plan(json::parse(canonical.dump()), kEndpointIds);
  FUZZ_CHECK(again);
  FUZZ_CHECK(plan::plan_to_json(*again) == canonical);

  static const auto kContacts = contacts();
  static const auto kEndpoints = endpoints();
  (void)plan::plan_warnings(*plan, kContacts);
  for (Phase phase : kAllPhases) {
    for (Severity severity :
         {Severity::low, Severity::medium, Severity::high, Severity::critical}) {
      for (const auto& intent :
           plan::plan_messages(*plan, phase, severity, kContacts, kEndpoints)) {
        FUZZ_CHECK(intent.contact_id.empty() != intent.endpoint_id.empty());
        FUZZ_CHECK(!intent.channel.empty());
        (void)plan::message_id("acme", "evt-1", intent.rule_id,
                               intent.contact_id.empty() ? intent.endpoint_id : intent.contact_id,
                               intent.channel, 1);
      }
    }
  }
  for (const Rule& rule : plan->rules) {
    if (rule.escalate) {
      (void)plan::escalation_intents(rule.id, rule.escalate->to_roles, rule.channels,
                                     rule.quiet_hours, kContacts);
    }
  }
  return 0;
}
