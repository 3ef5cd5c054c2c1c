#include "daemon/store/repo.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "daemon/core/crypto.hpp"
#include "daemon/store/json_writer.hpp"
#include "daemon/store/query.hpp"

namespace herald::store {
namespace {

using nlohmann::json;

std::string to_json_array(const std::vector<std::string>& values) {
  return json(values).dump();
}

std::vector<std::string> from_json_array(const std::string& text) {
  auto parsed = json::parse(text, nullptr, false);
  std::vector<std::string> out;
  if (parsed.is_array()) {
    for (const auto& v : parsed) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      }
    }
  }
  return out;
}

template <class T, class Bind, class Row>
Result<std::optional<T>> query_one(Database& db, std::string_view sql, Bind bind, Row row) {
  auto rows = select_rows<T>(db, sql, bind, row);
  if (!rows) {
    return rows.error();
  }
  if (rows->empty()) {
    return std::optional<T>{};
  }
  return std::optional<T>(std::move(rows->front()));
}

template <class Bind>
Result<int64_t> execute(Database& db, std::string_view sql, Bind bind) {
  auto stmt = db.cached(sql);
  if (!stmt) {
    return stmt.error();
  }
  bind(**stmt);
  if (auto s = (*stmt)->run(); !s) {
    return s.error();
  }
  return db.changes();
}

Status as_status(const Result<int64_t>& r) {
  if (!r) {
    return r.error();
  }
  return {};
}

Client client_row(Statement& s) {
  return Client{s.text(0), s.text(1), s.text(2), s.text(3)};
}

const std::string kContactColumns =
    "client_id, id, name, roles, email, phone, chat, timezone, quiet_start, quiet_end, channels";

Contact contact_row(Statement& s) {
  Contact c;
  c.client_id = s.text(0);
  c.id = s.text(1);
  c.name = s.text(2);
  c.roles = from_json_array(s.text(3));
  c.email = s.text(4);
  c.phone = s.text(5);
  c.chat = s.text(6);
  c.timezone = s.text(7);
  if (!s.is_null(8) && !s.is_null(9)) {
    c.quiet_hours = QuietHours{static_cast<int>(s.integer(8)), static_cast<int>(s.integer(9))};
  }
  c.channels = from_json_array(s.text(10));
  return c;
}

Endpoint endpoint_row(Statement& s) {
  Endpoint e;
  e.client_id = s.text(0);
  e.id = s.text(1);
  e.type = parse_endpoint_type(s.text(2)).value_or(EndpointType::webhook);
  e.url = s.text(3);
  e.secrets = from_json_array(s.text(4));
  e.enabled = s.integer(5) != 0;
  return e;
}

const std::string kIncidentColumns =
    "client_id, id, title, severity, phase, previous_phase, drill, opened_at, phase_since, "
    "updated_at";

Incident incident_row(Statement& s) {
  Incident i;
  i.client_id = s.text(0);
  i.id = s.text(1);
  i.title = s.text(2);
  i.severity = parse_severity(s.text(3)).value_or(Severity::low);
  i.phase = parse_phase(s.text(4)).value_or(Phase::preparation);
  if (!s.is_null(5)) {
    i.previous_phase = parse_phase(s.text(5));
  }
  i.drill = s.integer(6) != 0;
  i.opened_at = from_ms(s.integer(7));
  i.phase_since = from_ms(s.integer(8));
  i.updated_at = from_ms(s.integer(9));
  return i;
}

const std::string kEventColumns =
    "client_id, event_id, incident_id, phase, severity, title, occurred_at, summary, details, "
    "drill, received_at, source, token_name, applied, messages, previous_phase";

StoredEvent event_row(Statement& s) {
  StoredEvent out;
  Event& e = out.event;
  e.client_id = s.text(0);
  e.event_id = s.text(1);
  e.incident_id = s.text(2);
  e.phase = parse_phase(s.text(3)).value_or(Phase::preparation);
  e.severity = parse_severity(s.text(4)).value_or(Severity::low);
  e.title = s.text(5);
  e.occurred_at = from_ms(s.integer(6));
  e.summary = s.text(7);
  e.details_json = s.text(8);
  e.drill = s.integer(9) != 0;
  e.received_at = from_ms(s.integer(10));
  e.source = s.text(11);
  e.token_name = s.text(12);
  out.applied = s.integer(13) != 0;
  out.messages = static_cast<int>(s.integer(14));
  if (!s.is_null(15)) {
    out.previous_phase = parse_phase(s.text(15));
  }
  return out;
}

const std::string kMessageColumns =
    "id, event_id, client_id, incident_id, phase, rule_id, contact_id, endpoint_id, role, "
    "channel, status, attempts, update_number, created_at, send_at, delivered_at, last_error, seq, "
    "repeat_ms, planned_at, quiet_hours, kind, acknowledged_at, fallback_of, first_attempt_at";

Message message_row(Statement& s) {
  Message m;
  m.id = s.text(0);
  m.event_id = s.text(1);
  m.client_id = s.text(2);
  m.incident_id = s.text(3);
  m.phase = parse_phase(s.text(4)).value_or(Phase::preparation);
  m.rule_id = s.text(5);
  m.contact_id = s.text(6);
  m.endpoint_id = s.text(7);
  m.role = s.text(8);
  m.channel = s.text(9);
  m.status = parse_message_status(s.text(10)).value_or(MessageStatus::scheduled);
  m.attempts = static_cast<int>(s.integer(11));
  m.update_number = static_cast<int>(s.integer(12));
  m.created_at = from_ms(s.integer(13));
  m.send_at = from_ms(s.integer(14));
  if (auto d = s.optional_integer(15)) {
    m.delivered_at = from_ms(*d);
  }
  m.last_error = s.text(16);
  if (auto r = s.optional_integer(18)) {
    m.repeat = Millis{*r};
  }
  m.planned_at = s.is_null(19) ? m.send_at : from_ms(s.integer(19));
  m.quiet_hours = s.text(20) == "ignore" ? QuietHoursPolicy::ignore : QuietHoursPolicy::respect;
  m.kind = s.text(21);
  if (auto a = s.optional_integer(22)) {
    m.acknowledged_at = from_ms(*a);
  }
  m.fallback_of = s.text(23);
  if (auto f = s.optional_integer(24)) {
    m.first_attempt_at = from_ms(*f);
  }
  return m;
}

const std::string kAuditColumns = "seq, at, kind, actor, client_id, subject, data, prev_hash, hash";

AuditRecord audit_row(Statement& s) {
  return AuditRecord{s.integer(0), from_ms(s.integer(1)),
                     s.text(2),    s.text(3),
                     s.text(4),    s.text(5),
                     s.text(6),    s.text(7),
                     s.text(8)};
}

}  // namespace

std::string audit_hash(const AuditRecord& r) {
  // Length-prefixed fields: no choice of content can make two records hash alike.
  std::string canonical;
  auto add = [&](std::string_view field) {
    canonical += std::to_string(field.size());
    canonical += ':';
    canonical += field;
    canonical += '\n';
  };
  add(r.prev_hash);
  add(std::to_string(r.seq));
  add(std::to_string(to_ms(r.at)));
  add(r.kind);
  add(r.actor);
  add(r.client_id);
  add(r.subject);
  add(r.data);
  return sha256_hex(canonical);
}

// ---- clients -------------------------------------------------------------------------------

Result<std::optional<Client>> Repo::client(std::string_view id) {
  return query_one<Client>(
      db_, "SELECT id, name, timezone, locale FROM clients WHERE id = ?1 AND deleted_at IS NULL",
      [&](Statement& s) { s.bind(1, id); }, client_row);
}

Result<std::vector<Client>> Repo::clients() {
  return select_rows<Client>(
      db_, "SELECT id, name, timezone, locale FROM clients WHERE deleted_at IS NULL ORDER BY id",
      [](Statement&) {}, client_row);
}

Result<bool> Repo::put_client(const Client& c, Timestamp now) {
  auto existing = client(c.id);
  if (!existing) {
    return existing.error();
  }
  auto r = execute(
      db_,
      "INSERT INTO clients (id, name, timezone, locale, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (id) DO UPDATE SET "
      "name = ?2, timezone = ?3, locale = ?4, updated_at = ?5, deleted_at = NULL",
      [&](Statement& s) {
        s.bind(1, c.id).bind(2, c.name).bind(3, c.timezone).bind(4, c.locale).bind(5, to_ms(now));
      });
  if (!r) {
    return r.error();
  }
  return !existing->has_value();
}

Result<bool> Repo::delete_client(std::string_view id, Timestamp now) {
  auto r = execute(db_, "UPDATE clients SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                   [&](Statement& s) { s.bind(1, id).bind(2, to_ms(now)); });
  if (!r) {
    return r.error();
  }
  if (*r == 0) {
    return false;
  }
  for (const char* sql :
       {"DELETE FROM contacts WHERE client_id = ?1", "DELETE FROM endpoints WHERE client_id = ?1",
        "DELETE FROM plans WHERE client_id = ?1"}) {
    if (auto d = execute(db_, sql, [&](Statement& s) { s.bind(1, id); }); !d) {
      return d.error();
    }
  }
  return true;
}

// ---- contacts ------------------------------------------------------------------------------

Result<std::vector<Contact>> Repo::contacts(std::string_view client_id) {
  static const std::string kSql =
      "SELECT " + kContactColumns + " FROM contacts WHERE client_id = ?1 ORDER BY id";
  return select_rows<Contact>(
      db_, kSql, [&](Statement& s) { s.bind(1, client_id); }, contact_row);
}

Result<std::optional<Contact>> Repo::contact(std::string_view client_id, std::string_view id) {
  return query_one<Contact>(
      db_, "SELECT " + kContactColumns + " FROM contacts WHERE client_id = ?1 AND id = ?2",
      [&](Statement& s) { s.bind(1, client_id).bind(2, id); }, contact_row);
}

Result<bool> Repo::put_contact(const Contact& c, Timestamp now) {
  auto existing = contact(c.client_id, c.id);
  if (!existing) {
    return existing.error();
  }
  auto r = execute(
      db_,
      "INSERT INTO contacts (" + kContactColumns +
          ", updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
          "ON CONFLICT (client_id, id) DO UPDATE SET name = ?3, roles = ?4, email = ?5, "
          "phone = ?6, chat = ?7, timezone = ?8, quiet_start = ?9, quiet_end = ?10, "
          "channels = ?11, updated_at = ?12",
      [&](Statement& s) {
        s.bind(1, c.client_id).bind(2, c.id).bind(3, c.name).bind(4, to_json_array(c.roles));
        s.bind(5, c.email).bind(6, c.phone).bind(7, c.chat).bind(8, c.timezone);
        if (c.quiet_hours) {
          s.bind(9, c.quiet_hours->start_minute).bind(10, c.quiet_hours->end_minute);
        } else {
          s.bind_null(9).bind_null(10);
        }
        s.bind(11, to_json_array(c.channels)).bind(12, to_ms(now));
      });
  if (!r) {
    return r.error();
  }
  return !existing->has_value();
}

Result<bool> Repo::delete_contact(std::string_view client_id, std::string_view id) {
  auto r = execute(db_, "DELETE FROM contacts WHERE client_id = ?1 AND id = ?2",
                   [&](Statement& s) { s.bind(1, client_id).bind(2, id); });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

// ---- endpoints -----------------------------------------------------------------------------

Result<std::vector<Endpoint>> Repo::endpoints(std::string_view client_id) {
  return select_rows<Endpoint>(
      db_,
      "SELECT client_id, id, type, url, secrets, enabled FROM endpoints WHERE client_id = ?1 "
      "ORDER BY id",
      [&](Statement& s) { s.bind(1, client_id); }, endpoint_row);
}

Result<std::optional<Endpoint>> Repo::endpoint(std::string_view client_id, std::string_view id) {
  return query_one<Endpoint>(
      db_,
      "SELECT client_id, id, type, url, secrets, enabled FROM endpoints "
      "WHERE client_id = ?1 AND id = ?2",
      [&](Statement& s) { s.bind(1, client_id).bind(2, id); }, endpoint_row);
}

Result<bool> Repo::put_endpoint(const Endpoint& e, Timestamp now) {
  auto existing = endpoint(e.client_id, e.id);
  if (!existing) {
    return existing.error();
  }
  auto r = execute(db_,
                   "INSERT INTO endpoints (client_id, id, type, url, secrets, enabled, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (client_id, id) DO UPDATE SET "
                   "type = ?3, url = ?4, secrets = ?5, enabled = ?6, updated_at = ?7",
                   [&](Statement& s) {
                     s.bind(1, e.client_id).bind(2, e.id).bind(3, to_string(e.type)).bind(4, e.url);
                     s.bind(5, to_json_array(e.secrets)).bind(6, e.enabled).bind(7, to_ms(now));
                   });
  if (!r) {
    return r.error();
  }
  return !existing->has_value();
}

Result<bool> Repo::delete_endpoint(std::string_view client_id, std::string_view id) {
  auto r = execute(db_, "DELETE FROM endpoints WHERE client_id = ?1 AND id = ?2",
                   [&](Statement& s) { s.bind(1, client_id).bind(2, id); });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

Result<bool> Repo::set_endpoint_enabled(std::string_view client_id, std::string_view id,
                                        bool enabled, Timestamp now) {
  auto r = execute(
      db_,
      "UPDATE endpoints SET enabled = ?3, updated_at = ?4 "
      "WHERE client_id = ?1 AND id = ?2 AND enabled <> ?3",
      [&](Statement& s) { s.bind(1, client_id).bind(2, id).bind(3, enabled).bind(4, to_ms(now)); });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

// ---- plans ---------------------------------------------------------------------------------

Result<std::optional<StoredPlan>> Repo::plan(std::string_view client_id) {
  return query_one<StoredPlan>(
      db_, "SELECT body, version, updated_at FROM plans WHERE client_id = ?1",
      [&](Statement& s) { s.bind(1, client_id); },
      [](Statement& s) {
        return StoredPlan{s.text(0), s.integer(1), from_ms(s.integer(2))};
      });
}

Result<int64_t> Repo::put_plan(std::string_view client_id, std::string_view body, Timestamp now) {
  auto r =
      execute(db_,
              "INSERT INTO plans (client_id, body, version, updated_at) VALUES (?1, ?2, 1, ?3) "
              "ON CONFLICT (client_id) DO UPDATE SET body = ?2, version = version + 1, "
              "updated_at = ?3",
              [&](Statement& s) { s.bind(1, client_id).bind(2, body).bind(3, to_ms(now)); });
  if (!r) {
    return r.error();
  }
  auto stored = plan(client_id);
  if (!stored) {
    return stored.error();
  }
  return stored->has_value() ? (*stored)->version : 0;
}

// ---- events and incidents ------------------------------------------------------------------

Result<std::optional<StoredEvent>> Repo::event(std::string_view client_id,
                                               std::string_view event_id) {
  static const std::string kSql =
      "SELECT " + kEventColumns + " FROM events WHERE client_id = ?1 AND event_id = ?2";
  return query_one<StoredEvent>(
      db_, kSql, [&](Statement& s) { s.bind(1, client_id).bind(2, event_id); }, event_row);
}

Status Repo::insert_event(const Event& e, std::optional<Phase> previous_phase, bool applied,
                          int messages) {
  static const std::string kSql =
      "INSERT INTO events (" + kEventColumns +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
  return as_status(execute(db_, kSql, [&](Statement& s) {
    s.bind(1, e.client_id).bind(2, e.event_id).bind(3, e.incident_id);
    s.bind(4, to_string(e.phase)).bind(5, to_string(e.severity)).bind(6, e.title);
    s.bind(7, to_ms(e.occurred_at)).bind(8, e.summary).bind(9, e.details_json).bind(10, e.drill);
    s.bind(11, to_ms(e.received_at)).bind(12, e.source).bind(13, e.token_name);
    s.bind(14, applied).bind(15, messages);
    if (previous_phase) {
      s.bind(16, to_string(*previous_phase));
    } else {
      s.bind_null(16);
    }
  }));
}

Result<std::vector<StoredEvent>> Repo::incident_events(std::string_view client_id,
                                                       std::string_view incident_id) {
  return select_rows<StoredEvent>(
      db_,
      "SELECT " + kEventColumns +
          " FROM events WHERE client_id = ?1 AND incident_id = ?2 "
          "ORDER BY occurred_at, received_at",
      [&](Statement& s) { s.bind(1, client_id).bind(2, incident_id); }, event_row);
}

Result<std::optional<Incident>> Repo::incident(std::string_view client_id, std::string_view id) {
  static const std::string kSql =
      "SELECT " + kIncidentColumns + " FROM incidents WHERE client_id = ?1 AND id = ?2";
  return query_one<Incident>(
      db_, kSql, [&](Statement& s) { s.bind(1, client_id).bind(2, id); }, incident_row);
}

Status Repo::put_incident(const Incident& i) {
  static const std::string kSql =
      "INSERT INTO incidents (" + kIncidentColumns +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (client_id, id) DO "
      "UPDATE SET title = ?3, severity = ?4, phase = ?5, previous_phase = ?6, drill = ?7, "
      "phase_since = ?9, updated_at = ?10";
  return as_status(execute(db_, kSql, [&](Statement& s) {
    s.bind(1, i.client_id).bind(2, i.id).bind(3, i.title).bind(4, to_string(i.severity));
    s.bind(5, to_string(i.phase));
    if (i.previous_phase) {
      s.bind(6, to_string(*i.previous_phase));
    } else {
      s.bind_null(6);
    }
    s.bind(7, i.drill).bind(8, to_ms(i.opened_at)).bind(9, to_ms(i.phase_since));
    s.bind(10, to_ms(i.updated_at));
  }));
}

// ---- messages ------------------------------------------------------------------------------

Result<bool> Repo::insert_message(const Message& m) {
  auto r = execute(
      db_,
      "INSERT INTO messages (id, event_id, client_id, incident_id, phase, rule_id, contact_id, "
      "endpoint_id, role, channel, status, attempts, update_number, created_at, send_at, "
      "repeat_ms, planned_at, quiet_hours, kind, fallback_of) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
      "?19) "
      "ON CONFLICT (id) DO NOTHING",
      [&](Statement& s) {
        s.bind(1, m.id).bind(2, m.event_id).bind(3, m.client_id).bind(4, m.incident_id);
        s.bind(5, to_string(m.phase)).bind(6, m.rule_id).bind(7, m.contact_id);
        s.bind(8, m.endpoint_id).bind(9, m.role).bind(10, m.channel);
        s.bind(11, to_string(m.status)).bind(12, m.update_number).bind(13, to_ms(m.created_at));
        s.bind(14, to_ms(m.send_at));
        s.bind_optional(15, m.repeat ? std::optional<int64_t>(m.repeat->count()) : std::nullopt);
        s.bind(16, to_ms(m.planned_at == Timestamp{} ? m.send_at : m.planned_at));
        s.bind(17, m.quiet_hours == QuietHoursPolicy::ignore ? "ignore" : "respect");
        s.bind(18, m.kind);
        s.bind_text_or_null(19, m.fallback_of);
      });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

Result<std::vector<std::string>> Repo::cancel_superseded(const Event& event) {
  // Most events find nothing to cancel (a new incident, or nothing pending), and an UPDATE ...
  // RETURNING costs several times this look-up even when it changes no row.
  auto pending = query_one<int64_t>(
      db_,
      "SELECT 1 FROM messages WHERE client_id = ?1 AND incident_id = ?2 AND event_id != ?3 "
      "AND status IN ('scheduled', 'retrying') AND kind NOT IN ('reminder', 'overdue') LIMIT 1",
      [&](Statement& s) {
        s.bind(1, event.client_id).bind(2, event.incident_id).bind(3, event.event_id);
      },
      [](Statement& s) { return s.integer(0); });
  if (!pending) {
    return pending.error();
  }
  if (!pending->has_value()) {
    return std::vector<std::string>{};
  }
  return select_rows<std::string>(
      db_,
      "UPDATE messages SET status = 'cancelled', last_error = CASE WHEN phase != ?4 "
      "THEN 'cancelled: the incident moved to ' || ?4 "
      "ELSE 'cancelled: superseded by event ' || ?3 END "
      "WHERE client_id = ?1 AND incident_id = ?2 AND event_id != ?3 "
      "AND status IN ('scheduled', 'retrying') "
      // Deadline reminders run on their obligation's clock, not the phase's.
      "AND kind NOT IN ('reminder', 'overdue') RETURNING id",
      [&](Statement& s) {
        s.bind(1, event.client_id).bind(2, event.incident_id).bind(3, event.event_id);
        s.bind(4, to_string(event.phase));
      },
      [](Statement& s) { return s.text(0); });
}

Result<std::vector<std::string>> Repo::cancel_client(std::string_view client_id,
                                                     std::string_view reason) {
  return select_rows<std::string>(
      db_,
      "UPDATE messages SET status = 'cancelled', last_error = ?2 "
      "WHERE client_id = ?1 AND status IN ('scheduled', 'retrying') RETURNING id",
      [&](Statement& s) { s.bind(1, client_id).bind(2, reason); },
      [](Statement& s) { return s.text(0); });
}

// Without INDEXED BY the planner (no ANALYZE statistics) picks messages_status and sorts
// every waiting message on each claim: O(backlog) per claim, 3x slower at a 10,000 backlog.
Result<std::vector<Message>> Repo::claim_due(Timestamp now, int limit) {
  return select_rows<Message>(
      db_,
      "UPDATE messages SET status = 'sending', attempts = attempts + 1, "
      "first_attempt_at = COALESCE(first_attempt_at, ?1) WHERE id IN ("
      "SELECT id FROM messages INDEXED BY messages_due "
      "WHERE status IN ('scheduled', 'retrying') AND send_at <= ?1 "
      "ORDER BY send_at, seq LIMIT ?2) RETURNING " +
          kMessageColumns,
      [&](Statement& s) { s.bind(1, to_ms(now)).bind(2, limit); }, message_row);
}

Result<std::vector<DueCandidate>> Repo::due_after(Timestamp now, std::optional<DuePosition> after,
                                                  int limit) {
  auto row = [](Statement& s) {
    return DueCandidate{
        from_ms(s.integer(0)), s.integer(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)};
  };
  const std::string columns =
      "SELECT send_at, seq, id, client_id, channel, contact_id, endpoint_id "
      "FROM messages INDEXED BY messages_due WHERE status IN ('scheduled', 'retrying') AND ";
  if (!after) {
    return select_rows<DueCandidate>(
        db_, columns + "send_at <= ?1 ORDER BY send_at, seq LIMIT ?2",
        [&](Statement& s) { s.bind(1, to_ms(now)).bind(2, limit); }, row);
  }
  // Two ranges the index seeks to (a row value (send_at, seq) > (?, ?) makes SQLite read the
  // whole send_at group again, and a fan-out's messages share one send_at): the rest of the
  // last row's send_at, then the later ones.
  auto same = select_rows<DueCandidate>(
      db_, columns + "send_at = ?1 AND seq > ?2 AND send_at <= ?3 ORDER BY seq LIMIT ?4",
      [&](Statement& s) {
        s.bind(1, to_ms(after->send_at)).bind(2, after->seq).bind(3, to_ms(now)).bind(4, limit);
      },
      row);
  if (!same || static_cast<int>(same->size()) >= limit) {
    return same;
  }
  auto later = select_rows<DueCandidate>(
      db_, columns + "send_at > ?1 AND send_at <= ?2 ORDER BY send_at, seq LIMIT ?3",
      [&](Statement& s) {
        s.bind(1, to_ms(after->send_at)).bind(2, to_ms(now));
        s.bind(3, limit - static_cast<int>(same->size()));
      },
      row);
  if (!later) {
    return later.error();
  }
  same->insert(same->end(), std::make_move_iterator(later->begin()),
               std::make_move_iterator(later->end()));
  return same;
}

Result<std::vector<Message>> Repo::claim_ids(const std::vector<std::string>& ids, Timestamp now) {
  if (ids.empty()) {
    return std::vector<Message>{};
  }
  static const std::string sql =
      "UPDATE messages SET status = 'sending', attempts = attempts + 1, "
      "first_attempt_at = COALESCE(first_attempt_at, ?2) "
      "WHERE id IN (SELECT value FROM json_each(?1)) "
      // `+`: not an index for these terms. Offered messages_status, the planner scans every
      // waiting message and probes the list: O(backlog) per claim.
      "AND +status IN ('scheduled', 'retrying') AND +send_at <= ?2 RETURNING " +
      kMessageColumns;
  std::string list =
      nlohmann::json(ids).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto claimed = select_rows<Message>(
      db_, sql, [&](Statement& s) { s.bind(1, list).bind(2, to_ms(now)); }, message_row);
  if (!claimed) {
    return claimed.error();
  }
  // In the order asked for (RETURNING has none of its own).
  std::unordered_map<std::string_view, size_t> position;
  for (size_t i = 0; i < ids.size(); ++i) {
    position.emplace(ids[i], i);
  }
  std::sort(claimed->begin(), claimed->end(), [&position](const Message& a, const Message& b) {
    return position[a.id] < position[b.id];
  });
  return claimed;
}

Status Repo::defer_claimed(std::string_view id, Timestamp send_at) {
  return as_status(execute(
      db_,
      "UPDATE messages SET status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'scheduled' END, "
      "attempts = MAX(attempts - 1, 0), send_at = ?2, "
      "first_attempt_at = CASE WHEN attempts > 1 THEN first_attempt_at END "
      "WHERE id = ?1 AND status = 'sending'",
      [&](Statement& s) { s.bind(1, id).bind(2, to_ms(send_at)); }));
}

Result<int64_t> Repo::requeue_interrupted(Timestamp now) {
  auto interrupted = select_rows<Message>(
      db_, "SELECT " + kMessageColumns + " FROM messages WHERE status = 'sending'",
      [](Statement&) {}, message_row);
  if (!interrupted) {
    return interrupted.error();
  }
  for (const Message& m : *interrupted) {
    Attempt a;
    a.message_id = m.id;
    a.number = m.attempts;
    a.started_at = now;
    a.outcome = AttemptOutcome::retryable;
    a.error = "interrupted: herald stopped during this attempt; sending again with the same id";
    if (auto s = record_attempt(a); !s) {
      return s.error();
    }
    if (auto s = finish_attempt(m.id, MessageStatus::retrying, now, std::nullopt, a.error); !s) {
      return s.error();
    }
  }
  return static_cast<int64_t>(interrupted->size());
}

Result<std::optional<Timestamp>> Repo::next_due() {
  auto r = query_one<int64_t>(
      db_,
      "SELECT MIN(t) FROM (SELECT MIN(send_at) AS t FROM messages INDEXED BY messages_due "
      "WHERE status IN ('scheduled', 'retrying') UNION ALL "
      "SELECT MIN(due_at) FROM escalations WHERE status = 'pending') "
      "HAVING MIN(t) IS NOT NULL",
      [](Statement&) {}, [](Statement& s) { return s.integer(0); });
  if (!r) {
    return r.error();
  }
  if (!r->has_value()) {
    return std::optional<Timestamp>{};
  }
  return std::optional<Timestamp>(from_ms(**r));
}

Status Repo::record_attempt(const Attempt& a) {
  return as_status(execute(
      db_,
      "INSERT OR REPLACE INTO attempts (message_id, number, started_at, duration_ms, outcome, "
      "status_code, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      [&](Statement& s) {
        s.bind(1, a.message_id).bind(2, a.number).bind(3, to_ms(a.started_at));
        s.bind(4, static_cast<int64_t>(a.duration.count())).bind(5, to_string(a.outcome));
        s.bind(6, a.status_code).bind(7, a.error);
      }));
}

Status Repo::finish_attempt(std::string_view id, MessageStatus status, Timestamp send_at,
                            std::optional<Timestamp> delivered_at, std::string_view last_error) {
  return as_status(
      execute(db_,
              "UPDATE messages SET status = ?2, send_at = ?3, delivered_at = ?4, last_error = ?5 "
              "WHERE id = ?1",
              [&](Statement& s) {
                s.bind(1, id).bind(2, to_string(status)).bind(3, to_ms(send_at));
                s.bind_optional(
                    4, delivered_at ? std::optional<int64_t>(to_ms(*delivered_at)) : std::nullopt);
                s.bind(5, last_error);
              }));
}

Status Repo::set_content(std::string_view id, const MessageContent& c) {
  return as_status(execute(
      db_,
      "UPDATE messages SET address = ?2, subject = ?3, body = ?4, content_hash = ?5, "
      "templates = ?6, sms_segments = ?7 WHERE id = ?1",
      [&](Statement& s) {
        s.bind(1, id).bind(2, c.address).bind(3, c.subject).bind(4, c.body).bind(5, c.content_hash);
        s.bind(6, c.templates).bind_optional(7, c.sms_segments);
      }));
}

Status Repo::finish_attempt(std::string_view id, MessageStatus status, Timestamp send_at,
                            std::optional<Timestamp> delivered_at, std::string_view last_error,
                            const MessageContent& c) {
  return as_status(
      execute(db_,
              "UPDATE messages SET status = ?2, send_at = ?3, delivered_at = ?4, last_error = ?5, "
              "address = ?6, subject = ?7, body = ?8, content_hash = ?9, templates = ?10, "
              "sms_segments = ?11 WHERE id = ?1",
              [&](Statement& s) {
                s.bind(1, id).bind(2, to_string(status)).bind(3, to_ms(send_at));
                s.bind_optional(
                    4, delivered_at ? std::optional<int64_t>(to_ms(*delivered_at)) : std::nullopt);
                s.bind(5, last_error).bind(6, c.address).bind(7, c.subject).bind(8, c.body);
                s.bind(9, c.content_hash).bind(10, c.templates).bind_optional(11, c.sms_segments);
              }));
}

Result<std::optional<std::string>> Repo::content_hash(std::string_view id) {
  return query_one<std::string>(
      db_, "SELECT content_hash FROM messages WHERE id = ?1 AND content_hash IS NOT NULL",
      [&](Statement& s) { s.bind(1, id); }, [](Statement& s) { return s.text(0); });
}

Result<std::vector<std::pair<std::string, std::string>>> Repo::prune_bodies(Timestamp cutoff,
                                                                            int limit) {
  return select_rows<std::pair<std::string, std::string>>(
      db_,
      "UPDATE messages SET subject = NULL, body = NULL WHERE seq IN ("
      "SELECT seq FROM messages WHERE body IS NOT NULL AND created_at < ?1 "
      "AND status IN ('delivered', 'failed', 'cancelled') ORDER BY created_at LIMIT ?2) "
      "RETURNING client_id, id",
      [&](Statement& s) { s.bind(1, to_ms(cutoff)).bind(2, limit); },
      [](Statement& s) { return std::make_pair(s.text(0), s.text(1)); });
}

Result<std::optional<MessageContent>> Repo::content(std::string_view id) {
  return query_one<MessageContent>(
      db_,
      "SELECT address, subject, body, content_hash, templates, sms_segments, body IS NULL "
      "FROM messages WHERE id = ?1 AND content_hash IS NOT NULL",
      [&](Statement& s) { s.bind(1, id); },
      [](Statement& s) {
        return MessageContent{s.text(0),
                              s.text(1),
                              s.text(2),
                              s.text(3),
                              s.is_null(4) ? "[]" : s.text(4),
                              s.optional_integer(5),
                              s.integer(6) != 0};
      });
}

Result<std::optional<Message>> Repo::message(std::string_view id) {
  return query_one<Message>(
      db_, "SELECT " + kMessageColumns + " FROM messages WHERE id = ?1",
      [&](Statement& s) { s.bind(1, id); }, message_row);
}

Result<std::vector<std::string>> Repo::channels_tried(const Message& m) {
  return select_rows<std::string>(
      db_,
      "SELECT DISTINCT channel FROM messages WHERE client_id = ?1 AND event_id = ?2 "
      "AND rule_id = ?3 AND contact_id = ?4 AND update_number = ?5 AND kind = ?6",
      [&](Statement& s) {
        s.bind(1, m.client_id).bind(2, m.event_id).bind(3, m.rule_id).bind(4, m.contact_id);
        s.bind(5, m.update_number).bind(6, m.kind);
      },
      [](Statement& s) { return s.text(0); });
}

Result<std::vector<Attempt>> Repo::attempts(std::string_view message_id) {
  return select_rows<Attempt>(
      db_,
      "SELECT message_id, number, started_at, duration_ms, outcome, status_code, error "
      "FROM attempts WHERE message_id = ?1 ORDER BY number",
      [&](Statement& s) { s.bind(1, message_id); },
      [](Statement& s) {
        Attempt a;
        a.message_id = s.text(0);
        a.number = static_cast<int>(s.integer(1));
        a.started_at = from_ms(s.integer(2));
        a.duration = Millis{s.integer(3)};
        std::string outcome = s.text(4);
        a.outcome = outcome == "delivered"   ? AttemptOutcome::delivered
                    : outcome == "permanent" ? AttemptOutcome::permanent
                                             : AttemptOutcome::retryable;
        a.status_code = static_cast<int>(s.integer(5));
        a.error = s.text(6);
        return a;
      });
}

Result<MessagePage> Repo::messages(const MessageFilter& f) {
  // One statement with optional filters: a NULL parameter disables its condition.
  auto rows = select_rows<std::pair<int64_t, Message>>(
      db_,
      "SELECT " + kMessageColumns +
          " FROM messages WHERE seq > ?1 AND (?2 IS NULL OR client_id = ?2) "
          "AND (?3 IS NULL OR incident_id = ?3) AND (?4 IS NULL OR status = ?4) "
          "AND (?5 IS NULL OR channel = ?5) AND (?6 IS NULL OR created_at >= ?6) "
          "AND (?7 IS NULL OR created_at < ?7) ORDER BY seq LIMIT ?8",
      [&](Statement& s) {
        s.bind(1, f.after_seq);
        s.bind_text_or_null(2, f.client_id).bind_text_or_null(3, f.incident_id);
        s.bind_text_or_null(4, f.status ? to_string(*f.status) : std::string_view{});
        s.bind_text_or_null(5, f.channel);
        s.bind_optional(6, f.since ? std::optional<int64_t>(to_ms(*f.since)) : std::nullopt);
        s.bind_optional(7, f.until ? std::optional<int64_t>(to_ms(*f.until)) : std::nullopt);
        s.bind(8, f.limit + 1);
      },
      [](Statement& s) { return std::make_pair(s.integer(17), message_row(s)); });
  if (!rows) {
    return rows.error();
  }
  MessagePage page;
  for (auto& [seq, m] : *rows) {
    if (static_cast<int>(page.items.size()) == f.limit) {
      break;
    }
    page.items.push_back(std::move(m));
    page.next_seq = seq;
  }
  if (static_cast<int>(rows->size()) <= f.limit) {
    page.next_seq.reset();
  }
  return page;
}

Result<std::vector<StatusCount>> Repo::message_counts() {
  return select_rows<StatusCount>(
      db_, "SELECT channel, status, COUNT(*) FROM messages GROUP BY channel, status",
      [](Statement&) {},
      [](Statement& s) {
        return StatusCount{s.text(0), s.text(1), s.integer(2)};
      });
}

Result<int64_t> Repo::queue_depth(Timestamp now) {
  auto r = query_one<int64_t>(
      db_,
      "SELECT COUNT(*) FROM messages WHERE status IN ('scheduled', 'retrying') AND send_at <= ?1",
      [&](Statement& s) { s.bind(1, to_ms(now)); }, [](Statement& s) { return s.integer(0); });
  if (!r) {
    return r.error();
  }
  return r->value_or(0);
}

Result<DueQueue> Repo::due_queue(Timestamp now) {
  auto rows = select_rows<std::tuple<std::string, int64_t, int64_t>>(
      db_,
      "SELECT status, COUNT(*), MIN(send_at) FROM messages "
      "WHERE status IN ('scheduled', 'retrying') AND send_at <= ?1 GROUP BY status",
      [&](Statement& s) { s.bind(1, to_ms(now)); },
      [](Statement& s) { return std::make_tuple(s.text(0), s.integer(1), s.integer(2)); });
  if (!rows) {
    return rows.error();
  }
  DueQueue q;
  for (const auto& [status, count, oldest] : *rows) {
    (status == "scheduled" ? q.scheduled : q.retrying) = count;
    if (!q.oldest || from_ms(oldest) < *q.oldest) {
      q.oldest = from_ms(oldest);
    }
  }
  return q;
}

// ---- acknowledgements and escalations ------------------------------------------------------

std::string_view to_string(EscalationStatus status) {
  switch (status) {
    case EscalationStatus::pending:
      return "pending";
    case EscalationStatus::fired:
      return "fired";
    case EscalationStatus::acknowledged:
      return "acknowledged";
    case EscalationStatus::cancelled:
      return "cancelled";
  }
  return "pending";
}

namespace {

EscalationStatus parse_escalation_status(const std::string& text) {
  if (text == "fired") {
    return EscalationStatus::fired;
  }
  if (text == "acknowledged") {
    return EscalationStatus::acknowledged;
  }
  if (text == "cancelled") {
    return EscalationStatus::cancelled;
  }
  return EscalationStatus::pending;
}

const std::string kEscalationColumns =
    "id, client_id, incident_id, event_id, phase, rule_id, due_at, to_roles, channels, "
    "quiet_hours, status, resolved_at, messages";

EscalationRecord escalation_row(Statement& s) {
  EscalationRecord e;
  e.id = s.text(0);
  e.client_id = s.text(1);
  e.incident_id = s.text(2);
  e.event_id = s.text(3);
  e.phase = parse_phase(s.text(4)).value_or(Phase::preparation);
  e.rule_id = s.text(5);
  e.due_at = from_ms(s.integer(6));
  e.to_roles = from_json_array(s.text(7));
  e.channels = from_json_array(s.text(8));
  e.quiet_hours = s.text(9) == "ignore" ? QuietHoursPolicy::ignore : QuietHoursPolicy::respect;
  e.status = parse_escalation_status(s.text(10));
  if (auto r = s.optional_integer(11)) {
    e.resolved_at = from_ms(*r);
  }
  e.messages = static_cast<int>(s.integer(12));
  return e;
}

AckRecord ack_row(Statement& s) {
  AckRecord a;
  a.message_id = s.text(0);
  a.client_id = s.text(1);
  a.incident_id = s.text(2);
  a.phase = parse_phase(s.text(3)).value_or(Phase::preparation);
  a.rule_id = s.text(4);
  a.contact_id = s.text(5);
  a.at = from_ms(s.integer(6));
  a.remote = s.text(7);
  return a;
}

}  // namespace

Result<bool> Repo::insert_ack(const AckRecord& a) {
  auto r = execute(db_,
                   "INSERT INTO acks (message_id, client_id, incident_id, phase, rule_id, "
                   "contact_id, at, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                   "ON CONFLICT (message_id) DO NOTHING",
                   [&](Statement& s) {
                     s.bind(1, a.message_id).bind(2, a.client_id).bind(3, a.incident_id);
                     s.bind(4, to_string(a.phase)).bind(5, a.rule_id).bind(6, a.contact_id);
                     s.bind(7, to_ms(a.at)).bind(8, a.remote);
                   });
  if (!r) {
    return r.error();
  }
  if (*r == 0) {
    return false;
  }
  auto m = execute(db_, "UPDATE messages SET acknowledged_at = ?2 WHERE id = ?1",
                   [&](Statement& s) { s.bind(1, a.message_id).bind(2, to_ms(a.at)); });
  if (!m) {
    return m.error();
  }
  return true;
}

Result<std::vector<AckRecord>> Repo::acks(std::string_view client_id,
                                          std::string_view incident_id) {
  return select_rows<AckRecord>(
      db_,
      "SELECT message_id, client_id, incident_id, phase, rule_id, contact_id, at, remote "
      "FROM acks WHERE client_id = ?1 AND incident_id = ?2 ORDER BY at",
      [&](Statement& s) { s.bind(1, client_id).bind(2, incident_id); }, ack_row);
}

Result<bool> Repo::rule_acknowledged(std::string_view client_id, std::string_view incident_id,
                                     Phase phase, std::string_view rule_id) {
  auto r = query_one<int64_t>(
      db_,
      "SELECT 1 FROM acks WHERE client_id = ?1 AND incident_id = ?2 AND phase = ?3 "
      "AND rule_id = ?4 LIMIT 1",
      [&](Statement& s) {
        s.bind(1, client_id).bind(2, incident_id).bind(3, to_string(phase)).bind(4, rule_id);
      },
      [](Statement& s) { return s.integer(0); });
  if (!r) {
    return r.error();
  }
  return r->has_value();
}

Result<bool> Repo::contact_acknowledged(std::string_view client_id, std::string_view incident_id,
                                        Phase phase, std::string_view rule_id,
                                        std::string_view contact_id) {
  auto r = query_one<int64_t>(
      db_,
      "SELECT 1 FROM acks WHERE client_id = ?1 AND incident_id = ?2 AND phase = ?3 "
      "AND rule_id = ?4 AND contact_id = ?5 LIMIT 1",
      [&](Statement& s) {
        s.bind(1, client_id).bind(2, incident_id).bind(3, to_string(phase)).bind(4, rule_id);
        s.bind(5, contact_id);
      },
      [](Statement& s) { return s.integer(0); });
  if (!r) {
    return r.error();
  }
  return r->has_value();
}

Result<std::vector<std::string>> Repo::cancel_contact_pending(std::string_view client_id,
                                                              std::string_view incident_id,
                                                              Phase phase, std::string_view rule_id,
                                                              std::string_view contact_id,
                                                              std::string_view reason) {
  return select_rows<std::string>(
      db_,
      "UPDATE messages SET status = 'cancelled', last_error = ?6 "
      "WHERE client_id = ?1 AND incident_id = ?2 AND phase = ?3 AND rule_id = ?4 "
      "AND contact_id = ?5 AND status IN ('scheduled', 'retrying') RETURNING id",
      [&](Statement& s) {
        s.bind(1, client_id).bind(2, incident_id).bind(3, to_string(phase));
        s.bind(4, rule_id).bind(5, contact_id).bind(6, reason);
      },
      [](Statement& s) { return s.text(0); });
}

Result<bool> Repo::insert_escalation(const EscalationRecord& e) {
  auto r = execute(db_,
                   "INSERT INTO escalations (" + kEscalationColumns +
                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, 0) "
                       "ON CONFLICT (id) DO NOTHING",
                   [&](Statement& s) {
                     s.bind(1, e.id).bind(2, e.client_id).bind(3, e.incident_id);
                     s.bind(4, e.event_id).bind(5, to_string(e.phase)).bind(6, e.rule_id);
                     s.bind(7, to_ms(e.due_at)).bind(8, to_json_array(e.to_roles));
                     s.bind(9, to_json_array(e.channels));
                     s.bind(10, e.quiet_hours == QuietHoursPolicy::ignore ? "ignore" : "respect");
                     s.bind(11, to_string(e.status));
                   });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

Result<std::vector<EscalationRecord>> Repo::due_escalations(Timestamp now, int limit) {
  return select_rows<EscalationRecord>(
      db_,
      "SELECT " + kEscalationColumns +
          " FROM escalations WHERE status = 'pending' AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
      [&](Statement& s) { s.bind(1, to_ms(now)).bind(2, limit); }, escalation_row);
}

Status Repo::resolve_escalation(std::string_view id, EscalationStatus status, Timestamp at,
                                int messages) {
  return as_status(execute(
      db_, "UPDATE escalations SET status = ?2, resolved_at = ?3, messages = ?4 WHERE id = ?1",
      [&](Statement& s) {
        s.bind(1, id).bind(2, to_string(status)).bind(3, to_ms(at)).bind(4, messages);
      }));
}

Result<int64_t> Repo::acknowledge_escalations(std::string_view client_id,
                                              std::string_view incident_id, Phase phase,
                                              std::string_view rule_id, Timestamp at) {
  return execute(db_,
                 "UPDATE escalations SET status = 'acknowledged', resolved_at = ?5 "
                 "WHERE client_id = ?1 AND incident_id = ?2 AND phase = ?3 AND rule_id = ?4 "
                 "AND status = 'pending'",
                 [&](Statement& s) {
                   s.bind(1, client_id).bind(2, incident_id).bind(3, to_string(phase));
                   s.bind(4, rule_id).bind(5, to_ms(at));
                 });
}

Result<int64_t> Repo::cancel_superseded_escalations(const Event& event, Timestamp at) {
  return execute(db_,
                 "UPDATE escalations SET status = 'cancelled', resolved_at = ?4 "
                 "WHERE client_id = ?1 AND incident_id = ?2 AND event_id != ?3 "
                 "AND status = 'pending'",
                 [&](Statement& s) {
                   s.bind(1, event.client_id).bind(2, event.incident_id).bind(3, event.event_id);
                   s.bind(4, to_ms(at));
                 });
}

Result<std::vector<EscalationRecord>> Repo::escalations(std::string_view client_id,
                                                        std::string_view incident_id) {
  return select_rows<EscalationRecord>(
      db_,
      "SELECT " + kEscalationColumns +
          " FROM escalations WHERE client_id = ?1 AND incident_id = ?2 ORDER BY due_at",
      [&](Statement& s) { s.bind(1, client_id).bind(2, incident_id); }, escalation_row);
}

// ---- API tokens ----------------------------------------------------------------------------

Result<std::vector<ApiToken>> Repo::api_tokens() {
  return select_rows<ApiToken>(
      db_,
      "SELECT name, sha256, scopes, created_at, created_by, expires_at FROM api_tokens "
      "ORDER BY name",
      [](Statement&) {},
      [](Statement& s) {
        ApiToken t;
        t.name = s.text(0);
        t.sha256 = s.text(1);
        t.scopes = from_json_array(s.text(2));
        t.created_at = from_ms(s.integer(3));
        t.created_by = s.text(4);
        if (!s.is_null(5)) {
          t.expires_at = from_ms(s.integer(5));
        }
        return t;
      });
}

Result<bool> Repo::insert_api_token(const ApiToken& token) {
  auto r =
      execute(db_,
              "INSERT INTO api_tokens (name, sha256, scopes, created_at, created_by, "
              "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
              [&](Statement& s) {
                s.bind(1, token.name).bind(2, token.sha256).bind(3, to_json_array(token.scopes));
                s.bind(4, to_ms(token.created_at)).bind(5, token.created_by);
                if (token.expires_at) {
                  s.bind(6, to_ms(*token.expires_at));
                } else {
                  s.bind_null(6);
                }
              });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

Result<bool> Repo::delete_api_token(std::string_view name) {
  auto r = execute(db_, "DELETE FROM api_tokens WHERE name = ?1",
                   [&](Statement& s) { s.bind(1, name); });
  if (!r) {
    return r.error();
  }
  return *r > 0;
}

// ---- meta and audit ------------------------------------------------------------------------

Result<bool> Repo::insert_source_rejection(const SourceRejection& r) {
  auto n = execute(db_,
                   "INSERT INTO source_rejections (source, ref, subject, received_at, code, field, "
                   "message, payload, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                   "ON CONFLICT (source, ref) DO NOTHING",
                   [&](Statement& s) {
                     s.bind(1, r.source).bind(2, r.ref).bind(3, r.subject);
                     s.bind(4, to_ms(r.received_at)).bind(5, r.code).bind(6, r.field);
                     s.bind(7, r.message).bind(8, r.payload).bind(9, r.size);
                   });
  if (!n) {
    return n.error();
  }
  return *n > 0;
}

Result<std::vector<SourceRejection>> Repo::source_rejections(std::string_view source,
                                                             int64_t after_id, int limit) {
  return select_rows<SourceRejection>(
      db_,
      "SELECT id, source, ref, subject, received_at, code, field, message, payload, size "
      "FROM source_rejections WHERE source = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
      [&](Statement& s) { s.bind(1, source).bind(2, after_id).bind(3, limit); },
      [](Statement& s) {
        SourceRejection r;
        r.id = s.integer(0);
        r.source = s.text(1);
        r.ref = s.text(2);
        r.subject = s.text(3);
        r.received_at = from_ms(s.integer(4));
        r.code = s.text(5);
        r.field = s.text(6);
        r.message = s.text(7);
        r.payload = s.text(8);
        r.size = s.integer(9);
        return r;
      });
}

Result<std::optional<std::string>> Repo::meta(std::string_view key) {
  return query_one<std::string>(
      db_, "SELECT value FROM meta WHERE key = ?1", [&](Statement& s) { s.bind(1, key); },
      [](Statement& s) { return s.text(0); });
}

Status Repo::set_meta(std::string_view key, std::string_view value) {
  return as_status(execute(
      db_,
      "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
      [&](Statement& s) { s.bind(1, key).bind(2, value); }));
}

Status Repo::audit(std::string_view kind, std::string_view actor, std::string_view client_id,
                   std::string_view subject, std::string_view data_json, Timestamp now) {
  auto last = query_one<std::pair<int64_t, std::string>>(
      db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [](Statement&) {},
      [](Statement& s) { return std::make_pair(s.integer(0), s.text(1)); });
  if (!last) {
    return last.error();
  }
  AuditRecord r;
  r.seq = last->has_value() ? (*last)->first + 1 : 1;
  r.prev_hash = last->has_value() ? (*last)->second : std::string(64, '0');
  r.at = now;
  r.kind = kind;
  r.actor = actor;
  r.client_id = client_id;
  r.subject = subject;
  r.data = data_json;
  r.hash = audit_hash(r);
  static const std::string kSql =
      "INSERT INTO audit (" + kAuditColumns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
  return as_status(execute(db_, kSql, [&](Statement& s) {
    s.bind(1, r.seq).bind(2, to_ms(r.at)).bind(3, r.kind).bind(4, r.actor);
    s.bind(5, r.client_id).bind(6, r.subject).bind(7, r.data);
    s.bind(8, r.prev_hash).bind(9, r.hash);
  }));
}

Status Repo::audit_planned(std::string_view actor, std::string_view cause,
                           const std::vector<Message>& messages, Timestamp now) {
  if (messages.empty()) {
    return {};
  }
  // {"cause", "event_id", "messages": [{"channel", "contact" or "endpoint", "id", "role"
  // (when there is one), "rule", "send_at", "update"}], "phase"}: keys in nlohmann's order.
  const Message& first = messages.front();
  JsonWriter data;
  data.begin_object().key("cause").value(cause).key("event_id").value(first.event_id);
  data.key("messages").begin_array();
  for (const auto& m : messages) {
    data.begin_object().key("channel").value(m.channel);
    if (!m.contact_id.empty()) {
      data.key("contact").value(m.contact_id);
    } else {
      data.key("endpoint").value(m.endpoint_id);
    }
    data.key("id").value(m.id);
    if (!m.role.empty()) {
      data.key("role").value(m.role);
    }
    data.key("rule").value(m.rule_id).key("send_at").value(format_rfc3339(m.send_at));
    data.key("update").value(m.update_number).end_object();
  }
  data.end_array().key("phase").value(to_string(first.phase)).end_object();
  return audit("messages.planned", actor, first.client_id, first.incident_id, data.take(), now);
}

Status Repo::audit_cancelled(std::string_view actor, std::string_view client_id,
                             std::string_view subject, std::string_view reason,
                             const std::vector<std::string>& ids, Timestamp now) {
  if (ids.empty()) {
    return {};
  }
  nlohmann::json data{{"reason", std::string(reason)}, {"messages", ids}};
  return audit("messages.cancelled", actor, client_id, subject,
               data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
}

Result<std::vector<AuditRecord>> Repo::audit_records(int64_t after_seq, int limit,
                                                     std::string_view kind) {
  AuditFilter f;
  f.after_seq = after_seq;
  f.limit = limit;
  f.kind = kind;
  return audit_records(f);
}

Result<std::vector<AuditRecord>> Repo::audit_records(const AuditFilter& f) {
  // Keyset paging on seq (the primary key): each page starts where the last one ended, so a
  // long walk costs the same per page however far it has come.
  return select_rows<AuditRecord>(
      db_,
      "SELECT " + kAuditColumns +
          " FROM audit WHERE seq > ?1 AND (?2 IS NULL OR seq <= ?2) "
          "AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4) "
          "AND (?5 IS NULL OR kind = ?5) AND (?6 IS NULL OR client_id = ?6) "
          "AND (?7 IS NULL OR actor = ?7) ORDER BY seq LIMIT ?8",
      [&](Statement& s) {
        s.bind(1, f.after_seq).bind_optional(2, f.up_to_seq);
        s.bind_optional(3, f.since ? std::optional<int64_t>(to_ms(*f.since)) : std::nullopt);
        s.bind_optional(4, f.until ? std::optional<int64_t>(to_ms(*f.until)) : std::nullopt);
        s.bind_text_or_null(5, f.kind).bind_text_or_null(6, f.client_id);
        s.bind_text_or_null(7, f.actor).bind(8, f.limit);
      },
      audit_row);
}

Result<int64_t> Repo::last_audit_seq() {
  auto last = query_one<int64_t>(
      db_, "SELECT seq FROM audit ORDER BY seq DESC LIMIT 1", [](Statement&) {},
      [](Statement& s) { return s.integer(0); });
  if (!last) {
    return last.error();
  }
  return last->value_or(0);
}

Result<AuditVerification> Repo::verify_audit() {
  auto stmt = db_.prepare("SELECT " + kAuditColumns + " FROM audit ORDER BY seq");
  if (!stmt) {
    return stmt.error();
  }
  AuditVerification v;
  std::string prev(64, '0');
  int64_t expected_seq = 1;
  while (true) {
    auto row = (*stmt)->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    AuditRecord r = audit_row(**stmt);
    ++v.records;
    std::string why;
    if (r.seq != expected_seq) {
      why = "record " + std::to_string(expected_seq) + " is missing";
    } else if (r.prev_hash != prev) {
      why = "its prev_hash does not match the hash of the record before it";
    } else if (audit_hash(r) != r.hash) {
      why = "its content does not match its hash";
    }
    if (!why.empty()) {
      v.ok = false;
      v.first_bad = r.seq != expected_seq ? expected_seq : r.seq;
      v.reason = why;
      return v;
    }
    prev = r.hash;
    ++expected_seq;
  }
  return v;
}

// ---- templates -----------------------------------------------------------------------------

namespace {

const std::string kTemplateColumns = "client_id, name, version, body, created_at, actor";

TemplateVersion template_row(Statement& s) {
  TemplateVersion t;
  t.client_id = s.text(0);
  t.name = s.text(1);
  t.version = s.integer(2);
  if (!s.is_null(3)) {
    t.body = s.text(3);
  }
  t.at = from_ms(s.integer(4));
  t.actor = s.text(5);
  return t;
}

}  // namespace

Result<std::vector<TemplateVersion>> Repo::current_templates(std::string_view client_id) {
  return select_rows<TemplateVersion>(
      db_,
      "SELECT " + kTemplateColumns +
          " FROM templates t WHERE (?1 = '*' OR client_id IN (?1, '')) AND body IS NOT NULL "
          "AND version = (SELECT MAX(version) FROM templates u "
          "WHERE u.client_id = t.client_id AND u.name = t.name) ORDER BY client_id, name",
      [&](Statement& s) { s.bind(1, client_id); }, template_row);
}

Result<std::optional<TemplateVersion>> Repo::template_version(std::string_view client_id,
                                                              std::string_view name,
                                                              int64_t version) {
  return query_one<TemplateVersion>(
      db_,
      "SELECT " + kTemplateColumns +
          " FROM templates WHERE client_id = ?1 AND name = ?2 AND (?3 = 0 OR version = ?3) "
          "ORDER BY version DESC LIMIT 1",
      [&](Statement& s) { s.bind(1, client_id).bind(2, name).bind(3, version); }, template_row);
}

Result<std::vector<TemplateVersion>> Repo::template_history(std::string_view client_id,
                                                            std::string_view name) {
  return select_rows<TemplateVersion>(
      db_,
      "SELECT " + kTemplateColumns +
          " FROM templates WHERE client_id = ?1 AND name = ?2 ORDER BY version",
      [&](Statement& s) { s.bind(1, client_id).bind(2, name); }, template_row);
}

Result<int64_t> Repo::put_template(std::string_view client_id, std::string_view name,
                                   const std::optional<std::string>& body, std::string_view actor,
                                   Timestamp now) {
  auto latest = template_version(client_id, name, 0);
  if (!latest) {
    return latest.error();
  }
  int64_t version = *latest ? (*latest)->version + 1 : 1;
  auto r = execute(
      db_, "INSERT INTO templates (" + kTemplateColumns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      [&](Statement& s) {
        s.bind(1, client_id).bind(2, name).bind(3, version);
        if (body) {
          s.bind(4, *body);
        } else {
          s.bind_null(4);
        }
        s.bind(5, to_ms(now)).bind(6, actor);
      });
  if (!r) {
    return r.error();
  }
  return version;
}

}  // namespace herald::store
