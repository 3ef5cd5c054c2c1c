// Notification deadlines: a client's obligations ("tell the supervisory authority within 72h
// of identification"), the clock each incident starts, reminders before the deadline and the
// notice when it passes unmet. Reminders and notices are ordinary stored messages (kind
// "reminder" and "overdue", rule "obligation:ID"), so they survive restarts like any other.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"
#include "daemon/store/repo.hpp"

namespace herald::obligation {

struct Obligation {
  std::string id;
  std::string description;
  Phase starts = Phase::identification;  // the phase whose start starts the clock
  Severity min_severity = Severity::low;
  Millis within{0};
  std::vector<Millis> remind;  // before the deadline, largest first
  std::vector<std::string> roles;
  std::vector<std::string> escalate_to;  // also told when the deadline passes unmet
  std::vector<std::string> channels;     // empty: each person's own
  QuietHoursPolicy quiet_hours = QuietHoursPolicy::respect;
};

// PUT /v1/clients/{client}/obligations: {"obligations": [...]}. Errors are unprocessable, code
// "invalid_obligations", naming the obligation and field.
Result<std::vector<Obligation>> parse_obligations(const nlohmann::json& body);
nlohmann::json obligations_json(const std::vector<Obligation>& obligations);

Result<std::vector<Obligation>> load(store::Repo& repo, const std::string& client_id);
// Stores the list; returns its new version.
Result<int64_t> save(store::Repo& repo, const std::string& client_id,
                     const std::vector<Obligation>& obligations, Timestamp now);
Result<int64_t> version(store::Repo& repo, const std::string& client_id);

// Called by ingest for every applied event: starts the clock of each obligation that this
// phase starts and that has not started for the incident yet, and stores its reminders and
// overdue notices. Drills start no clocks. Returns the number of messages stored.
Result<int> on_event(store::Repo& repo, const Event& event, const std::vector<Contact>& contacts,
                     Timestamp now);

// The template data of a reminder or overdue message; nullopt for other messages.
struct Notice {
  std::string id;
  std::string description;
  std::string kind;  // "reminder" or "overdue"
  Phase starts = Phase::identification;
  Timestamp started_at{};
  Timestamp due_at{};
  Millis within{0};
};
Result<std::optional<Notice>> notice_for(store::Repo& repo, const Message& message);

struct MetOutcome {
  bool first = true;  // false when it had been marked met before
  int64_t cancelled = 0;
  nlohmann::json obligation;
};
// Marks an incident's obligation met: stops its reminders and its overdue notice. Errors:
// not_found (no such incident or obligation), conflict "not_started" (its clock has not
// started for this incident).
Result<MetOutcome> mark_met(store::Repo& repo, const std::string& client_id,
                            const std::string& incident_id, const std::string& obligation_id,
                            const std::string& actor, const std::string& note, Timestamp now);

// The incident's obligations with their state (pending, met, overdue, met_late) and reminders.
Result<nlohmann::json> incident_obligations(store::Repo& repo, const std::string& client_id,
                                            const std::string& incident_id, Timestamp now);

// Records (audit "obligation.overdue") every deadline that passed unmet since the last call.
Result<int> mark_overdue(store::Repo& repo, Timestamp now);

}  // namespace herald::obligation
