// Ingest, the delivery log and incident timelines.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "daemon/api/context.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/obligation/obligation.hpp"
#include "daemon/sources/alertmanager/alertmanager.hpp"
#include "daemon/store/json_writer.hpp"

namespace herald::api {
namespace {

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;

json message_json(const Message& m) {
  return json{{"id", m.id},
              {"event_id", m.event_id},
              {"client", m.client_id},
              {"incident", m.incident_id},
              {"phase", std::string(to_string(m.phase))},
              {"rule", m.rule_id},
              {"contact", m.contact_id.empty() ? json(nullptr) : json(m.contact_id)},
              {"endpoint", m.endpoint_id.empty() ? json(nullptr) : json(m.endpoint_id)},
              {"role", m.role.empty() ? json(nullptr) : json(m.role)},
              {"channel", m.channel},
              {"status", std::string(to_string(m.status))},
              {"attempts", m.attempts},
              {"update_number", m.update_number},
              {"created_at", format_rfc3339(m.created_at)},
              {"send_at", format_rfc3339(m.send_at)},
              {"delivered_at", time_json(m.delivered_at)},
              {"last_error", m.last_error.empty() ? json(nullptr) : json(m.last_error)},
              {"kind", m.kind},
              {"planned_at", format_rfc3339(m.planned_at)},
              {"repeat", m.repeat ? json(format_duration(*m.repeat)) : json(nullptr)},
              {"acknowledged_at", time_json(m.acknowledged_at)},
              {"fallback_of", m.fallback_of.empty() ? json(nullptr) : json(m.fallback_of)}};
}

json attempt_json(const Attempt& a) {
  return json{{"number", a.number},
              {"started_at", format_rfc3339(a.started_at)},
              {"duration_ms", a.duration.count()},
              {"outcome", std::string(to_string(a.outcome))},
              {"status_code", a.status_code == 0 ? json(nullptr) : json(a.status_code)},
              {"error", a.error.empty() ? json(nullptr) : json(a.error)}};
}

}  // namespace

Error bad_parameter(const std::string& name, const std::string& message) {
  return make_error(ErrorKind::invalid, "invalid_parameter", message, name);
}

Result<int> limit_param(const http::Request& r) {
  auto text = r.query_param("limit");
  if (!text || text->empty()) {
    return kDefaultLimit;
  }
  int value = 0;
  for (char ch : *text) {
    if (ch < '0' || ch > '9' || value > kMaxLimit) {
      return bad_parameter("limit", fmt::format("limit must be 1 to {}", kMaxLimit));
    }
    value = value * 10 + (ch - '0');
  }
  if (value < 1 || value > kMaxLimit) {
    return bad_parameter("limit", fmt::format("limit must be 1 to {}", kMaxLimit));
  }
  return value;
}

Result<int64_t> cursor_param(const http::Request& r) {
  auto text = r.query_param("cursor");
  if (!text || text->empty()) {
    return int64_t{0};
  }
  int64_t value = 0;
  for (char ch : *text) {
    if (ch < '0' || ch > '9' || value > (int64_t{1} << 50)) {
      return bad_parameter("cursor", "cursor is not one this server gave out");
    }
    value = value * 10 + (ch - '0');
  }
  return value;
}

Result<std::optional<Timestamp>> time_param(const http::Request& r, const std::string& name) {
  auto text = r.query_param(name);
  if (!text || text->empty()) {
    return std::optional<Timestamp>{};
  }
  auto t = parse_rfc3339(*text);
  if (!t) {
    return bad_parameter(name, fmt::format("{} must be an RFC 3339 time like "
                                           "2026-12-04T10:00:00Z",
                                           name));
  }
  return std::optional<Timestamp>(*t);
}

void post_event(Services& s, const Call& c, const http::Responder& respond) {
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto event = ingest::parse_event(*body);
  if (!event) {
    respond(error_response(event.error()));
    return;
  }
  event->source = "api";
  event->token_name = c.actor;
  // Runs on the store's writer thread, after the commit: kept short, since the writer commits
  // nothing else meanwhile.
  s.ingestor.ingest(std::move(*event), [&s, respond](Result<ingest::IngestResult> r) {
    if (!r) {
      s.metrics.add("herald_events_total",
                    fmt::format("outcome=\"{}\"", Metrics::label(r.error().code)));
      respond(error_response(r.error()));
      return;
    }
    s.metrics.add("herald_events_total",
                  r->duplicate ? "outcome=\"duplicate\"" : "outcome=\"accepted\"");
    // What json_response would write, keys in nlohmann's order, without a JSON document.
    store::JsonWriter body;
    body.begin_object().key("duplicate").value(r->duplicate).key("event_id").value(r->event_id);
    body.key("incident").value(r->incident_id).key("messages").value(r->messages);
    if (!r->applied) {
      body.key("out_of_order").value(true);
    }
    http::Response response;
    response.status = r->duplicate ? 200 : 202;
    response.body = body.end_object().take();
    response.body += '\n';
    respond(std::move(response));
  });
}

void post_alertmanager(Services& s, const Call& c, const http::Responder& respond) {
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto events = sources::alertmanager_events(*body, c.request.query_param("client").value_or(""));
  if (!events) {
    respond(error_response(events.error()));
    return;
  }
  if (events->empty()) {
    respond(json_response(200, json{{"events", json::array()}}));
    return;
  }
  // One answer once every alert's event is committed (or refused).
  struct Gather {
    std::mutex mutex;
    std::vector<std::optional<Result<ingest::IngestResult>>> results;
    size_t pending = 0;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(events->size());
  gather->pending = events->size();
  for (size_t i = 0; i < events->size(); ++i) {
    Event e = std::move((*events)[i]);
    e.token_name = c.actor;
    s.ingestor.ingest(std::move(e), [&s, gather, i, respond](Result<ingest::IngestResult> r) {
      std::lock_guard lock(gather->mutex);
      gather->results[i].emplace(std::move(r));
      if (--gather->pending > 0) {
        return;
      }
      json items = json::array();
      bool any_new = false;
      std::optional<Error> failure;
      for (auto& result : gather->results) {
        if (!*result) {
          failure = failure ? failure : std::optional<Error>((*result).error());
          items.push_back(json{{"error", (*result).error().message}});
          continue;
        }
        const auto& ok = **result;
        any_new = any_new || !ok.duplicate;
        s.metrics.add("herald_events_total",
                      ok.duplicate ? "outcome=\"duplicate\"" : "outcome=\"accepted\"");
        items.push_back(json{{"event_id", ok.event_id},
                             {"incident", ok.incident_id},
                             {"messages", ok.messages},
                             {"duplicate", ok.duplicate}});
      }
      if (failure) {
        // Events of the other alerts are stored; the error says which alert failed.
        Error e = *failure;
        auto r = error_response(e);
        auto j = json::parse(r.body);
        j["events"] = items;
        respond(json_response(r.status, j));
        return;
      }
      respond(json_response(any_new ? 202 : 200, json{{"events", items}}));
    });
  }
}

void list_deliveries(Services& s, const Call& c, const http::Responder& respond) {
  const auto& q = c.request;
  store::MessageFilter f;
  f.client_id = q.query_param("client").value_or("");
  f.incident_id = q.query_param("incident").value_or("");
  f.channel = q.query_param("channel").value_or("");
  if (auto status = q.query_param("status"); status && !status->empty()) {
    f.status = parse_message_status(*status);
    if (!f.status) {
      respond(error_response(bad_parameter(
          "status", fmt::format("unknown status \"{}\" (scheduled, sending, retrying, delivered, "
                                "failed, cancelled)",
                                *status))));
      return;
    }
  }
  auto limit = limit_param(q);
  auto cursor = cursor_param(q);
  auto since = time_param(q, "since");
  auto until = time_param(q, "until");
  if (!limit || !cursor || !since || !until) {
    respond(error_response(!limit    ? limit.error()
                           : !cursor ? cursor.error()
                           : !since  ? since.error()
                                     : until.error()));
    return;
  }
  f.limit = *limit;
  f.after_seq = *cursor;
  f.since = *since;
  f.until = *until;
  auto page = s.store.read<store::MessagePage>([&f](store::Repo& r) { return r.messages(f); });
  if (!page) {
    respond(error_response(page.error()));
    return;
  }
  json items = json::array();
  for (const auto& m : page->items) {
    items.push_back(message_json(m));
  }
  respond(
      json_response(200, json{{"items", items},
                              {"next_cursor", page->next_seq ? json(std::to_string(*page->next_seq))
                                                             : json(nullptr)}}));
}

void get_delivery(Services& s, const Call& c, const http::Responder& respond) {
  const auto& id = c.param("id");
  auto r = s.store.read<json>([&id](store::Repo& repo) -> Result<json> {
    auto m = repo.message(id);
    if (!m) {
      return m.error();
    }
    if (!m->has_value()) {
      return make_error(ErrorKind::not_found, "not_found", fmt::format("no delivery \"{}\"", id));
    }
    auto attempts = repo.attempts(id);
    if (!attempts) {
      return attempts.error();
    }
    auto content = repo.content(id);
    if (!content) {
      return content.error();
    }
    json j = message_json(**m);
    json list = json::array();
    for (const auto& a : *attempts) {
      list.push_back(attempt_json(a));
    }
    j["attempts_log"] = list;
    if (content->has_value()) {
      j["content"] =
          json{{"address", (*content)->address.empty() ? json(nullptr) : json((*content)->address)},
               {"subject", (*content)->pruned ? json(nullptr) : json((*content)->subject)},
               {"body", (*content)->pruned ? json(nullptr) : json((*content)->body)},
               {"sha256", (*content)->content_hash},
               {"pruned", (*content)->pruned}};
      // Which template (and stored version) wrote each part.
      j["templates"] = json::parse((*content)->templates, nullptr, false);
      if (j["templates"].is_discarded()) {
        j["templates"] = json::array();
      }
      if ((*content)->sms_segments) {
        j["sms_segments"] = *(*content)->sms_segments;
      }
    }
    return j;
  });
  respond(r ? json_response(200, *r) : error_response(r.error()));
}

void retry_delivery(Services& s, const Call& c, const http::Responder& respond) {
  const auto& id = c.param("id");
  auto now = s.clock.now();
  auto item = std::make_shared<json>();
  s.store.write(
      [id, now, actor = c.actor, item](store::Repo& repo) -> Status {
        auto m = repo.message(id);
        if (!m) {
          return m.error();
        }
        if (!m->has_value()) {
          return make_error(ErrorKind::not_found, "not_found",
                            fmt::format("no delivery \"{}\"", id));
        }
        if ((*m)->status != MessageStatus::failed) {
          return make_error(ErrorKind::conflict, "not_failed",
                            fmt::format("delivery \"{}\" is {}: only failed deliveries can be "
                                        "retried",
                                        id, to_string((*m)->status)));
        }
        if (auto st = repo.finish_attempt(id, MessageStatus::retrying, now, std::nullopt,
                                          (*m)->last_error);
            !st) {
          return st;
        }
        Message updated = **m;
        updated.status = MessageStatus::retrying;
        updated.send_at = now;
        *item = message_json(updated);
        return repo.audit("delivery.retry", actor, updated.client_id, id,
                          json{{"message", id}, {"previous_status", "failed"}}.dump(), now);
      },
      [&s, respond, item](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        if (s.wake_dispatcher) {
          s.wake_dispatcher();
        }
        respond(json_response(202, *item));
      });
}

void get_incident(Services& s, const Call& c, const http::Responder& respond) {
  const auto& incident_id = c.param("incident");
  auto client_id = c.request.query_param("client").value_or("");
  if (client_id.empty()) {
    respond(error_response(make_error(ErrorKind::invalid, "missing_parameter",
                                      "client is required: ?client=CLIENT", "client")));
    return;
  }
  auto r = s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    auto incident = repo.incident(client_id, incident_id);
    if (!incident) {
      return incident.error();
    }
    if (!incident->has_value()) {
      return make_error(
          ErrorKind::not_found, "not_found",
          fmt::format("client \"{}\" has no incident \"{}\"", client_id, incident_id));
    }
    const Incident& i = **incident;
    auto events = repo.incident_events(client_id, incident_id);
    if (!events) {
      return events.error();
    }
    store::MessageFilter f;
    f.client_id = client_id;
    f.incident_id = incident_id;
    f.limit = 10'000;
    auto messages = repo.messages(f);
    if (!messages) {
      return messages.error();
    }
    json timeline = json::array();
    for (const auto& e : *events) {
      timeline.push_back(json{{"type", "event"},
                              {"at", format_rfc3339(e.event.occurred_at)},
                              {"received_at", format_rfc3339(e.event.received_at)},
                              {"event_id", e.event.event_id},
                              {"phase", std::string(to_string(e.event.phase))},
                              {"severity", std::string(to_string(e.event.severity))},
                              {"summary", e.event.summary},
                              {"applied", e.applied},
                              {"messages", e.messages},
                              {"source", e.event.source}});
    }
    auto acks = repo.acks(client_id, incident_id);
    auto escalations = repo.escalations(client_id, incident_id);
    if (!acks || !escalations) {
      return !acks ? acks.error() : escalations.error();
    }
    for (const auto& a : *acks) {
      timeline.push_back(json{{"type", "ack"},
                              {"at", format_rfc3339(a.at)},
                              {"message", a.message_id},
                              {"contact", a.contact_id},
                              {"phase", std::string(to_string(a.phase))},
                              {"rule", a.rule_id}});
    }
    for (const auto& e : *escalations) {
      timeline.push_back(json{{"type", "escalation"},
                              {"at", format_rfc3339(e.resolved_at.value_or(e.due_at))},
                              {"due_at", format_rfc3339(e.due_at)},
                              {"id", e.id},
                              {"phase", std::string(to_string(e.phase))},
                              {"rule", e.rule_id},
                              {"to_roles", e.to_roles},
                              {"status", std::string(store::to_string(e.status))},
                              {"messages", e.messages}});
    }
    auto obligations =
        obligation::incident_obligations(repo, client_id, incident_id, s.clock.now());
    if (!obligations) {
      return obligations.error();
    }
    for (const auto& o : *obligations) {
      timeline.push_back(json{{"type", "obligation.started"},
                              {"at", o["started_at"]},
                              {"obligation", o["id"]},
                              {"due_at", o["due_at"]}});
      if (!o["met_at"].is_null()) {
        timeline.push_back(json{{"type", "obligation.met"},
                                {"at", o["met_at"]},
                                {"obligation", o["id"]},
                                {"by", o["met_by"]},
                                {"state", o["state"]}});
      } else if (!o["overdue_at"].is_null()) {
        timeline.push_back(
            json{{"type", "obligation.overdue"}, {"at", o["due_at"]}, {"obligation", o["id"]}});
      }
    }
    json list = json::array();
    for (const auto& m : messages->items) {
      list.push_back(message_json(m));
      const char* what = m.status == MessageStatus::delivered ? "delivered"
                         : m.status == MessageStatus::failed  ? "failed"
                                                              : nullptr;
      if (what) {
        timeline.push_back(
            json{{"type", std::string("message.") + what},
                 {"at", format_rfc3339(m.delivered_at.value_or(m.send_at))},
                 {"message", m.id},
                 {"channel", m.channel},
                 {"contact", m.contact_id.empty() ? json(nullptr) : json(m.contact_id)},
                 {"endpoint", m.endpoint_id.empty() ? json(nullptr) : json(m.endpoint_id)}});
      }
    }
    std::stable_sort(timeline.begin(), timeline.end(), [](const json& a, const json& b) {
      return parse_rfc3339(a["at"].get<std::string>()) < parse_rfc3339(b["at"].get<std::string>());
    });
    return json{
        {"client", i.client_id},
        {"id", i.id},
        {"title", i.title},
        {"severity", std::string(to_string(i.severity))},
        {"phase", std::string(to_string(i.phase))},
        {"previous_phase",
         i.previous_phase ? json(std::string(to_string(*i.previous_phase))) : json(nullptr)},
        {"drill", i.drill},
        {"opened_at", format_rfc3339(i.opened_at)},
        {"phase_since", format_rfc3339(i.phase_since)},
        {"updated_at", format_rfc3339(i.updated_at)},
        {"timeline", timeline},
        {"obligations", *obligations},
        {"messages", list}};
  });
  respond(r ? json_response(200, *r) : error_response(r.error()));
}

}  // namespace herald::api
