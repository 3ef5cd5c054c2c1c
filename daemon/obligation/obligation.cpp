#include "daemon/obligation/obligation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "daemon/plan/planner.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/query.hpp"

namespace herald::obligation {
namespace {

using nlohmann::json;
using store::from_ms;
using store::to_ms;

constexpr size_t kMaxObligations = 50;
constexpr size_t kMaxReminders = 10;
constexpr std::string_view kRulePrefix = "obligation:";

Error invalid(const std::string& what, const std::string& field, const std::string& message) {
  return make_error(ErrorKind::unprocessable, "invalid_obligations",
                    what.empty() ? message : what + ": " + message, field);
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

Result<std::vector<std::string>> string_list(const json& o, const char* key,
                                             const std::string& what, const std::string& path) {
  std::vector<std::string> out;
  if (!o.contains(key) || o[key].is_null()) {
    return out;
  }
  if (!o[key].is_array()) {
    return invalid(what, path + "." + key, fmt::format("{} must be a list of strings", key));
  }
  for (size_t j = 0; j < o[key].size(); ++j) {
    const auto& v = o[key][j];
    if (!v.is_string() || v.get<std::string>().empty()) {
      return invalid(what, fmt::format("{}.{}[{}]", path, key, j),
                     fmt::format("{}[{}] must be a non-empty string", key, j));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::string rule_of(const std::string& obligation_id, bool overdue) {
  return std::string(kRulePrefix) + obligation_id + (overdue ? "#overdue" : "");
}

const std::string kRowColumns =
    "obligation_id, description, event_id, phase, started_at, due_at, within_ms, roles, met_at, "
    "met_by, note, overdue_at";

struct Row {
  std::string id, description, event_id;
  Phase phase = Phase::identification;
  Timestamp started_at{}, due_at{};
  Millis within{0};
  std::vector<std::string> roles;
  std::optional<Timestamp> met_at;
  std::string met_by, note;
  std::optional<Timestamp> overdue_at;
};

Row row_of(store::Statement& s) {
  Row r;
  r.id = s.text(0);
  r.description = s.text(1);
  r.event_id = s.text(2);
  r.phase = parse_phase(s.text(3)).value_or(Phase::identification);
  r.started_at = from_ms(s.integer(4));
  r.due_at = from_ms(s.integer(5));
  r.within = Millis{s.integer(6)};
  auto roles = json::parse(s.text(7), nullptr, false);
  if (roles.is_array()) {
    for (const auto& v : roles) {
      if (v.is_string()) {
        r.roles.push_back(v.get<std::string>());
      }
    }
  }
  if (!s.is_null(8)) {
    r.met_at = from_ms(s.integer(8));
  }
  r.met_by = s.text(9);
  r.note = s.text(10);
  if (!s.is_null(11)) {
    r.overdue_at = from_ms(s.integer(11));
  }
  return r;
}

std::string state_of(const Row& r, Timestamp now) {
  if (r.met_at) {
    return *r.met_at <= r.due_at ? "met" : "met_late";
  }
  return now >= r.due_at ? "overdue" : "pending";
}

}  // namespace

Result<std::vector<Obligation>> parse_obligations(const json& body) {
  if (!body.is_object() || !body.contains("obligations") || !body["obligations"].is_array()) {
    return invalid("", "obligations",
                   "the body must be {\"obligations\": [...]} (an empty list removes them all)");
  }
  for (const auto& [key, _] : body.items()) {
    if (key != "obligations") {
      return invalid("", key, fmt::format("unknown field \"{}\"", key));
    }
  }
  const json& list = body["obligations"];
  if (list.size() > kMaxObligations) {
    return invalid("", "obligations", fmt::format("at most {} obligations", kMaxObligations));
  }
  static const std::set<std::string> kFields{"id",       "description", "starts", "min_severity",
                                             "within",   "remind",      "roles",  "escalate_to",
                                             "channels", "quiet_hours"};
  std::vector<Obligation> out;
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& o = list[i];
    std::string path = fmt::format("obligations[{}]", i);
    std::string what = fmt::format("obligation {}", i);
    if (!o.is_object()) {
      return invalid(what, path, "must be an object");
    }
    Obligation ob;
    if (!o.contains("id") || !o["id"].is_string() || !valid_id(o["id"].get<std::string>())) {
      return invalid(what, path + ".id",
                     "id is required: 1 to 64 letters, digits, '-', '_' or '.'");
    }
    ob.id = o["id"].get<std::string>();
    what = fmt::format("obligation \"{}\"", ob.id);
    if (!ids.insert(ob.id).second) {
      return invalid(what, path + ".id", "the same id twice");
    }
    for (const auto& [key, _] : o.items()) {
      if (!kFields.count(key)) {
        return invalid(what, path + "." + key, fmt::format("unknown field \"{}\"", key));
      }
    }
    if (o.contains("description") && !o["description"].is_null()) {
      if (!o["description"].is_string() || o["description"].get<std::string>().size() > 1000) {
        return invalid(what, path + ".description", "description must be a string (1000 max)");
      }
      ob.description = o["description"].get<std::string>();
    }
    auto starts = o.contains("starts") && o["starts"].is_string()
                      ? parse_phase(o["starts"].get<std::string>())
                      : std::nullopt;
    if (!starts) {
      return invalid(what, path + ".starts",
                     "starts must be the phase that starts the clock: preparation, "
                     "identification, containment, eradication, recovery, lessons_learned or "
                     "closed");
    }
    ob.starts = *starts;
    if (o.contains("min_severity") && !o["min_severity"].is_null()) {
      auto sev = o["min_severity"].is_string()
                     ? parse_severity(o["min_severity"].get<std::string>())
                     : std::nullopt;
      if (!sev) {
        return invalid(what, path + ".min_severity",
                       "min_severity must be low, medium, high or critical");
      }
      ob.min_severity = *sev;
    }
    auto within = o.contains("within") && o["within"].is_string()
                      ? parse_duration(o["within"].get<std::string>())
                      : std::nullopt;
    if (!within || *within <= Millis{0}) {
      return invalid(what, path + ".within", "within must be a positive duration, e.g. \"72h\"");
    }
    ob.within = *within;
    if (o.contains("remind") && !o["remind"].is_null()) {
      if (!o["remind"].is_array() || o["remind"].size() > kMaxReminders) {
        return invalid(what, path + ".remind",
                       fmt::format("remind must be a list of at most {} durations before the "
                                   "deadline, e.g. [\"24h\", \"4h\"]",
                                   kMaxReminders));
      }
      for (size_t j = 0; j < o["remind"].size(); ++j) {
        const auto& v = o["remind"][j];
        auto d = v.is_string() ? parse_duration(v.get<std::string>()) : std::nullopt;
        if (!d || *d <= Millis{0} || *d >= ob.within) {
          return invalid(what, fmt::format("{}.remind[{}]", path, j),
                         fmt::format("remind[{}] must be a positive duration shorter than "
                                     "within ({})",
                                     j, format_duration(ob.within)));
        }
        if (std::find(ob.remind.begin(), ob.remind.end(), *d) == ob.remind.end()) {
          ob.remind.push_back(*d);
        }
      }
      std::sort(ob.remind.begin(), ob.remind.end(), std::greater<>());
    }
    auto roles = string_list(o, "roles", what, path);
    if (!roles) {
      return roles.error();
    }
    if (roles->empty()) {
      return invalid(what, path + ".roles", "roles must name at least one role to remind");
    }
    ob.roles = *roles;
    auto escalate = string_list(o, "escalate_to", what, path);
    if (!escalate) {
      return escalate.error();
    }
    ob.escalate_to = *escalate;
    auto channels = string_list(o, "channels", what, path);
    if (!channels) {
      return channels.error();
    }
    for (size_t j = 0; j < channels->size(); ++j) {
      if (!is_person_channel((*channels)[j])) {
        return invalid(what, fmt::format("{}.channels[{}]", path, j),
                       "channels are email or sms (people are reminded, not rooms)");
      }
    }
    ob.channels = *channels;
    if (o.contains("quiet_hours") && !o["quiet_hours"].is_null()) {
      std::string q = o["quiet_hours"].is_string() ? o["quiet_hours"].get<std::string>() : "";
      if (q != "respect" && q != "ignore") {
        return invalid(what, path + ".quiet_hours", "quiet_hours must be respect or ignore");
      }
      ob.quiet_hours = q == "ignore" ? QuietHoursPolicy::ignore : QuietHoursPolicy::respect;
    }
    out.push_back(std::move(ob));
  }
  return out;
}

json obligations_json(const std::vector<Obligation>& obligations) {
  json list = json::array();
  for (const auto& o : obligations) {
    json remind = json::array();
    for (auto r : o.remind) {
      remind.push_back(format_duration(r));
    }
    list.push_back(
        json{{"id", o.id},
             {"description", o.description},
             {"starts", to_string(o.starts)},
             {"min_severity", to_string(o.min_severity)},
             {"within", format_duration(o.within)},
             {"remind", remind},
             {"roles", o.roles},
             {"escalate_to", o.escalate_to},
             {"channels", o.channels},
             {"quiet_hours", o.quiet_hours == QuietHoursPolicy::ignore ? "ignore" : "respect"}});
  }
  return json{{"obligations", list}};
}

Result<std::vector<Obligation>> load(store::Repo& repo, const std::string& client_id) {
  auto rows = store::select_rows<std::string>(
      repo.database(), "SELECT body FROM client_obligations WHERE client_id = ?1",
      [&](store::Statement& s) { s.bind(1, client_id); },
      [](store::Statement& s) { return s.text(0); });
  if (!rows) {
    return rows.error();
  }
  if (rows->empty()) {
    return std::vector<Obligation>{};
  }
  auto parsed = parse_obligations(json::parse((*rows)[0], nullptr, false));
  if (!parsed) {
    return std::vector<Obligation>{};
  }
  return parsed;
}

Result<int64_t> version(store::Repo& repo, const std::string& client_id) {
  auto rows = store::select_rows<int64_t>(
      repo.database(), "SELECT version FROM client_obligations WHERE client_id = ?1",
      [&](store::Statement& s) { s.bind(1, client_id); },
      [](store::Statement& s) { return s.integer(0); });
  if (!rows) {
    return rows.error();
  }
  return rows->empty() ? int64_t{0} : (*rows)[0];
}

Result<int64_t> save(store::Repo& repo, const std::string& client_id,
                     const std::vector<Obligation>& obligations, Timestamp now) {
  auto current = version(repo, client_id);
  if (!current) {
    return current.error();
  }
  int64_t next = *current + 1;
  auto r = store::run_sql(
      repo.database(),
      "INSERT INTO client_obligations (client_id, body, version, updated_at) VALUES (?1, ?2, ?3, "
      "?4) ON CONFLICT (client_id) DO UPDATE SET body = ?2, version = ?3, updated_at = ?4",
      [&](store::Statement& s) {
        s.bind(1, client_id).bind(2, obligations_json(obligations).dump()).bind(3, next);
        s.bind(4, to_ms(now));
      });
  if (!r) {
    return r.error();
  }
  return next;
}

Result<int> on_event(store::Repo& repo, const Event& event, const std::vector<Contact>& contacts,
                     Timestamp now) {
  if (event.drill) {
    return 0;
  }
  auto obligations = load(repo, event.client_id);
  if (!obligations) {
    return obligations.error();
  }
  int stored = 0;
  for (const auto& o : *obligations) {
    if (o.starts != event.phase || event.severity < o.min_severity) {
      continue;
    }
    Timestamp started = event.occurred_at;
    Timestamp due = started + o.within;
    auto inserted = store::run_sql(
        repo.database(),
        "INSERT INTO incident_obligations (client_id, incident_id, obligation_id, description, "
        "event_id, phase, started_at, due_at, within_ms, roles) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        [&](store::Statement& s) {
          s.bind(1, event.client_id).bind(2, event.incident_id).bind(3, o.id);
          s.bind(4, o.description).bind(5, event.event_id).bind(6, to_string(event.phase));
          s.bind(7, to_ms(started)).bind(8, to_ms(due));
          s.bind(9, static_cast<int64_t>(o.within.count())).bind(10, json(o.roles).dump());
        });
    if (!inserted) {
      return inserted.error();
    }
    if (*inserted == 0) {
      continue;  // the clock started already for this incident: it does not restart
    }
    // Reminders whose moment has passed (an event reported late) are skipped, except the
    // latest of them, which goes at once while the deadline is still ahead.
    std::vector<std::pair<Millis, Timestamp>> reminders;
    for (auto r : o.remind) {
      reminders.emplace_back(r, due - r);
    }
    std::vector<std::pair<std::string, Timestamp>> sends;  // rule key → when
    for (size_t i = 0; i < reminders.size(); ++i) {
      auto [offset, at] = reminders[i];
      bool next_also_past = i + 1 < reminders.size() && reminders[i + 1].second <= now;
      if (at <= now && (next_also_past || due <= now)) {
        continue;
      }
      sends.emplace_back("remind-" + format_duration(offset), std::max(at, now));
    }
    auto add = [&](const std::vector<std::string>& roles, const std::string& kind,
                   const std::string& key, Timestamp at) -> Status {
      bool overdue = kind == "overdue";
      for (const auto& intent : plan::escalation_intents(rule_of(o.id, overdue), roles, o.channels,
                                                         o.quiet_hours, contacts)) {
        Message m = schedule::first_message(intent, event, kind, at, now, contacts);
        std::string recipient = "contact:" + m.contact_id;
        m.id = plan::message_id(m.client_id, m.event_id, rule_of(o.id, false) + "#" + key,
                                recipient, m.channel, 1);
        auto ok = repo.insert_message(m);
        if (!ok) {
          return ok.error();
        }
        stored += *ok ? 1 : 0;
      }
      return {};
    };
    for (const auto& [key, at] : sends) {
      if (auto s = add(o.roles, "reminder", key, at); !s) {
        return s.error();
      }
    }
    std::vector<std::string> overdue_roles = o.roles;
    for (const auto& r : o.escalate_to) {
      if (std::find(overdue_roles.begin(), overdue_roles.end(), r) == overdue_roles.end()) {
        overdue_roles.push_back(r);
      }
    }
    if (auto s = add(overdue_roles, "overdue", "overdue", std::max(due, now)); !s) {
      return s.error();
    }
    json data{{"obligation", o.id},
              {"incident", event.incident_id},
              {"event_id", event.event_id},
              {"started_at", format_rfc3339(started)},
              {"due_at", format_rfc3339(due)},
              {"reminders", sends.size()}};
    if (auto s = repo.audit("obligation.started", "ingest", event.client_id, event.incident_id,
                            data.dump(), now);
        !s) {
      return s.error();
    }
  }
  return stored;
}

Result<std::optional<Notice>> notice_for(store::Repo& repo, const Message& m) {
  if ((m.kind != "reminder" && m.kind != "overdue") || m.rule_id.rfind(kRulePrefix, 0) != 0) {
    return std::optional<Notice>{};
  }
  std::string id = m.rule_id.substr(kRulePrefix.size());
  if (auto hash = id.find('#'); hash != std::string::npos) {
    id.resize(hash);
  }
  auto rows = store::select_rows<Row>(
      repo.database(),
      "SELECT " + kRowColumns +
          " FROM incident_obligations WHERE client_id = ?1 AND incident_id = ?2 AND "
          "obligation_id = ?3",
      [&](store::Statement& s) { s.bind(1, m.client_id).bind(2, m.incident_id).bind(3, id); },
      row_of);
  if (!rows) {
    return rows.error();
  }
  if (rows->empty()) {
    return std::optional<Notice>{};
  }
  const Row& r = (*rows)[0];
  Notice n;
  n.id = r.id;
  n.description = r.description;
  n.kind = m.kind;
  n.starts = r.phase;
  n.started_at = r.started_at;
  n.due_at = r.due_at;
  n.within = r.within;
  return std::optional<Notice>(n);
}

Result<MetOutcome> mark_met(store::Repo& repo, const std::string& client_id,
                            const std::string& incident_id, const std::string& obligation_id,
                            const std::string& actor, const std::string& note, Timestamp now) {
  auto incident = repo.incident(client_id, incident_id);
  if (!incident) {
    return incident.error();
  }
  if (!incident->has_value()) {
    return make_error(ErrorKind::not_found, "not_found",
                      fmt::format("no incident \"{}\" for client \"{}\"", incident_id, client_id));
  }
  auto rows = store::select_rows<Row>(
      repo.database(),
      "SELECT " + kRowColumns +
          " FROM incident_obligations WHERE client_id = ?1 AND incident_id = ?2 AND "
          "obligation_id = ?3",
      [&](store::Statement& s) {
        s.bind(1, client_id).bind(2, incident_id).bind(3, obligation_id);
      },
      row_of);
  if (!rows) {
    return rows.error();
  }
  if (rows->empty()) {
    auto defined = load(repo, client_id);
    if (!defined) {
      return defined.error();
    }
    bool known = std::any_of(defined->begin(), defined->end(),
                             [&](const Obligation& o) { return o.id == obligation_id; });
    if (!known) {
      return make_error(
          ErrorKind::not_found, "not_found",
          fmt::format("client \"{}\" has no obligation \"{}\"", client_id, obligation_id));
    }
    return make_error(ErrorKind::conflict, "not_started",
                      fmt::format("the clock of \"{}\" has not started for incident \"{}\"",
                                  obligation_id, incident_id));
  }
  MetOutcome out;
  Row r = (*rows)[0];
  if (r.met_at) {
    out.first = false;
  } else {
    auto updated = store::run_sql(
        repo.database(),
        "UPDATE incident_obligations SET met_at = ?4, met_by = ?5, note = ?6 WHERE client_id = "
        "?1 AND incident_id = ?2 AND obligation_id = ?3 AND met_at IS NULL",
        [&](store::Statement& s) {
          s.bind(1, client_id).bind(2, incident_id).bind(3, obligation_id);
          s.bind(4, to_ms(now)).bind(5, actor).bind(6, note);
        });
    if (!updated) {
      return updated.error();
    }
    auto cancelled = store::run_sql(
        repo.database(),
        "UPDATE messages SET status = 'cancelled', last_error = 'cancelled: obligation met' "
        "WHERE client_id = ?1 AND incident_id = ?2 AND (rule_id = ?3 OR rule_id = ?4) AND "
        "status IN ('scheduled', 'retrying')",
        [&](store::Statement& s) {
          s.bind(1, client_id).bind(2, incident_id).bind(3, rule_of(obligation_id, false));
          s.bind(4, rule_of(obligation_id, true));
        });
    if (!cancelled) {
      return cancelled.error();
    }
    out.cancelled = *cancelled;
    r.met_at = now;
    r.met_by = actor;
    r.note = note;
    json data{{"obligation", obligation_id},         {"incident", incident_id},
              {"due_at", format_rfc3339(r.due_at)},  {"state", state_of(r, now)},
              {"cancelled_messages", out.cancelled}, {"note", note}};
    if (auto s = repo.audit("obligation.met", actor, client_id, incident_id,
                            data.dump(-1, ' ', false, json::error_handler_t::replace), now);
        !s) {
      return s.error();
    }
  }
  auto all = incident_obligations(repo, client_id, incident_id, now);
  if (!all) {
    return all.error();
  }
  for (const auto& o : *all) {
    if (o["id"] == obligation_id) {
      out.obligation = o;
    }
  }
  return out;
}

Result<nlohmann::json> incident_obligations(store::Repo& repo, const std::string& client_id,
                                            const std::string& incident_id, Timestamp now) {
  auto rows = store::select_rows<Row>(
      repo.database(),
      "SELECT " + kRowColumns +
          " FROM incident_obligations WHERE client_id = ?1 AND incident_id = ?2 ORDER BY "
          "started_at, obligation_id",
      [&](store::Statement& s) { s.bind(1, client_id).bind(2, incident_id); }, row_of);
  if (!rows) {
    return rows.error();
  }
  json out = json::array();
  for (const auto& r : *rows) {
    auto messages = store::select_rows<json>(
        repo.database(),
        "SELECT id, kind, contact_id, channel, send_at, status, delivered_at FROM messages WHERE "
        "client_id = ?1 AND incident_id = ?2 AND (rule_id = ?3 OR rule_id = ?4) ORDER BY "
        "send_at, seq",
        [&](store::Statement& s) {
          s.bind(1, client_id).bind(2, incident_id).bind(3, rule_of(r.id, false));
          s.bind(4, rule_of(r.id, true));
        },
        [](store::Statement& s) {
          return json{{"message", s.text(0)},
                      {"kind", s.text(1)},
                      {"contact", s.text(2)},
                      {"channel", s.text(3)},
                      {"send_at", format_rfc3339(from_ms(s.integer(4)))},
                      {"status", s.text(5)},
                      {"delivered_at",
                       s.is_null(6) ? json(nullptr) : json(format_rfc3339(from_ms(s.integer(6))))}};
        });
    if (!messages) {
      return messages.error();
    }
    out.push_back(
        json{{"id", r.id},
             {"description", r.description},
             {"started_by", r.event_id},
             {"starts", to_string(r.phase)},
             {"started_at", format_rfc3339(r.started_at)},
             {"within", format_duration(r.within)},
             {"due_at", format_rfc3339(r.due_at)},
             {"roles", r.roles},
             {"state", state_of(r, now)},
             {"met_at", r.met_at ? json(format_rfc3339(*r.met_at)) : json(nullptr)},
             {"met_by", r.met_at ? json(r.met_by) : json(nullptr)},
             {"note", r.note},
             {"overdue_at", r.overdue_at ? json(format_rfc3339(*r.overdue_at)) : json(nullptr)},
             {"messages", *messages}});
  }
  return out;
}

Result<int> mark_overdue(store::Repo& repo, Timestamp now) {
  auto rows = store::select_rows<std::tuple<std::string, std::string, std::string, int64_t>>(
      repo.database(),
      "UPDATE incident_obligations SET overdue_at = ?1 WHERE met_at IS NULL AND overdue_at IS "
      "NULL AND due_at <= ?1 RETURNING client_id, incident_id, obligation_id, due_at",
      [&](store::Statement& s) { s.bind(1, to_ms(now)); },
      [](store::Statement& s) {
        return std::make_tuple(s.text(0), s.text(1), s.text(2), s.integer(3));
      });
  if (!rows) {
    return rows.error();
  }
  for (const auto& [client, incident, id, due] : *rows) {
    json data{{"obligation", id}, {"incident", incident}, {"due_at", format_rfc3339(from_ms(due))}};
    if (auto s = repo.audit("obligation.overdue", "scheduler", client, incident, data.dump(), now);
        !s) {
      return s.error();
    }
  }
  return static_cast<int>(rows->size());
}

}  // namespace herald::obligation
