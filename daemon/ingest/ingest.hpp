// Ingest: validate a phase-change event, deduplicate it, and commit the event, the incident's
// new state and every message it implies in one transaction before anyone is told "accepted".
// Every source (HTTP, Alertmanager, NATS) goes through here.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/store/repo.hpp"

namespace herald::store {
class Store;
}

namespace herald::ingest {

struct IngestResult {
  std::string event_id;
  std::string incident_id;
  int messages = 0;
  bool duplicate = false;
  bool applied = true;  // false when the event was older than the incident's current phase
  // Planned due at once and claimed in the event's own transaction, for the dispatcher.
  std::vector<Message> claimed;
};

// Where messages due at once go without a claim commit of their own (the dispatcher: see
// Dispatcher::reserve). Empty functions: every message waits for the dispatcher's claim.
struct Handoff {
  std::function<bool(const Message&)> reserve;  // in the transaction, on the writer thread
  std::function<void(const std::string&)> release;
  std::function<void(std::vector<Message>)> take;  // after the commit
};

// Parses the body of POST /v1/events (CONTRACT.md "Ingest"). Errors are `unprocessable` and
// name the field: codes missing_field, invalid_field, invalid_phase, invalid_severity,
// unknown_field.
Result<Event> parse_event(const nlohmann::json& body);

// The work of one event inside a write transaction. Pure with respect to time: `now` is the
// commit's clock reading.
// `take_now`, when set, is asked about each message planned due at once: those it takes are
// claimed in the same transaction and listed in IngestResult::claimed.
Result<IngestResult> apply_event(store::Repo& repo, const Event& event, Timestamp now,
                                 const std::function<bool(const Message&)>& take_now = {});

class Ingestor {
 public:
  using Done = std::function<void(Result<IngestResult>)>;
  // `on_committed` runs after each commit that created messages not handed over (wakes the
  // dispatcher); `handoff` takes messages due at once.
  Ingestor(store::Store& store, const Clock& clock, std::function<void()> on_committed,
           Handoff handoff = {});

  // Queues the event for the next group commit; `done` runs once it is durable (or failed).
  void ingest(Event event, Done done);

 private:
  store::Store& store_;
  const Clock& clock_;
  std::function<void()> on_committed_;
  Handoff handoff_;
};

}  // namespace herald::ingest
