// Drills: a synthetic incident, marked as a drill, run through a client's real plan to the real
// people and rooms; the report of what reached whom; the plan's gaps; and scheduled drills.
// Every function here works inside a store transaction (a Repo) and takes time as `now`.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"
#include "daemon/store/repo.hpp"

namespace herald::drill {

struct DrillRecord {
  std::string id;  // drl_<hex>
  std::string client_id;
  std::string incident_id;  // DRILL-<hex>: an incident of its own, marked drill
  std::string event_id;
  Phase phase = Phase::containment;
  Severity severity = Severity::high;
  Timestamp started_at{};
  std::string actor;  // the token's name, or "schedule"
  bool scheduled = false;
};

// Starts a drill: stores an event marked drill for a new incident (through ingest, so exactly
// what a real event of this phase and severity would cause happens, labelled as a drill) and
// the drill record. `messages` receives how many messages the plan made. Unknown client →
// unprocessable "unknown_client".
Result<DrillRecord> start_drill(store::Repo& repo, const std::string& client_id, Phase phase,
                                Severity severity, const std::string& actor, bool scheduled,
                                Timestamp now, int* messages = nullptr);

Result<std::optional<DrillRecord>> find_drill(store::Repo& repo, const std::string& id);
// The client's drills (every client's when client_id is empty) started in [since, until).
Result<std::vector<DrillRecord>> list_drills(store::Repo& repo, const std::string& client_id,
                                             std::optional<Timestamp> since,
                                             std::optional<Timestamp> until);
// Is this incident a drill's?
Result<bool> is_drill_incident(store::Repo& repo, const std::string& client_id,
                               const std::string& incident_id);

// GET /v1/drills/{drill}: per contact and endpoint, per channel, delivered or not and when,
// acknowledged or not and when, times from the drill's start; the summary; the plan's gaps.
Result<nlohmann::json> drill_report(store::Repo& repo, const DrillRecord& drill, Timestamp now);

// The outcome of one drill in a few numbers (for the effectiveness report and the CLI).
Result<nlohmann::json> drill_summary(store::Repo& repo, const DrillRecord& drill);

// The plan's gaps with the client's current contacts: roles the plan names that no contact
// holds, contacts with no usable address for the channels their rules use, phases no rule
// covers, and contacts and endpoints not reached in their most recent drills.
Result<nlohmann::json> plan_gaps(store::Repo& repo, const std::string& client_id);

// ---- scheduled drills ----------------------------------------------------------------------

struct DrillSchedule {
  std::string client_id;
  Millis every{0};
  Phase phase = Phase::containment;
  Severity severity = Severity::high;
  int window_start = 9 * 60;  // minutes after local midnight, in the client's zone
  int window_end = 17 * 60;   // exclusive
  int days = 0x1F;            // bit 0 = Monday ... bit 6 = Sunday
  Timestamp next_at{};
  std::optional<std::string> last_drill;
};

// Parses PUT /v1/clients/{client}/drill-schedule: {"every", "phase", "severity", "window",
// "days", "start"}; the first drill is at the first allowed moment at or after `start`
// (default: now + every). Errors are unprocessable and name the field.
Result<DrillSchedule> parse_schedule(const nlohmann::json& body, const Client& client,
                                     Timestamp now);
nlohmann::json schedule_json(const DrillSchedule& schedule);

// The first instant at or after `from` that falls on an allowed day inside the window, in
// `zone` (UTC when unknown).
Timestamp next_slot(const DrillSchedule& schedule, std::string_view zone, Timestamp from);

// "mon-fri" → bits; nullopt when malformed.
std::optional<int> parse_days(std::string_view text);
std::string format_days(int days);

Status put_schedule(store::Repo& repo, const DrillSchedule& schedule, Timestamp now);
Result<std::optional<DrillSchedule>> get_schedule(store::Repo& repo, const std::string& client_id);
Result<bool> delete_schedule(store::Repo& repo, const std::string& client_id);

// Starts the drills whose schedule fell due and moves each schedule to its next slot (a
// schedule missed while Herald was down runs once, not once per missed slot).
Result<std::vector<DrillRecord>> run_due_schedules(store::Repo& repo, Timestamp now);

}  // namespace herald::drill
