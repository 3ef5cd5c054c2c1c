// The planner: a pure function from (plan, incident, event phase, contacts, endpoints) to the
// messages the event implies. No I/O, no clock: same inputs, same messages, same ids.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/domain.hpp"

namespace herald::plan {

// One message the plan asks for, before scheduling.
struct Intent {
  std::string rule_id;
  std::string contact_id;   // set for people
  std::string role;         // the role that made the contact a recipient
  std::string endpoint_id;  // set for endpoints
  std::string channel;      // email, sms, chat, webhook
  Millis delay{0};
  std::optional<Millis> repeat;
  QuietHoursPolicy quiet_hours = QuietHoursPolicy::respect;
};

// The rules that apply to an event of this phase and severity, in plan order.
std::vector<const Rule*> matching_rules(const Plan& plan, Phase phase, Severity severity);

// The people an escalation reaches: every contact holding one of `to_roles`, on the rule's
// channels (or their own), like a rule of its own.
std::vector<Intent> escalation_intents(const std::string& rule_id,
                                       const std::vector<std::string>& to_roles,
                                       const std::vector<std::string>& channels,
                                       QuietHoursPolicy quiet_hours,
                                       const std::vector<Contact>& contacts);

// Every rule whose phases include `phase` and whose min_severity is at most `severity`:
// each contact holding one of its roles, once per rule channel they have an address for and
// allow; and each endpoint the rule names that exists and is enabled. A contact reached by two
// rules on one channel is messaged by both (each rule is its own obligation).
std::vector<Intent> plan_messages(const Plan& plan, Phase phase, Severity severity,
                                  const std::vector<Contact>& contacts,
                                  const std::vector<Endpoint>& endpoints);

// The channels a rule reaches a contact on, in the rule's order (or the contact's, when the
// rule names none): those the contact allows and has an address for.
std::vector<std::string> channels_for(const Rule& rule, const Contact& contact);

bool has_address(const Contact& contact, std::string_view channel);

// Deterministic message id: the same (client, event, rule, recipient, channel, update) always
// yields the same id, so re-planning an event can never create a second message.
std::string message_id(std::string_view client_id, std::string_view event_id,
                       std::string_view rule_id, std::string_view recipient,
                       std::string_view channel, int update_number);

}  // namespace herald::plan
