#include "daemon/plan/plan_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace herald::plan {
namespace {

using nlohmann::json;

const std::set<std::string> kRuleFields{"id",          "phases",   "min_severity", "roles",
                                        "endpoints",   "channels", "delay",        "repeat",
                                        "quiet_hours", "escalate"};

bool valid_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// Collects the context of the rule being parsed, so every error names rule and field alike.
class RuleParser {
 public:
  RuleParser(const json& rule, size_t index, const std::set<std::string>& endpoint_ids)
      : rule_(rule), index_(index), endpoint_ids_(endpoint_ids) {}

  Result<Rule> parse() {
    if (!rule_.is_object()) {
      return fail("", "must be an object");
    }
    if (rule_.contains("id") && rule_["id"].is_string()) {
      name_ = rule_["id"].get<std::string>();
    }
    for (const auto& [key, _] : rule_.items()) {
      if (!kRuleFields.count(key)) {
        return fail(key, fmt::format("unknown field \"{}\"", key));
      }
    }
    Rule r;
    if (!rule_.contains("id") || !rule_["id"].is_string() || !valid_id(name_)) {
      return fail("id", "is required: 1-64 letters, digits, '-', '_' or '.'");
    }
    r.id = name_;

    auto phases = strings("phases", true);
    if (!phases) {
      return phases.error();
    }
    for (size_t i = 0; i < phases->size(); ++i) {
      auto p = parse_phase((*phases)[i]);
      if (!p) {
        return fail(fmt::format("phases[{}]", i),
                    fmt::format("unknown phase \"{}\" (one of preparation, identification, "
                                "containment, eradication, recovery, lessons_learned, closed)",
                                (*phases)[i]));
      }
      r.phases.push_back(*p);
    }

    if (rule_.contains("min_severity")) {
      const auto& v = rule_["min_severity"];
      auto s = v.is_string() ? parse_severity(v.get<std::string>()) : std::nullopt;
      if (!s) {
        return fail("min_severity", "must be one of low, medium, high, critical");
      }
      r.min_severity = *s;
    }

    auto roles = strings("roles", false);
    if (!roles) {
      return roles.error();
    }
    r.roles = *roles;
    for (size_t i = 0; i < r.roles.size(); ++i) {
      if (r.roles[i].empty()) {
        return fail(fmt::format("roles[{}]", i), "must not be empty");
      }
    }

    auto endpoints = strings("endpoints", false);
    if (!endpoints) {
      return endpoints.error();
    }
    r.endpoints = *endpoints;
    for (size_t i = 0; i < r.endpoints.size(); ++i) {
      if (!endpoint_ids_.count(r.endpoints[i])) {
        return fail(fmt::format("endpoints[{}]", i),
                    fmt::format("unknown endpoint \"{}\": create it first with PUT "
                                "/v1/clients/{{client}}/endpoints/{}",
                                r.endpoints[i], r.endpoints[i]));
      }
    }

    auto channels = strings("channels", false);
    if (!channels) {
      return channels.error();
    }
    r.channels = *channels;
    for (size_t i = 0; i < r.channels.size(); ++i) {
      if (!is_person_channel(r.channels[i])) {
        return fail(fmt::format("channels[{}]", i),
                    fmt::format("unknown channel \"{}\" (people are reached by email or sms; "
                                "chat rooms and webhooks are endpoints)",
                                r.channels[i]));
      }
    }
    if (!r.channels.empty() && r.roles.empty()) {
      return fail("channels", "names channels but no roles to reach on them");
    }
    if (r.roles.empty() && r.endpoints.empty()) {
      return fail("roles", "the rule reaches nobody: name roles, endpoints or both");
    }

    if (auto d = duration("delay"); !d) {
      return d.error();
    } else if (d->has_value()) {
      r.delay = **d;
    }
    if (auto d = duration("repeat"); !d) {
      return d.error();
    } else if (d->has_value()) {
      if (**d < std::chrono::seconds(1)) {
        return fail("repeat", "must be at least 1s");
      }
      r.repeat = **d;
    }

    if (rule_.contains("quiet_hours")) {
      const auto& v = rule_["quiet_hours"];
      if (v == "respect") {
        r.quiet_hours = QuietHoursPolicy::respect;
      } else if (v == "ignore") {
        r.quiet_hours = QuietHoursPolicy::ignore;
      } else {
        return fail("quiet_hours", "must be \"respect\" or \"ignore\"");
      }
    }

    if (rule_.contains("escalate")) {
      const auto& e = rule_["escalate"];
      if (!e.is_object()) {
        return fail("escalate", "must be an object {\"after\": \"15m\", \"to_roles\": [...]}");
      }
      for (const auto& [key, _] : e.items()) {
        if (key != "after" && key != "to_roles") {
          return fail("escalate." + key, fmt::format("unknown field \"{}\"", key));
        }
      }
      Escalation esc;
      auto after = e.contains("after") && e["after"].is_string()
                       ? parse_duration(e["after"].get<std::string>())
                       : std::nullopt;
      if (!after || *after <= Millis{0}) {
        return fail("escalate.after", "must be a positive duration like \"15m\"");
      }
      esc.after = *after;
      if (!e.contains("to_roles") || !e["to_roles"].is_array() || e["to_roles"].empty()) {
        return fail("escalate.to_roles", "must be a non-empty array of roles");
      }
      for (const auto& role : e["to_roles"]) {
        if (!role.is_string() || role.get<std::string>().empty()) {
          return fail("escalate.to_roles", "must hold non-empty strings");
        }
        esc.to_roles.push_back(role.get<std::string>());
      }
      if (r.roles.empty()) {
        return fail("escalate", "escalation needs roles: someone must be able to acknowledge");
      }
      r.escalate = std::move(esc);
    }
    return r;
  }

 private:
  Error fail(const std::string& field, const std::string& problem) const {
    std::string path = fmt::format("rules[{}]", index_);
    if (!field.empty()) {
      path += "." + field;
    }
    std::string who =
        name_.empty() ? fmt::format("rule {}", index_) : fmt::format("rule \"{}\"", name_);
    std::string message = field.empty() ? fmt::format("{}: {}", who, problem)
                                        : fmt::format("{}: {}: {}", who, field, problem);
    return make_error(ErrorKind::unprocessable, "invalid_plan", message, path);
  }

  Result<std::vector<std::string>> strings(const std::string& key, bool required) {
    std::vector<std::string> out;
    if (!rule_.contains(key)) {
      if (required) {
        return fail(key, "is required");
      }
      return out;
    }
    const auto& v = rule_[key];
    if (!v.is_array() || (required && v.empty())) {
      return fail(key, required ? "must be a non-empty array of strings" : "must be an array");
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        return fail(fmt::format("{}[{}]", key, i), "must be a string");
      }
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  Result<std::optional<Millis>> duration(const std::string& key) {
    if (!rule_.contains(key) || rule_[key].is_null()) {
      return std::optional<Millis>{};
    }
    const auto& v = rule_[key];
    auto d = v.is_string() ? parse_duration(v.get<std::string>()) : std::nullopt;
    if (!d) {
      return fail(key, "must be a duration like \"90s\", \"15m\" or \"2h\"");
    }
    return std::optional<Millis>(*d);
  }

  const json& rule_;
  size_t index_;
  const std::set<std::string>& endpoint_ids_;
  std::string name_;
};

}  // namespace

Result<Plan> parse_plan(const json& body, const std::set<std::string>& endpoint_ids) {
  if (!body.is_object()) {
    return make_error(ErrorKind::unprocessable, "invalid_plan",
                      "the plan must be an object {\"rules\": [...]}");
  }
  for (const auto& [key, _] : body.items()) {
    if (key != "rules") {
      return make_error(ErrorKind::unprocessable, "invalid_plan",
                        fmt::format("unknown field \"{}\"", key), key);
    }
  }
  if (!body.contains("rules") || !body["rules"].is_array()) {
    return make_error(ErrorKind::unprocessable, "invalid_plan", "rules must be an array", "rules");
  }
  Plan plan;
  std::set<std::string> ids;
  const auto& rules = body["rules"];
  for (size_t i = 0; i < rules.size(); ++i) {
    auto rule = RuleParser(rules[i], i, endpoint_ids).parse();
    if (!rule) {
      return rule.error();
    }
    if (!ids.insert(rule->id).second) {
      return make_error(ErrorKind::unprocessable, "invalid_plan",
                        fmt::format("rule \"{}\": id: duplicate rule id", rule->id),
                        fmt::format("rules[{}].id", i));
    }
    plan.rules.push_back(std::move(*rule));
  }
  return plan;
}

json plan_to_json(const Plan& plan) {
  json rules = json::array();
  for (const Rule& r : plan.rules) {
    json j;
    j["id"] = r.id;
    json phases = json::array();
    for (Phase p : r.phases) {
      phases.push_back(std::string(to_string(p)));
    }
    j["phases"] = phases;
    j["min_severity"] = std::string(to_string(r.min_severity));
    if (!r.roles.empty()) {
      j["roles"] = r.roles;
    }
    if (!r.endpoints.empty()) {
      j["endpoints"] = r.endpoints;
    }
    if (!r.channels.empty()) {
      j["channels"] = r.channels;
    }
    j["delay"] = format_duration(r.delay);
    if (r.repeat) {
      j["repeat"] = format_duration(*r.repeat);
    }
    j["quiet_hours"] = r.quiet_hours == QuietHoursPolicy::ignore ? "ignore" : "respect";
    if (r.escalate) {
      j["escalate"] = {{"after", format_duration(r.escalate->after)},
                       {"to_roles", r.escalate->to_roles}};
    }
    rules.push_back(std::move(j));
  }
  return json{{"rules", rules}};
}

std::vector<std::string> plan_warnings(const Plan& plan, const std::vector<Contact>& contacts) {
  std::vector<std::string> out;
  std::set<std::string> held;
  for (const auto& c : contacts) {
    held.insert(c.roles.begin(), c.roles.end());
  }
  std::set<std::string> reported;
  for (const Rule& r : plan.rules) {
    std::vector<std::string> roles = r.roles;
    if (r.escalate) {
      roles.insert(roles.end(), r.escalate->to_roles.begin(), r.escalate->to_roles.end());
    }
    for (const auto& role : roles) {
      if (!held.count(role) && reported.insert(role).second) {
        out.push_back(fmt::format("rule \"{}\": no contact holds the role \"{}\"", r.id, role));
      }
    }
  }
  for (const Rule& r : plan.rules) {
    if (r.repeat && *r.repeat < std::chrono::minutes(5)) {
      out.push_back(
          fmt::format("rule \"{}\" repeats every {}: its recipients get a message that "
                      "often for as long as the phase lasts",
                      r.id, format_duration(*r.repeat)));
    }
  }
  for (Phase p : kAllPhases) {
    if (p == Phase::closed) {
      continue;  // telling people an incident closed is good practice, not an obligation
    }
    bool covered = std::any_of(plan.rules.begin(), plan.rules.end(), [&](const Rule& r) {
      return std::find(r.phases.begin(), r.phases.end(), p) != r.phases.end();
    });
    if (!covered) {
      out.push_back(fmt::format("no rule covers the phase \"{}\"", to_string(p)));
    }
  }
  return out;
}

}  // namespace herald::plan
