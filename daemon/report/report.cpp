#include "daemon/report/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "daemon/drill/drill.hpp"
#include "daemon/obligation/obligation.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/store/query.hpp"

namespace herald::report {
namespace {

using nlohmann::json;
using render::escape_html;
using store::from_ms;
using store::to_ms;

json time_or_null(const std::optional<Timestamp>& t) {
  return t ? json(format_rfc3339(*t)) : json(nullptr);
}

json opt_ms(const std::optional<int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

std::optional<int64_t> bind_time(const std::optional<Timestamp>& t) {
  return t ? std::optional<int64_t>(to_ms(*t)) : std::nullopt;
}

// What was done about a message that did not go through at the first attempt.
std::string action_of(const Message& m, const std::string& fallback_id,
                      const std::string& fallback_channel) {
  switch (m.status) {
    case MessageStatus::delivered:
      return m.attempts > 1 ? fmt::format("retried: delivered at attempt {}", m.attempts)
                            : "delivered";
    case MessageStatus::failed:
      if (!fallback_id.empty()) {
        return fmt::format("failed for good: sent again by {} ({})", fallback_channel, fallback_id);
      }
      return m.contact_id.empty()
                 ? "failed for good: rooms and webhooks have no other channel"
                 : "failed for good: every channel of this recipient was already used for "
                   "this update";
    case MessageStatus::retrying:
      return "retrying";
    case MessageStatus::cancelled:
      return "cancelled";
    default:
      return std::string(to_string(m.status));
  }
}

// Audit records about this incident: those whose subject is the incident or one of its
// messages, each checked against its own hash and the hash of the record before it.
Result<json> audit_section(store::Repo& repo, const std::string& client_id,
                           const std::string& incident_id) {
  auto chain = repo.verify_audit();
  if (!chain) {
    return chain.error();
  }
  auto records = store::select_rows<store::AuditRecord>(
      repo.database(),
      "SELECT seq, at, kind, actor, client_id, subject, data, prev_hash, hash FROM audit WHERE "
      "client_id = ?1 AND (subject = ?2 OR subject IN (SELECT id FROM messages WHERE client_id "
      "= ?1 AND incident_id = ?2)) ORDER BY seq",
      [&](store::Statement& s) { s.bind(1, client_id).bind(2, incident_id); },
      [](store::Statement& s) {
        return store::AuditRecord{s.integer(0), from_ms(s.integer(1)),
                                  s.text(2),    s.text(3),
                                  s.text(4),    s.text(5),
                                  s.text(6),    s.text(7),
                                  s.text(8)};
      });
  if (!records) {
    return records.error();
  }
  json items = json::array();
  int64_t verified = 0;
  for (const auto& r : *records) {
    bool own = store::audit_hash(r) == r.hash;
    auto prev = store::select_rows<std::string>(
        repo.database(), "SELECT hash FROM audit WHERE seq = ?1",
        [&](store::Statement& s) { s.bind(1, r.seq - 1); },
        [](store::Statement& s) { return s.text(0); });
    if (!prev) {
      return prev.error();
    }
    // The first record links to zeros; a record whose predecessor is gone (retention) can
    // only be checked against its own hash.
    bool linked = prev->empty() ? (r.seq != 1 || r.prev_hash == std::string(64, '0'))
                                : (*prev)[0] == r.prev_hash;
    bool ok = own && linked;
    verified += ok ? 1 : 0;
    items.push_back(json{{"seq", r.seq},
                         {"at", format_rfc3339(r.at)},
                         {"kind", r.kind},
                         {"actor", r.actor},
                         {"subject", r.subject},
                         {"hash", r.hash},
                         {"verified", ok}});
  }
  json out{{"chain_ok", chain->ok},
           {"chain_records", chain->records},
           {"first_bad", chain->first_bad ? json(*chain->first_bad) : json(nullptr)},
           {"records", records->size()},
           {"verified", verified},
           {"ok", chain->ok && verified == static_cast<int64_t>(records->size())},
           {"items", items}};
  return out;
}

}  // namespace

std::optional<int64_t> percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) {
    return std::nullopt;
  }
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// ---- incident report -----------------------------------------------------------------------

Result<nlohmann::json> incident_report(store::Repo& repo, const std::string& client_id,
                                       const std::string& incident_id, Timestamp now) {
  auto incident = repo.incident(client_id, incident_id);
  if (!incident) {
    return incident.error();
  }
  if (!incident->has_value()) {
    return make_error(ErrorKind::not_found, "not_found",
                      fmt::format("no incident \"{}\" for client \"{}\"", incident_id, client_id));
  }
  const Incident& i = **incident;
  auto client = repo.client(client_id);
  auto events = repo.incident_events(client_id, incident_id);
  auto contacts = repo.contacts(client_id);
  auto endpoints = repo.endpoints(client_id);
  auto acks = repo.acks(client_id, incident_id);
  auto escalations = repo.escalations(client_id, incident_id);
  if (!client || !events || !contacts || !endpoints || !acks || !escalations) {
    return make_error(ErrorKind::unavailable, "storage_unavailable",
                      "cannot read the incident's records right now");
  }
  store::MessageFilter f;
  f.client_id = client_id;
  f.incident_id = incident_id;
  f.limit = 100'000;
  auto page = repo.messages(f);
  if (!page) {
    return page.error();
  }
  const auto& messages = page->items;

  json phases = json::array();
  for (const auto& e : *events) {
    phases.push_back(json{
        {"event_id", e.event.event_id},
        {"phase", to_string(e.event.phase)},
        {"previous_phase", e.previous_phase ? json(to_string(*e.previous_phase)) : json(nullptr)},
        {"severity", to_string(e.event.severity)},
        {"occurred_at", format_rfc3339(e.event.occurred_at)},
        {"received_at", format_rfc3339(e.event.received_at)},
        {"summary", e.event.summary},
        {"source", e.event.source},
        {"applied", e.applied},
        {"messages", e.messages}});
  }

  std::map<std::string, const Message*> fallback_for;  // failed id → replacement
  for (const auto& m : messages) {
    if (!m.fallback_of.empty()) {
      fallback_for[m.fallback_of] = &m;
    }
  }
  std::map<std::string, Timestamp> acked;
  for (const auto& a : *acks) {
    acked[a.message_id] = a.at;
  }
  auto contact_name = [&](const std::string& id) -> json {
    for (const auto& c : *contacts) {
      if (c.id == id) {
        return c.name;
      }
    }
    return nullptr;
  };

  json list = json::array();
  json failures = json::array();
  int delivered = 0, failed = 0, cancelled = 0, in_progress = 0;
  std::set<std::string> people, people_reached, people_acked;
  for (const auto& m : messages) {
    auto content = repo.content(m.id);
    auto attempts = repo.attempts(m.id);
    if (!content || !attempts) {
      return !content ? content.error() : attempts.error();
    }
    json attempt_list = json::array();
    bool any_failed = false;
    for (const auto& a : *attempts) {
      any_failed = any_failed || a.outcome != AttemptOutcome::delivered;
      attempt_list.push_back(
          json{{"number", a.number},
               {"started_at", format_rfc3339(a.started_at)},
               {"duration_ms", a.duration.count()},
               {"outcome", to_string(a.outcome)},
               {"status_code", a.status_code == 0 ? json(nullptr) : json(a.status_code)},
               {"error", a.error}});
    }
    const Message* fb = fallback_for.count(m.id) ? fallback_for[m.id] : nullptr;
    std::optional<Timestamp> ack_at;
    if (auto it = acked.find(m.id); it != acked.end()) {
      ack_at = it->second;
    }
    bool person = !m.contact_id.empty();
    if (person) {
      people.insert(m.contact_id);
      if (m.status == MessageStatus::delivered) {
        people_reached.insert(m.contact_id);
      }
      if (ack_at) {
        people_acked.insert(m.contact_id);
      }
    }
    switch (m.status) {
      case MessageStatus::delivered:
        ++delivered;
        break;
      case MessageStatus::failed:
        ++failed;
        break;
      case MessageStatus::cancelled:
        ++cancelled;
        break;
      default:
        ++in_progress;
    }
    std::string action =
        action_of(m, fb ? fb->id : std::string(), fb ? fb->channel : std::string());
    json item{
        {"id", m.id},
        {"phase", to_string(m.phase)},
        {"kind", m.kind},
        {"rule", m.rule_id},
        {"contact", person ? json(m.contact_id) : json(nullptr)},
        {"name", person ? contact_name(m.contact_id) : json(nullptr)},
        {"role", m.role.empty() ? json(nullptr) : json(m.role)},
        {"endpoint", person ? json(nullptr) : json(m.endpoint_id)},
        {"channel", m.channel},
        {"address", content->has_value() && person ? json((*content)->address) : json(nullptr)},
        {"subject", content->has_value() ? json((*content)->subject) : json(nullptr)},
        {"update_number", m.update_number},
        {"status", to_string(m.status)},
        {"created_at", format_rfc3339(m.created_at)},
        {"send_at", format_rfc3339(m.send_at)},
        {"delivered_at", time_or_null(m.delivered_at)},
        {"acknowledged_at", time_or_null(ack_at)},
        {"attempts", m.attempts},
        {"last_error", m.last_error},
        {"fallback_of", m.fallback_of.empty() ? json(nullptr) : json(m.fallback_of)},
        {"fallback", fb ? json(fb->id) : json(nullptr)},
        {"action", action},
        {"attempt_log", attempt_list}};
    list.push_back(item);
    if (any_failed || m.status == MessageStatus::failed) {
      failures.push_back(json{{"message", m.id},
                              {"channel", m.channel},
                              {"contact", item["contact"]},
                              {"endpoint", item["endpoint"]},
                              {"status", to_string(m.status)},
                              {"errors",
                               [&] {
                                 json errs = json::array();
                                 for (const auto& a : *attempts) {
                                   if (a.outcome != AttemptOutcome::delivered) {
                                     errs.push_back(
                                         fmt::format("attempt {}: {}", a.number, a.error));
                                   }
                                 }
                                 return errs;
                               }()},
                              {"attempts", m.attempts},
                              {"fallback", item["fallback"]},
                              {"action", action}});
    }
  }

  json esc = json::array();
  int fired = 0;
  for (const auto& e : *escalations) {
    fired += e.status == store::EscalationStatus::fired ? 1 : 0;
    esc.push_back(json{{"id", e.id},
                       {"phase", to_string(e.phase)},
                       {"rule", e.rule_id},
                       {"due_at", format_rfc3339(e.due_at)},
                       {"to_roles", e.to_roles},
                       {"status", store::to_string(e.status)},
                       {"resolved_at", time_or_null(e.resolved_at)},
                       {"messages", e.messages}});
  }
  json ack_list = json::array();
  for (const auto& a : *acks) {
    ack_list.push_back(json{{"at", format_rfc3339(a.at)},
                            {"message", a.message_id},
                            {"contact", a.contact_id},
                            {"name", contact_name(a.contact_id)},
                            {"phase", to_string(a.phase)},
                            {"rule", a.rule_id}});
  }
  auto obligations = obligation::incident_obligations(repo, client_id, incident_id, now);
  if (!obligations) {
    return obligations.error();
  }
  auto audit = audit_section(repo, client_id, incident_id);
  if (!audit) {
    return audit.error();
  }
  json summary{{"phase_changes", events->size()},
               {"messages", messages.size()},
               {"delivered", delivered},
               {"failed", failed},
               {"cancelled", cancelled},
               {"in_progress", in_progress},
               {"people", people.size()},
               {"people_reached", people_reached.size()},
               {"people_acknowledged", people_acked.size()},
               {"escalations", escalations->size()},
               {"escalations_fired", fired},
               {"problems", failures.size()}};
  return json{{"client",
               {{"id", client_id},
                {"name", client->has_value() ? json((*client)->name) : json(client_id)}}},
              {"incident",
               {{"id", i.id},
                {"title", i.title},
                {"severity", to_string(i.severity)},
                {"phase", to_string(i.phase)},
                {"drill", i.drill},
                {"opened_at", format_rfc3339(i.opened_at)},
                {"phase_since", format_rfc3339(i.phase_since)}}},
              {"generated_at", format_rfc3339(now)},
              {"summary", summary},
              {"phases", phases},
              {"messages", list},
              {"problems", failures},
              {"escalations", esc},
              {"acknowledgements", ack_list},
              {"obligations", *obligations},
              {"audit", *audit}};
}

// ---- effectiveness -------------------------------------------------------------------------

Result<nlohmann::json> effectiveness(store::Repo& repo, const Period& p, Timestamp now) {
  auto& db = repo.database();
  auto bind_period = [&](store::Statement& s) {
    s.bind_text_or_null(1, p.client_id);
    s.bind_optional(2, bind_time(p.since));
    s.bind_optional(3, bind_time(p.until));
  };
  // Real (not drill) phase changes of the period and their first delivery, aggregated as
  // they are read: 8 bytes per phase change with a delivery (the percentiles need them all),
  // not a row of each in memory (this runs once a minute over the last 30 days).
  std::map<std::string, std::pair<int, std::vector<int64_t>>, std::less<>> by_phase;
  auto firsts = store::for_each_row(
      db,
      "SELECT e.phase, e.occurred_at, MIN(m.delivered_at) FROM events e JOIN incidents i ON "
      "i.client_id = e.client_id AND i.id = e.incident_id LEFT JOIN messages m ON m.client_id = "
      "e.client_id AND m.incident_id = e.incident_id AND m.event_id = e.event_id AND m.kind = "
      "'notify' WHERE e.applied = 1 AND e.drill = 0 AND i.drill = 0 AND (?1 IS NULL OR "
      "e.client_id = ?1) AND (?2 IS NULL OR e.occurred_at >= ?2) AND (?3 IS NULL OR "
      "e.occurred_at < ?3) GROUP BY e.client_id, e.event_id",
      bind_period, [&by_phase](store::Statement& s) {
        std::string phase = s.text(0);
        auto it = by_phase.find(phase);
        if (it == by_phase.end()) {
          it = by_phase.emplace(std::move(phase), std::pair<int, std::vector<int64_t>>{}).first;
        }
        auto& [count, values] = it->second;
        ++count;
        if (auto first = s.optional_integer(2)) {
          values.push_back(std::max<int64_t>(0, *first - s.integer(1)));
        }
      });
  if (!firsts) {
    return firsts.error();
  }
  json phases = json::array();
  for (Phase ph : kAllPhases) {
    auto it = by_phase.find(std::string(to_string(ph)));
    if (it == by_phase.end()) {
      continue;
    }
    auto& values = it->second.second;
    std::sort(values.begin(), values.end());
    phases.push_back(json{{"phase", to_string(ph)},
                          {"phase_changes", it->second.first},
                          {"with_delivery", values.size()},
                          {"first_delivery_p50_ms", opt_ms(percentile(values, 0.5))},
                          {"first_delivery_p90_ms", opt_ms(percentile(values, 0.9))},
                          {"first_delivery_max_ms", opt_ms(percentile(values, 1.0))}});
  }

  // Per channel: what became of the messages of the period.
  struct ChannelRow {
    std::string channel, status;
    int64_t count, attempts;
  };
  auto channel_rows = store::select_rows<ChannelRow>(
      db,
      "SELECT m.channel, m.status, COUNT(*), SUM(m.attempts) FROM messages m JOIN incidents i ON "
      "i.client_id = m.client_id AND i.id = m.incident_id WHERE i.drill = 0 AND (?1 IS NULL OR "
      "m.client_id = ?1) AND (?2 IS NULL OR m.created_at >= ?2) AND (?3 IS NULL OR m.created_at "
      "< ?3) GROUP BY m.channel, m.status ORDER BY m.channel",
      bind_period, [](store::Statement& s) {
        return ChannelRow{s.text(0), s.text(1), s.integer(2), s.integer(3)};
      });
  if (!channel_rows) {
    return channel_rows.error();
  }
  struct ChannelTotals {
    int64_t messages = 0, delivered = 0, failed = 0, cancelled = 0, pending = 0, attempts = 0;
  };
  std::map<std::string, ChannelTotals> channels;
  for (const auto& r : *channel_rows) {
    auto& t = channels[r.channel];
    t.messages += r.count;
    if (r.status == "delivered") {
      t.delivered += r.count;
      t.attempts += r.attempts;
    } else if (r.status == "failed") {
      t.failed += r.count;
      t.attempts += r.attempts;
    } else if (r.status == "cancelled") {
      t.cancelled += r.count;
    } else {
      t.pending += r.count;
    }
  }
  json channel_list = json::array();
  for (const auto& [name, t] : channels) {
    int64_t settled = t.delivered + t.failed;
    channel_list.push_back(
        json{{"channel", name},
             {"messages", t.messages},
             {"delivered", t.delivered},
             {"failed", t.failed},
             {"cancelled", t.cancelled},
             {"in_progress", t.pending},
             {"success_rate",
              settled ? json(static_cast<double>(t.delivered) / settled) : json(nullptr)},
             {"attempts_per_message",
              settled ? json(static_cast<double>(t.attempts) / settled) : json(nullptr)}});
  }

  // Time from delivery to acknowledgement.
  auto ack_rows = store::select_rows<int64_t>(
      db,
      "SELECT a.at - COALESCE(m.delivered_at, m.send_at) FROM acks a JOIN messages m ON m.id = "
      "a.message_id JOIN incidents i ON i.client_id = m.client_id AND i.id = m.incident_id WHERE "
      "i.drill = 0 AND (?1 IS NULL OR m.client_id = ?1) AND (?2 IS NULL OR m.created_at >= ?2) "
      "AND (?3 IS NULL OR m.created_at < ?3)",
      bind_period, [](store::Statement& s) { return std::max<int64_t>(0, s.integer(0)); });
  if (!ack_rows) {
    return ack_rows.error();
  }
  std::sort(ack_rows->begin(), ack_rows->end());

  auto esc_rows = store::select_rows<std::pair<std::string, int64_t>>(
      db,
      "SELECT e.status, COUNT(*) FROM escalations e JOIN incidents i ON i.client_id = e.client_id "
      "AND i.id = e.incident_id WHERE i.drill = 0 AND (?1 IS NULL OR e.client_id = ?1) AND (?2 "
      "IS NULL OR e.due_at >= ?2) AND (?3 IS NULL OR e.due_at < ?3) GROUP BY e.status",
      bind_period, [](store::Statement& s) { return std::make_pair(s.text(0), s.integer(1)); });
  if (!esc_rows) {
    return esc_rows.error();
  }
  json escalations{{"pending", 0}, {"fired", 0}, {"acknowledged", 0}, {"cancelled", 0}};
  for (const auto& [status, n] : *esc_rows) {
    escalations[status] = n;
  }

  auto ob_rows = store::select_rows<std::pair<std::optional<int64_t>, int64_t>>(
      db,
      "SELECT met_at, due_at FROM incident_obligations WHERE (?1 IS NULL OR client_id = ?1) AND "
      "(?2 IS NULL OR started_at >= ?2) AND (?3 IS NULL OR started_at < ?3)",
      bind_period,
      [](store::Statement& s) { return std::make_pair(s.optional_integer(0), s.integer(1)); });
  if (!ob_rows) {
    return ob_rows.error();
  }
  json obligations{
      {"started", ob_rows->size()}, {"met", 0}, {"met_late", 0}, {"overdue", 0}, {"pending", 0}};
  for (const auto& [met, due] : *ob_rows) {
    std::string state =
        met ? (*met <= due ? "met" : "met_late") : (to_ms(now) >= due ? "overdue" : "pending");
    obligations[state] = obligations[state].get<int64_t>() + 1;
  }

  auto drills = drill::list_drills(repo, p.client_id, p.since, p.until);
  if (!drills) {
    return drills.error();
  }
  json drill_list = json::array();
  json drill_results{{"passed", 0}, {"gaps", 0}, {"pending", 0}};
  for (const auto& d : *drills) {
    auto s = drill::drill_summary(repo, d);
    if (!s) {
      return s.error();
    }
    std::string result = (*s)["result"].get<std::string>();
    drill_results[result] = drill_results[result].get<int64_t>() + 1;
    drill_list.push_back(*s);
  }

  auto incidents = store::select_rows<int64_t>(
      db,
      "SELECT COUNT(DISTINCT e.client_id || ' ' || e.incident_id) FROM events e JOIN incidents i "
      "ON i.client_id = e.client_id AND i.id = e.incident_id WHERE i.drill = 0 AND (?1 IS NULL "
      "OR e.client_id = ?1) AND (?2 IS NULL OR e.occurred_at >= ?2) AND (?3 IS NULL OR "
      "e.occurred_at < ?3)",
      bind_period, [](store::Statement& s) { return s.integer(0); });
  if (!incidents) {
    return incidents.error();
  }

  return json{{"client", p.client_id.empty() ? json(nullptr) : json(p.client_id)},
              {"since", time_or_null(p.since)},
              {"until", time_or_null(p.until)},
              {"generated_at", format_rfc3339(now)},
              {"incidents", incidents->empty() ? 0 : (*incidents)[0]},
              {"phases", phases},
              {"channels", channel_list},
              {"acknowledgements",
               {{"count", ack_rows->size()},
                {"p50_ms", opt_ms(percentile(*ack_rows, 0.5))},
                {"p90_ms", opt_ms(percentile(*ack_rows, 0.9))}}},
              {"escalations", escalations},
              {"obligations", obligations},
              {"drills",
               {{"count", drill_list.size()}, {"results", drill_results}, {"items", drill_list}}}};
}

void publish_metrics(Metrics& m, const nlohmann::json& e) {
  m.reset("herald_report_first_delivery_seconds");
  for (const auto& ph : e.value("phases", json::array())) {
    for (const auto& [key, q] :
         std::vector<std::pair<const char*, const char*>>{{"first_delivery_p50_ms", "0.5"},
                                                          {"first_delivery_p90_ms", "0.9"},
                                                          {"first_delivery_max_ms", "1"}}) {
      if (ph[key].is_number()) {
        m.set("herald_report_first_delivery_seconds",
              fmt::format("phase=\"{}\",quantile=\"{}\"",
                          Metrics::label(ph["phase"].get<std::string>()), q),
              ph[key].get<double>() / 1000.0);
      }
    }
  }
  m.reset("herald_report_delivery_success_ratio");
  m.reset("herald_report_attempts_per_message");
  for (const auto& ch : e.value("channels", json::array())) {
    std::string label =
        fmt::format("channel=\"{}\"", Metrics::label(ch["channel"].get<std::string>()));
    if (ch["success_rate"].is_number()) {
      m.set("herald_report_delivery_success_ratio", label, ch["success_rate"].get<double>());
    }
    if (ch["attempts_per_message"].is_number()) {
      m.set("herald_report_attempts_per_message", label, ch["attempts_per_message"].get<double>());
    }
  }
  m.reset("herald_report_ack_seconds");
  const json& acks = e["acknowledgements"];
  for (const auto& [key, q] :
       std::vector<std::pair<const char*, const char*>>{{"p50_ms", "0.5"}, {"p90_ms", "0.9"}}) {
    if (acks[key].is_number()) {
      m.set("herald_report_ack_seconds", fmt::format("quantile=\"{}\"", q),
            acks[key].get<double>() / 1000.0);
    }
  }
  m.reset("herald_report_drills");
  for (const auto& [result, n] : e["drills"]["results"].items()) {
    m.set("herald_report_drills", fmt::format("result=\"{}\"", Metrics::label(result)),
          n.get<double>());
  }
}

// ---- HTML ----------------------------------------------------------------------------------

namespace {

std::string text_of(const json& v) {
  if (v.is_null()) {
    return "—";
  }
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "yes" : "no";
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      out += (out.empty() ? "" : ", ") + text_of(item);
    }
    return out.empty() ? "—" : out;
  }
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Escaped text of a JSON value.
std::string h(const json& v) {
  return escape_html(text_of(v));
}

std::string human_ms(const json& v) {
  if (!v.is_number()) {
    return "—";
  }
  double ms = v.get<double>();
  if (ms < 1000) {
    return fmt::format("{:.0f} ms", ms);
  }
  if (ms < 60'000) {
    return fmt::format("{:.1f} s", ms / 1000);
  }
  if (ms < 3'600'000) {
    return fmt::format("{:.1f} min", ms / 60'000);
  }
  return fmt::format("{:.1f} h", ms / 3'600'000);
}

std::string percent(const json& v) {
  return v.is_number() ? fmt::format("{:.1f} %", v.get<double>() * 100) : "—";
}

constexpr std::string_view kStyle = R"(
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2933;margin:2em auto;max-width:1100px;padding:0 1em;font-size:14px;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:2px solid #d9e2ec;padding-bottom:.2em}
.meta{color:#52606d}.drill{background:#f7c948;padding:.5em 1em;font-weight:bold;text-align:center}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d9e2ec;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f4f8}.ok{color:#0b6e4f;font-weight:bold}.bad{color:#b42318;font-weight:bold}
.figures td:first-child{width:40%}.small{font-size:12px;color:#52606d}
@media print{body{margin:0;max-width:none;font-size:11px}h2{page-break-after:avoid}tr{page-break-inside:avoid}}
)";

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
         escape_html(title) + "</title><style>" + std::string(kStyle) + "</style></head><body>\n" +
         body + "</body></html>\n";
}

std::string row(std::initializer_list<std::string> cells, bool header = false) {
  std::string out = "<tr>";
  for (const auto& c : cells) {
    out += header ? "<th>" + c + "</th>" : "<td>" + c + "</td>";
  }
  return out + "</tr>\n";
}

std::string status_cell(const json& status) {
  std::string s = text_of(status);
  const char* cls =
      s == "delivered" || s == "met" || s == "passed" || s == "acknowledged"              ? "ok"
      : s == "failed" || s == "overdue" || s == "met_late" || s == "gaps" || s == "fired" ? "bad"
                                                                                          : "";
  return fmt::format("<span class=\"{}\">{}</span>", cls, escape_html(s));
}

}  // namespace

std::string incident_report_html(const nlohmann::json& r) {
  const json& inc = r["incident"];
  const json& client = r["client"];
  const json& s = r["summary"];
  std::string b;
  if (inc["drill"].get<bool>()) {
    b += "<div class=\"drill\">DRILL — this was an exercise, not a real incident.</div>\n";
  }
  b += "<h1>Incident communications report: " + h(inc["id"]) + "</h1>\n";
  b += "<p class=\"meta\">" + h(client["name"]) + " (" + h(client["id"]) + ") · " +
       h(inc["title"]) + " · severity " + h(inc["severity"]) + " · now in phase " +
       h(inc["phase"]) + "<br>Opened " + h(inc["opened_at"]) + " · report generated " +
       h(r["generated_at"]) + "</p>\n";

  b += "<h2>Summary</h2>\n<table class=\"figures\">\n";
  b += row({"Phase changes", h(s["phase_changes"])});
  b += row({"Messages", h(s["messages"]) + " (" + h(s["delivered"]) + " delivered, " +
                            h(s["failed"]) + " failed, " + h(s["cancelled"]) + " cancelled, " +
                            h(s["in_progress"]) + " in progress)"});
  b += row({"People told", h(s["people_reached"]) + " of " + h(s["people"]) + " reached, " +
                               h(s["people_acknowledged"]) + " acknowledged"});
  b += row({"Escalations", h(s["escalations"]) + " (" + h(s["escalations_fired"]) + " fired)"});
  b += row({"Delivery problems", h(s["problems"])});
  b += "</table>\n";

  b += "<h2>Phases</h2>\n<table>\n" +
       row({"Occurred", "Phase", "From", "Severity", "Summary", "Messages", "Event"}, true);
  for (const auto& p : r["phases"]) {
    b += row({h(p["occurred_at"]),
              h(p["phase"]) + (p["applied"].get<bool>() ? "" : " (late: not applied)"),
              h(p["previous_phase"]), h(p["severity"]), h(p["summary"]), h(p["messages"]),
              "<span class=\"small\">" + h(p["event_id"]) + "</span>"});
  }
  b += "</table>\n";

  b += "<h2>Who was told what, and when</h2>\n<table>\n" +
       row({"Sent", "Recipient", "Channel", "Phase · rule", "Subject", "Status", "Delivered",
            "Acknowledged"},
           true);
  for (const auto& m : r["messages"]) {
    std::string who = m["contact"].is_null()
                          ? "room " + h(m["endpoint"])
                          : h(m["name"]) + " <span class=\"small\">(" + h(m["contact"]) +
                                (m["role"].is_null() ? "" : ", " + h(m["role"])) + ")</span>";
    std::string kind = m["kind"] == "notify" ? "" : " · " + h(m["kind"]);
    b += row({h(m["send_at"]), who, h(m["channel"]),
              h(m["phase"]) + " · " + h(m["rule"]) + kind +
                  (m["update_number"].get<int>() > 1 ? " · update " + h(m["update_number"]) : ""),
              h(m["subject"]), status_cell(m["status"]), h(m["delivered_at"]),
              h(m["acknowledged_at"])});
  }
  b += "</table>\n";

  b += "<h2>What failed and what was done</h2>\n";
  if (r["problems"].empty()) {
    b += "<p>Every message went through at its first attempt.</p>\n";
  } else {
    b += "<table>\n" + row({"Message", "Recipient", "Channel", "Errors", "Outcome"}, true);
    for (const auto& f : r["problems"]) {
      std::string errors;
      for (const auto& e : f["errors"]) {
        errors += (errors.empty() ? "" : "<br>") + h(e);
      }
      b += row({"<span class=\"small\">" + h(f["message"]) + "</span>",
                h(f["contact"].is_null() ? f["endpoint"] : f["contact"]), h(f["channel"]),
                errors.empty() ? "—" : errors, h(f["action"])});
    }
    b += "</table>\n";
  }

  b += "<h2>Escalations</h2>\n";
  if (r["escalations"].empty()) {
    b += "<p>No rule of this incident had an escalation.</p>\n";
  } else {
    b += "<table>\n" +
         row({"Due", "Phase · rule", "To roles", "Outcome", "Resolved", "Messages"}, true);
    for (const auto& e : r["escalations"]) {
      b += row({h(e["due_at"]), h(e["phase"]) + " · " + h(e["rule"]), h(e["to_roles"]),
                status_cell(e["status"]), h(e["resolved_at"]), h(e["messages"])});
    }
    b += "</table>\n";
  }

  b += "<h2>Acknowledgements</h2>\n";
  if (r["acknowledgements"].empty()) {
    b += "<p>Nobody acknowledged a message of this incident.</p>\n";
  } else {
    b += "<table>\n" + row({"At", "Who", "Phase · rule", "Message"}, true);
    for (const auto& a : r["acknowledgements"]) {
      b += row({h(a["at"]), h(a["name"]) + " (" + h(a["contact"]) + ")",
                h(a["phase"]) + " · " + h(a["rule"]),
                "<span class=\"small\">" + h(a["message"]) + "</span>"});
    }
    b += "</table>\n";
  }

  b += "<h2>Notification deadlines</h2>\n";
  if (r["obligations"].empty()) {
    b += "<p>No notification deadline ran for this incident.</p>\n";
  } else {
    b += "<table>\n" +
         row({"Obligation", "Clock started", "Due", "State", "Met", "Reminders sent"}, true);
    for (const auto& o : r["obligations"]) {
      int sent = 0;
      for (const auto& m : o["messages"]) {
        sent += m["status"] == "delivered" ? 1 : 0;
      }
      std::string what = h(o["id"]);
      if (!o["description"].get<std::string>().empty()) {
        what += "<br><span class=\"small\">" + h(o["description"]) + "</span>";
      }
      std::string met = h(o["met_at"]);
      if (!o["met_at"].is_null()) {
        met += " by " + h(o["met_by"]);
        if (!o["note"].get<std::string>().empty()) {
          met += "<br><span class=\"small\">" + h(o["note"]) + "</span>";
        }
      }
      b += row({what, h(o["started_at"]) + " (" + h(o["starts"]) + ")",
                h(o["due_at"]) + " (within " + h(o["within"]) + ")", status_cell(o["state"]), met,
                std::to_string(sent)});
    }
    b += "</table>\n";
  }

  const json& a = r["audit"];
  b += "<h2>Audit trail</h2>\n<p>";
  b += a["ok"].get<bool>() ? "<span class=\"ok\">Verified.</span> "
                           : "<span class=\"bad\">Verification failed.</span> ";
  b += "Herald keeps an append-only audit trail in which each record carries the hash of the "
       "one before it. " +
       h(a["verified"]) + " of the " + h(a["records"]) +
       " records about this incident match their hashes and their place in the chain; the "
       "whole chain of " +
       h(a["chain_records"]) + " records " +
       (a["chain_ok"].get<bool>() ? std::string("verifies")
                                  : "is broken at record " + h(a["first_bad"])) +
       ".</p>\n<table>\n" + row({"Seq", "At", "Kind", "Actor", "Subject", "Hash", "Check"}, true);
  for (const auto& item : a["items"]) {
    b += row({h(item["seq"]), h(item["at"]), h(item["kind"]), h(item["actor"]),
              "<span class=\"small\">" + h(item["subject"]) + "</span>",
              "<span class=\"small\">" +
                  escape_html(item["hash"].get<std::string>().substr(0, 16)) + "…</span>",
              item["verified"].get<bool>() ? "<span class=\"ok\">ok</span>"
                                           : "<span class=\"bad\">mismatch</span>"});
  }
  b += "</table>\n";
  return page("Incident " + text_of(inc["id"]) + " — communications report", b);
}

std::string effectiveness_html(const nlohmann::json& e) {
  std::string b;
  std::string scope = e["client"].is_null() ? "all clients" : "client " + text_of(e["client"]);
  b += "<h1>Incident communication effectiveness</h1>\n<p class=\"meta\">" + escape_html(scope) +
       " · from " + (e["since"].is_null() ? "the beginning" : h(e["since"])) + " to " +
       (e["until"].is_null() ? "now" : h(e["until"])) + " · generated " + h(e["generated_at"]) +
       " · " + h(e["incidents"]) + " incident(s); drills are counted only in their own section" +
       "</p>\n";
  b += "<h2>From phase change to first delivery</h2>\n<table>\n" +
       row({"Phase", "Phase changes", "With a delivery", "p50", "p90", "Slowest"}, true);
  for (const auto& p : e["phases"]) {
    b += row({h(p["phase"]), h(p["phase_changes"]), h(p["with_delivery"]),
              human_ms(p["first_delivery_p50_ms"]), human_ms(p["first_delivery_p90_ms"]),
              human_ms(p["first_delivery_max_ms"])});
  }
  b += "</table>\n<h2>Delivery by channel</h2>\n<table>\n" +
       row({"Channel", "Messages", "Delivered", "Failed", "Success rate", "Attempts per message"},
           true);
  for (const auto& c : e["channels"]) {
    b += row({h(c["channel"]), h(c["messages"]), h(c["delivered"]), h(c["failed"]),
              percent(c["success_rate"]),
              c["attempts_per_message"].is_number()
                  ? fmt::format("{:.2f}", c["attempts_per_message"].get<double>())
                  : "—"});
  }
  const json& a = e["acknowledgements"];
  const json& esc = e["escalations"];
  const json& ob = e["obligations"];
  b += "</table>\n<h2>Acknowledgements, escalations, deadlines</h2>\n<table class=\"figures\">\n";
  b += row({"Acknowledgements", h(a["count"])});
  b += row(
      {"Time to acknowledge (p50 / p90)", human_ms(a["p50_ms"]) + " / " + human_ms(a["p90_ms"])});
  b += row({"Escalations fired", h(esc["fired"])});
  b += row({"Escalations avoided by an acknowledgement", h(esc["acknowledged"])});
  b += row({"Notification deadlines met / late / overdue / open",
            h(ob["met"]) + " / " + h(ob["met_late"]) + " / " + h(ob["overdue"]) + " / " +
                h(ob["pending"])});
  b += "</table>\n<h2>Drills</h2>\n";
  const json& d = e["drills"];
  if (d["items"].empty()) {
    b += "<p>No drill in this period.</p>\n";
  } else {
    b += "<table>\n" + row({"Started", "Client", "Phase", "Severity", "People reached",
                            "Acknowledged", "Rooms reached", "Result"},
                           true);
    for (const auto& x : d["items"]) {
      b += row({h(x["started_at"]), h(x["client"]), h(x["phase"]), h(x["severity"]),
                h(x["contacts_reached"]) + " / " + h(x["contacts"]),
                h(x["contacts_acknowledged"]) + " / " + h(x["contacts"]),
                h(x["endpoints_reached"]) + " / " + h(x["endpoints"]), status_cell(x["result"])});
    }
    b += "</table>\n";
  }
  return page("Herald: communication effectiveness", b);
}

}  // namespace herald::report
