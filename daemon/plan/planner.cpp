#include "daemon/plan/planner.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "daemon/core/crypto.hpp"

namespace herald::plan {
namespace {

bool contains(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool covers(const Rule& rule, Phase phase, Severity severity) {
  return severity >= rule.min_severity &&
         std::find(rule.phases.begin(), rule.phases.end(), phase) != rule.phases.end();
}

}  // namespace

bool has_address(const Contact& contact, std::string_view channel) {
  if (channel == kChannelEmail) {
    return !contact.email.empty();
  }
  if (channel == kChannelSms) {
    return !contact.phone.empty();
  }
  return false;
}

std::vector<std::string> channels_for(const Rule& rule, const Contact& contact) {
  const std::vector<std::string> all_person_channels{std::string(kChannelEmail),
                                                     std::string(kChannelSms)};
  const auto& wanted = !rule.channels.empty()      ? rule.channels
                       : !contact.channels.empty() ? contact.channels
                                                   : all_person_channels;
  std::vector<std::string> out;
  for (const auto& channel : wanted) {
    bool allowed = contact.channels.empty() || contains(contact.channels, channel);
    if (allowed && has_address(contact, channel) && !contains(out, channel)) {
      out.push_back(channel);
    }
  }
  return out;
}

std::vector<const Rule*> matching_rules(const Plan& plan, Phase phase, Severity severity) {
  std::vector<const Rule*> out;
  for (const Rule& rule : plan.rules) {
    if (covers(rule, phase, severity)) {
      out.push_back(&rule);
    }
  }
  return out;
}

std::vector<Intent> escalation_intents(const std::string& rule_id,
                                       const std::vector<std::string>& to_roles,
                                       const std::vector<std::string>& channels,
                                       QuietHoursPolicy quiet_hours,
                                       const std::vector<Contact>& contacts) {
  Plan plan;
  Rule rule;
  rule.id = rule_id;
  rule.phases = {Phase::preparation};
  rule.roles = to_roles;
  rule.channels = channels;
  rule.quiet_hours = quiet_hours;
  plan.rules.push_back(std::move(rule));
  return plan_messages(plan, Phase::preparation, Severity::critical, contacts, {});
}

std::vector<Intent> plan_messages(const Plan& plan, Phase phase, Severity severity,
                                  const std::vector<Contact>& contacts,
                                  const std::vector<Endpoint>& endpoints) {
  std::vector<Intent> out;
  std::unordered_map<std::string_view, const Endpoint*> endpoint_by_id;
  for (const Endpoint& e : endpoints) {
    endpoint_by_id.emplace(e.id, &e);
  }
  for (const Rule* matched : matching_rules(plan, phase, severity)) {
    const Rule& rule = *matched;
    for (const Contact& contact : contacts) {
      auto role = std::find_if(rule.roles.begin(), rule.roles.end(),
                               [&](const std::string& r) { return contains(contact.roles, r); });
      if (role == rule.roles.end()) {
        continue;
      }
      for (const auto& channel : channels_for(rule, contact)) {
        Intent intent;
        intent.rule_id = rule.id;
        intent.contact_id = contact.id;
        intent.role = *role;
        intent.channel = channel;
        intent.delay = rule.delay;
        intent.repeat = rule.repeat;
        intent.quiet_hours = rule.quiet_hours;
        out.push_back(std::move(intent));
      }
    }
    for (const auto& endpoint_id : rule.endpoints) {
      auto found = endpoint_by_id.find(endpoint_id);
      if (found == endpoint_by_id.end() || !found->second->enabled) {
        continue;
      }
      const Endpoint* endpoint = found->second;
      Intent intent;
      intent.rule_id = rule.id;
      intent.endpoint_id = endpoint->id;
      intent.channel = std::string(channel_of(endpoint->type));
      intent.delay = rule.delay;
      intent.repeat = rule.repeat;
      // Rooms and webhooks have no quiet hours: they are machines or shared channels.
      intent.quiet_hours = QuietHoursPolicy::ignore;
      out.push_back(std::move(intent));
    }
  }
  return out;
}

std::string message_id(std::string_view client_id, std::string_view event_id,
                       std::string_view rule_id, std::string_view recipient,
                       std::string_view channel, int update_number) {
  std::string key;
  for (std::string_view part : {client_id, event_id, rule_id, recipient, channel}) {
    key += std::to_string(part.size());
    key += ':';
    key += part;
  }
  key += std::to_string(update_number);
  return "msg_" + sha256_hex(key).substr(0, 26);
}

}  // namespace herald::plan
