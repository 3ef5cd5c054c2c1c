#include "daemon/ingest/ingest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "daemon/obligation/obligation.hpp"
#include "daemon/plan/plan_json.hpp"
#include "daemon/plan/planner.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/json_writer.hpp"
#include "daemon/store/store.hpp"

namespace herald::ingest {
namespace {

using nlohmann::json;

constexpr size_t kMaxIdLength = 200;
constexpr size_t kMaxTitleLength = kMaxEventTitle;
constexpr size_t kMaxSummaryLength = kMaxEventSummary;
constexpr size_t kMaxDetailsBytes = kMaxEventDetails;

Error field_error(std::string code, std::string field, std::string message) {
  return make_error(ErrorKind::unprocessable, std::move(code), std::move(message),
                    std::move(field));
}

Result<std::string> required_string(const json& obj, const std::string& key,
                                    const std::string& path, size_t max_length) {
  if (!obj.contains(key) || obj[key].is_null()) {
    return field_error("missing_field", path, fmt::format("{} is required", path));
  }
  if (!obj[key].is_string()) {
    return field_error("invalid_field", path, fmt::format("{} must be a string", path));
  }
  auto value = obj[key].get<std::string>();
  if (value.empty() || value.size() > max_length) {
    return field_error("invalid_field", path,
                       fmt::format("{} must be 1 to {} characters", path, max_length));
  }
  return value;
}

Result<std::string> optional_string(const json& obj, const std::string& key,
                                    const std::string& path, size_t max_length) {
  if (!obj.contains(key) || obj[key].is_null()) {
    return std::string{};
  }
  if (!obj[key].is_string()) {
    return field_error("invalid_field", path, fmt::format("{} must be a string", path));
  }
  auto value = obj[key].get<std::string>();
  if (value.size() > max_length) {
    return field_error("invalid_field", path,
                       fmt::format("{} must be at most {} characters", path, max_length));
  }
  return value;
}

bool printable_id(const std::string& id) {
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7F) {
      return false;
    }
  }
  return true;
}

// Parsing the stored plan costs more than planning an event with it: the parsed plan is kept
// per client, and parsed again only when its text or the client's endpoints differ from what it
// was parsed with. One cache per thread: events are applied on the store's writer thread.
class PlanCache {
 public:
  const Plan& get(const std::string& client_id, const std::string& body,
                  const std::vector<Endpoint>& endpoints) {
    std::set<std::string> endpoint_ids;
    for (const auto& e : endpoints) {
      endpoint_ids.insert(e.id);
    }
    auto it = entries_.find(client_id);
    if (it != entries_.end() && it->second.body == body &&
        it->second.endpoint_ids == endpoint_ids) {
      return it->second.plan;
    }
    if (entries_.size() >= kMaxEntries) {
      entries_.clear();
    }
    Entry& entry = entries_[client_id];
    entry.body = body;
    entry.plan = parse(body, endpoint_ids);
    entry.endpoint_ids = std::move(endpoint_ids);
    return entry.plan;
  }

 private:
  static constexpr size_t kMaxEntries = 1024;

  static Plan parse(const std::string& text, const std::set<std::string>& endpoint_ids) {
    // Endpoints deleted since the plan was saved are skipped, not fatal: the rest still go.
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (body.is_object() && body.contains("rules")) {
      for (auto& rule : body["rules"]) {
        if (rule.contains("endpoints") && rule["endpoints"].is_array()) {
          auto& list = rule["endpoints"];
          for (auto it = list.begin(); it != list.end();) {
            it = endpoint_ids.count(it->get<std::string>()) ? it + 1 : list.erase(it);
          }
        }
      }
    }
    auto parsed = plan::parse_plan(body, endpoint_ids);
    return parsed ? std::move(*parsed) : Plan{};
  }

  struct Entry {
    std::string body;
    std::set<std::string> endpoint_ids;
    Plan plan;
  };
  std::unordered_map<std::string, Entry> entries_;
};

thread_local PlanCache plan_cache;

}  // namespace

Result<Event> parse_event(const json& body) {
  if (!body.is_object()) {
    return make_error(ErrorKind::unprocessable, "invalid_event", "the event must be a JSON object");
  }
  static const std::set<std::string> kFields{"event_id",    "client",  "incident", "phase",
                                             "occurred_at", "summary", "details",  "drill"};
  for (const auto& [key, _] : body.items()) {
    if (!kFields.count(key)) {
      return field_error("unknown_field", key, fmt::format("unknown field \"{}\"", key));
    }
  }
  Event e;
  auto event_id = required_string(body, "event_id", "event_id", kMaxIdLength);
  if (!event_id) {
    return event_id.error();
  }
  e.event_id = *event_id;
  auto client = required_string(body, "client", "client", kMaxIdLength);
  if (!client) {
    return client.error();
  }
  e.client_id = *client;
  if (!printable_id(e.event_id) || !printable_id(e.client_id)) {
    return field_error("invalid_field", "event_id", "ids must not contain control characters");
  }

  if (!body.contains("incident") || !body["incident"].is_object()) {
    return field_error(body.contains("incident") ? "invalid_field" : "missing_field", "incident",
                       "incident is required: {\"id\": ..., \"title\": ..., \"severity\": ...}");
  }
  const json& incident = body["incident"];
  for (const auto& [key, _] : incident.items()) {
    if (key != "id" && key != "title" && key != "severity") {
      return field_error("unknown_field", "incident." + key,
                         fmt::format("unknown field \"incident.{}\"", key));
    }
  }
  auto incident_id = required_string(incident, "id", "incident.id", kMaxIdLength);
  if (!incident_id) {
    return incident_id.error();
  }
  e.incident_id = *incident_id;
  if (!printable_id(e.incident_id)) {
    return field_error("invalid_field", "incident.id", "ids must not contain control characters");
  }
  auto title = optional_string(incident, "title", "incident.title", kMaxTitleLength);
  if (!title) {
    return title.error();
  }
  e.title = *title;
  auto severity = required_string(incident, "severity", "incident.severity", 20);
  if (!severity) {
    Error err = severity.error();
    if (err.code == "invalid_field") {
      err.code = "invalid_severity";
    }
    return err;
  }
  if (auto s = parse_severity(*severity)) {
    e.severity = *s;
  } else {
    return field_error(
        "invalid_severity", "incident.severity",
        fmt::format("unknown severity \"{}\" (one of low, medium, high, critical)", *severity));
  }

  auto phase = required_string(body, "phase", "phase", 40);
  if (!phase) {
    Error err = phase.error();
    if (err.code == "invalid_field") {
      err.code = "invalid_phase";
    }
    return err;
  }
  if (auto p = parse_phase(*phase)) {
    e.phase = *p;
  } else {
    return field_error("invalid_phase", "phase",
                       fmt::format("unknown phase \"{}\" (one of preparation, identification, "
                                   "containment, eradication, recovery, lessons_learned, closed)",
                                   *phase));
  }

  if (body.contains("occurred_at") && !body["occurred_at"].is_null()) {
    const json& at = body["occurred_at"];
    auto t = at.is_string() ? parse_rfc3339(at.get<std::string>()) : std::nullopt;
    if (!t) {
      return field_error("invalid_field", "occurred_at",
                         "occurred_at must be an RFC 3339 time like \"2026-12-04T10:00:00Z\"");
    }
    e.occurred_at = *t;
  }

  auto summary = optional_string(body, "summary", "summary", kMaxSummaryLength);
  if (!summary) {
    return summary.error();
  }
  e.summary = *summary;

  if (body.contains("details") && !body["details"].is_null()) {
    if (!body["details"].is_object()) {
      return field_error("invalid_field", "details", "details must be a JSON object");
    }
    e.details_json = body["details"].dump(-1, ' ', false, json::error_handler_t::replace);
    if (e.details_json.size() > kMaxDetailsBytes) {
      return field_error("invalid_field", "details",
                         fmt::format("details must be at most {} bytes", kMaxDetailsBytes));
    }
  }
  if (body.contains("drill") && !body["drill"].is_null()) {
    if (!body["drill"].is_boolean()) {
      return field_error("invalid_field", "drill", "drill must be true or false");
    }
    e.drill = body["drill"].get<bool>();
  }
  return e;
}

Result<IngestResult> apply_event(store::Repo& repo, const Event& input, Timestamp now,
                                 const std::function<bool(const Message&)>& take_now) {
  Event event = input;
  event.received_at = now;
  if (event.occurred_at == Timestamp{}) {
    event.occurred_at = now;
  }
  IngestResult result;
  result.event_id = event.event_id;
  result.incident_id = event.incident_id;

  auto existing = repo.event(event.client_id, event.event_id);
  if (!existing) {
    return existing.error();
  }
  if (existing->has_value()) {
    result.duplicate = true;
    result.messages = (*existing)->messages;
    result.incident_id = (*existing)->event.incident_id;
    result.applied = (*existing)->applied;
    return result;
  }

  auto client = repo.client(event.client_id);
  if (!client) {
    return client.error();
  }
  if (!client->has_value()) {
    return field_error("unknown_client", "client",
                       fmt::format("unknown client \"{}\": create it with PUT /v1/clients/{}",
                                   event.client_id, event.client_id));
  }

  auto stored_incident = repo.incident(event.client_id, event.incident_id);
  if (!stored_incident) {
    return stored_incident.error();
  }
  Incident incident;
  std::optional<Phase> previous_phase;
  if (stored_incident->has_value()) {
    incident = **stored_incident;
    previous_phase = incident.phase;
    // An event older than the one that set the current phase is history, not news: record it,
    // never roll the phase back.
    if (event.occurred_at < incident.phase_since) {
      result.applied = false;
    }
  } else {
    incident.client_id = event.client_id;
    incident.id = event.incident_id;
    incident.opened_at = event.occurred_at;
    incident.drill = event.drill;
  }

  std::string audit_data;
  std::vector<Message> planned;
  std::vector<std::string> cancelled_ids;
  if (result.applied) {
    if (!stored_incident->has_value() || incident.phase != event.phase) {
      incident.previous_phase = previous_phase;
    }
    incident.phase = event.phase;
    incident.phase_since = event.occurred_at;
    incident.severity = event.severity;
    if (!event.title.empty()) {
      incident.title = event.title;
    } else if (incident.title.empty()) {
      incident.title = event.incident_id;
    }
    incident.updated_at = now;
    if (auto s = repo.put_incident(incident); !s) {
      return s.error();
    }
    // The newest event owns the incident's schedule: what earlier events still had pending
    // (their phase is over, or this event brings newer news of it) is cancelled.
    auto cancelled = repo.cancel_superseded(event);
    if (!cancelled) {
      return cancelled.error();
    }
    cancelled_ids = std::move(*cancelled);
    auto escalations_cancelled = repo.cancel_superseded_escalations(event, now);
    if (!escalations_cancelled) {
      return escalations_cancelled.error();
    }

    auto stored_plan = repo.plan(event.client_id);
    if (!stored_plan) {
      return stored_plan.error();
    }
    auto contacts = repo.contacts(event.client_id);
    if (!contacts) {
      return contacts.error();
    }
    auto endpoints = repo.endpoints(event.client_id);
    if (!endpoints) {
      return endpoints.error();
    }
    static const Plan kNoPlan;
    const Plan& plan = stored_plan->has_value()
                           ? plan_cache.get(event.client_id, (*stored_plan)->body, *endpoints)
                           : kNoPlan;
    auto intents = plan::plan_messages(plan, event.phase, event.severity, *contacts, *endpoints);
    for (const Rule* rule : plan::matching_rules(plan, event.phase, event.severity)) {
      if (!rule->escalate) {
        continue;
      }
      store::EscalationRecord esc;
      esc.id =
          "esc_" + plan::message_id(event.client_id, event.event_id, rule->id, "escalation", "", 1)
                       .substr(4);
      esc.client_id = event.client_id;
      esc.incident_id = event.incident_id;
      esc.event_id = event.event_id;
      esc.phase = event.phase;
      esc.rule_id = rule->id;
      esc.due_at = std::max(now, event.occurred_at + rule->escalate->after);
      esc.to_roles = rule->escalate->to_roles;
      esc.channels = rule->channels;
      esc.quiet_hours = rule->quiet_hours;
      if (auto inserted = repo.insert_escalation(esc); !inserted) {
        return inserted.error();
      }
    }
    std::vector<std::string> due_now;  // taken by the dispatcher: claimed here
    for (const auto& intent : intents) {
      Message m = schedule::first_message(
          intent, event, "notify", std::max(now, event.occurred_at + intent.delay), now, *contacts);
      auto inserted = repo.insert_message(m);
      if (!inserted) {
        return inserted.error();
      }
      if (*inserted) {
        ++result.messages;
        if (take_now && m.send_at <= now && take_now(m)) {
          due_now.push_back(m.id);
        }
        planned.push_back(std::move(m));
      }
    }
    if (!due_now.empty()) {
      // Claimed as the dispatcher's own claim would, in this commit: no second one before the
      // send. A crash before the outcome is recorded requeues them at the next start.
      auto claimed = repo.claim_ids(due_now, now);
      if (!claimed) {
        return claimed.error();
      }
      if (auto s = schedule::schedule_repeats(repo, *claimed, now); !s) {
        return s.error();
      }
      result.claimed = std::move(*claimed);
    }
    // Notification deadlines this phase starts: their reminders are messages of their own.
    if (auto started = obligation::on_event(repo, event, *contacts, now); !started) {
      return started.error();
    }
    // Keys in sorted order, as nlohmann::json writes them (store/json_writer.hpp).
    store::JsonWriter data;
    data.begin_object()
        .key("cancelled")
        .value(cancelled_ids.size())
        .key("drill")
        .value(event.drill)
        .key("escalations_cancelled")
        .value(*escalations_cancelled)
        .key("event_id")
        .value(event.event_id)
        .key("incident")
        .value(event.incident_id)
        .key("messages")
        .value(result.messages)
        .key("phase")
        .value(to_string(event.phase))
        .key("previous_phase");
    if (previous_phase) {
      data.value(to_string(*previous_phase));
    } else {
      data.null();
    }
    data.key("severity").value(to_string(event.severity)).key("source").value(event.source);
    audit_data = data.end_object().take();
  } else {
    store::JsonWriter data;
    data.begin_object()
        .key("current_phase")
        .value(to_string(incident.phase))
        .key("event_id")
        .value(event.event_id)
        .key("incident")
        .value(event.incident_id)
        .key("out_of_order")
        .value(true)
        .key("phase")
        .value(to_string(event.phase))
        .key("source")
        .value(event.source);
    audit_data = data.end_object().take();
  }

  if (auto s = repo.insert_event(event, previous_phase, result.applied, result.messages); !s) {
    return s.error();
  }
  if (auto s = repo.audit("event.received", event.token_name, event.client_id, event.incident_id,
                          audit_data, now);
      !s) {
    return s.error();
  }
  // One record lists every message the event planned (not one per message: ingest throughput),
  // another the ones it cancelled.
  if (auto s = repo.audit_planned("planner", "event", planned, now); !s) {
    return s.error();
  }
  if (auto s = repo.audit_cancelled("planner", event.client_id, event.incident_id,
                                    "superseded by event " + event.event_id, cancelled_ids, now);
      !s) {
    return s.error();
  }
  return result;
}

Ingestor::Ingestor(store::Store& store, const Clock& clock, std::function<void()> on_committed,
                   Handoff handoff)
    : store_(store),
      clock_(clock),
      on_committed_(std::move(on_committed)),
      handoff_(std::move(handoff)) {}

void Ingestor::ingest(Event event, Done done) {
  auto result = std::make_shared<std::optional<Result<IngestResult>>>();
  // Every id the dispatcher reserved, over all runs of the transaction: those that end up not
  // claimed in the commit are released.
  auto reserved = std::make_shared<std::vector<std::string>>();
  std::function<bool(const Message&)> take_now;
  if (handoff_.reserve) {
    take_now = [this, reserved](const Message& m) {
      if (!handoff_.reserve(m)) {
        return false;
      }
      if (std::find(reserved->begin(), reserved->end(), m.id) == reserved->end()) {
        reserved->push_back(m.id);
      }
      return true;
    };
  }
  // Rerunnable: the function only reads and writes the database and overwrites `result`.
  store_.write(
      [this, event = std::move(event), result, take_now](store::Repo& repo) -> Status {
        auto r = apply_event(repo, event, clock_.now(), take_now);
        if (!r) {
          Error e = r.error();
          result->emplace(r.error());
          return e;
        }
        result->emplace(std::move(r));
        return {};
      },
      [this, result, reserved, done = std::move(done)](Status committed) {
        std::vector<Message> claimed;
        if (committed && (*result)->ok()) {
          claimed = std::move((**result)->claimed);
          (**result)->claimed.clear();
        }
        for (const auto& id : *reserved) {
          if (std::none_of(claimed.begin(), claimed.end(),
                           [&id](const Message& m) { return m.id == id; })) {
            handoff_.release(id);
          }
        }
        if (!committed) {
          done(committed.error());
          return;
        }
        int left = (*result)->ok() ? (**result)->messages - static_cast<int>(claimed.size()) : 0;
        // The answer first: the producer waits for it; the dispatcher's thread wakes next.
        done(std::move(**result));
        if (!claimed.empty()) {
          handoff_.take(std::move(claimed));
        }
        if (left > 0 && on_committed_) {
          on_committed_();
        }
      },
      store::Store::Mode::rerunnable);
}

}  // namespace herald::ingest
