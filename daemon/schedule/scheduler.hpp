// The scheduler's steps that touch the outbox, run inside the dispatcher's write transactions:
// the next update of a repeating message, escalations that fell due, and acknowledgements.
// All time comes in as `now`; all state lives in the database, so a restart neither loses nor
// bunches anything.
#pragma once

#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"
#include "daemon/plan/planner.hpp"
#include "daemon/store/repo.hpp"

namespace herald::schedule {

// The first message of one planned intent: its deterministic id (the message's own key: same
// event, rule, recipient, channel and kind → same id), due at `planned_at`, deferred past the
// contact's quiet hours when the intent respects them. `kind` is "notify" or "escalation".
Message first_message(const plan::Intent& intent, const Event& event, std::string_view kind,
                      Timestamp planned_at, Timestamp now, const std::vector<Contact>& contacts);

// For each claimed message that repeats, stores its successor (update_number + 1, due at the
// next slot of the `repeat` cadence after `now`, deferred past the contact's quiet hours, so
// nothing bunches after a quiet night or a restart) unless the
// incident has left the phase or the contact acknowledged. Successor ids are deterministic, so
// a message claimed twice (after a crash) still has one successor.
Status schedule_repeats(store::Repo& repo, const std::vector<Message>& claimed, Timestamp now);

struct EscalationOutcome {
  std::string id;
  store::EscalationStatus status = store::EscalationStatus::pending;
  int messages = 0;
};

// Resolves up to `limit` escalations due at `now`: acknowledged in time → nothing; incident no
// longer in the phase → cancelled; otherwise fired: a message to everyone holding the
// escalation roles, audited.
Result<std::vector<EscalationOutcome>> fire_due_escalations(store::Repo& repo, Timestamp now,
                                                            int limit);

// A message to a person that failed for good goes out again on the person's next channel, in
// the order of their `channels`, that has not been used for this update yet and that they have
// an address for. Returns the new message, already stored and audited, or nullopt when no
// channel is left.
Result<std::optional<Message>> plan_fallback(store::Repo& repo, const Message& failed,
                                             Timestamp now);

struct AckOutcome {
  bool first = true;  // false when the message had been acknowledged before
  Message message;
  int64_t cancelled = 0;
  int64_t escalations_stopped = 0;
};

// Records that the contact of `message_id` acknowledged it: stops that contact's pending
// messages and repeats for the rule, incident and phase, and the rule's pending escalation.
Result<AckOutcome> acknowledge(store::Repo& repo, const std::string& message_id,
                               const std::string& remote, Timestamp now);

}  // namespace herald::schedule
