// The plan as JSON (CONTRACT.md "The plan"): strict parsing that names the rule and field of
// the first problem, the canonical JSON form, and the plan's gaps as warnings.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"

namespace herald::plan {

// Parses and validates a plan. `endpoint_ids` are the client's endpoints: a rule naming an
// unknown one is an error. The error is `unprocessable` with code "invalid_plan", a message
// naming the rule id and field, and `field` as a path like "rules[0].phases[1]".
Result<Plan> parse_plan(const nlohmann::json& body, const std::set<std::string>& endpoint_ids);
nlohmann::json plan_to_json(const Plan& plan);

// What the plan leaves out: roles that no contact holds, phases that no rule covers.
std::vector<std::string> plan_warnings(const Plan& plan, const std::vector<Contact>& contacts);

}  // namespace herald::plan
