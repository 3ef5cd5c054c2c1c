#include "daemon/drill/drill.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "daemon/core/crypto.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/plan/plan_json.hpp"
#include "daemon/plan/planner.hpp"
#include "daemon/store/query.hpp"

namespace herald::drill {
namespace {

using nlohmann::json;
using store::from_ms;
using store::to_ms;

constexpr int kMinutesPerDay = 24 * 60;
constexpr Millis kMinEvery{3'600'000};           // a drill an hour at most
constexpr Millis kMaxEvery{366LL * 86'400'000};  // at least one a year
constexpr size_t kRecentDrills = 3;              // "not reached in their last drills"

const std::string kDrillColumns =
    "id, client_id, incident_id, event_id, phase, severity, started_at, actor, scheduled";

DrillRecord drill_row(store::Statement& s) {
  DrillRecord d;
  d.id = s.text(0);
  d.client_id = s.text(1);
  d.incident_id = s.text(2);
  d.event_id = s.text(3);
  d.phase = parse_phase(s.text(4)).value_or(Phase::containment);
  d.severity = parse_severity(s.text(5)).value_or(Severity::high);
  d.started_at = from_ms(s.integer(6));
  d.actor = s.text(7);
  d.scheduled = s.integer(8) != 0;
  return d;
}

Error field_error(std::string code, std::string field, std::string message) {
  return make_error(ErrorKind::unprocessable, std::move(code), std::move(message),
                    std::move(field));
}

json time_or_null(const std::optional<Timestamp>& t) {
  return t ? json(format_rfc3339(*t)) : json(nullptr);
}

json millis_or_null(const std::optional<Millis>& d) {
  return d ? json(d->count()) : json(nullptr);
}

// The client's stored plan, with endpoints deleted since it was saved left out (as ingest
// does); an empty plan when there is none.
Result<Plan> load_plan(store::Repo& repo, const std::string& client_id,
                       const std::vector<Endpoint>& endpoints) {
  auto stored = repo.plan(client_id);
  if (!stored) {
    return stored.error();
  }
  Plan plan;
  if (!stored->has_value()) {
    return plan;
  }
  std::set<std::string> ids;
  for (const auto& e : endpoints) {
    ids.insert(e.id);
  }
  auto body = json::parse((*stored)->body, nullptr, false);
  if (body.is_object() && body.contains("rules") && body["rules"].is_array()) {
    for (auto& rule : body["rules"]) {
      if (rule.contains("endpoints") && rule["endpoints"].is_array()) {
        auto& list = rule["endpoints"];
        for (auto it = list.begin(); it != list.end();) {
          it = it->is_string() && ids.count(it->get<std::string>()) ? it + 1 : list.erase(it);
        }
      }
    }
  }
  auto parsed = plan::parse_plan(body, ids);
  if (parsed) {
    plan = std::move(*parsed);
  }
  return plan;
}

std::vector<Message> all_messages(store::Repo& repo, const std::string& client_id,
                                  const std::string& incident_id, Status& status) {
  store::MessageFilter f;
  f.client_id = client_id;
  f.incident_id = incident_id;
  f.limit = 100'000;
  auto page = repo.messages(f);
  if (!page) {
    status = page.error();
    return {};
  }
  return std::move(page->items);
}

std::optional<Millis> since(Timestamp start, const std::optional<Timestamp>& t) {
  if (!t) {
    return std::nullopt;
  }
  return std::max(Millis{0}, std::chrono::duration_cast<Millis>(*t - start));
}

// One (recipient, channel) of a drill: what its messages came to.
struct ChannelOutcome {
  std::vector<std::string> messages;
  std::string status;  // the best: delivered > pending > failed > cancelled
  int attempts = 0;
  std::optional<Timestamp> delivered_at;
  std::optional<Timestamp> acknowledged_at;
  std::string last_error;
};

int status_rank(MessageStatus s) {
  switch (s) {
    case MessageStatus::delivered:
      return 4;
    case MessageStatus::sending:
    case MessageStatus::retrying:
    case MessageStatus::scheduled:
      return 3;
    case MessageStatus::failed:
      return 2;
    case MessageStatus::cancelled:
      return 1;
  }
  return 0;
}

json channel_json(const std::string& channel, const ChannelOutcome& o, Timestamp start) {
  return json{{"channel", channel},
              {"status", o.status},
              {"delivered", o.delivered_at.has_value()},
              {"delivered_at", time_or_null(o.delivered_at)},
              {"time_to_deliver_ms", millis_or_null(since(start, o.delivered_at))},
              {"acknowledged", o.acknowledged_at.has_value()},
              {"acknowledged_at", time_or_null(o.acknowledged_at)},
              {"time_to_acknowledge_ms", millis_or_null(since(start, o.acknowledged_at))},
              {"attempts", o.attempts},
              {"last_error", o.last_error},
              {"messages", o.messages}};
}

const date::time_zone* find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (...) {
    return nullptr;
  }
}

// "09:00" → 540
std::optional<int> parse_clock(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') {
    return std::nullopt;
  }
  for (size_t i : {0, 1, 3, 4}) {
    if (text[i] < '0' || text[i] > '9') {
      return std::nullopt;
    }
  }
  int h = (text[0] - '0') * 10 + (text[1] - '0');
  int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) {
    return std::nullopt;
  }
  return h * 60 + m;
}

std::string format_clock(int minutes) {
  return fmt::format("{:02}:{:02}", minutes / 60, minutes % 60);
}

constexpr std::string_view kDayNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::optional<int> day_index(std::string_view name) {
  for (int i = 0; i < 7; ++i) {
    if (kDayNames[i] == name) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- drills ---------------------------------------------------------------------------------

Result<DrillRecord> start_drill(store::Repo& repo, const std::string& client_id, Phase phase,
                                Severity severity, const std::string& actor, bool scheduled,
                                Timestamp now, int* messages) {
  std::string key = hex_encode(random_bytes(6));
  DrillRecord d;
  d.id = "drl_" + key;
  d.client_id = client_id;
  d.incident_id = "DRILL-" + key;
  d.event_id = "drill-" + key;
  d.phase = phase;
  d.severity = severity;
  d.started_at = now;
  d.actor = actor;
  d.scheduled = scheduled;

  Event e;
  e.event_id = d.event_id;
  e.client_id = client_id;
  e.incident_id = d.incident_id;
  e.title = fmt::format("Communication drill: {} ({})", phase_label(phase), to_string(severity));
  e.severity = severity;
  e.phase = phase;
  e.occurred_at = now;
  e.summary =
      "This is a drill of the incident communication plan. Nothing has happened. Please "
      "confirm receipt as you would in a real incident.";
  e.details_json = json{{"drill", d.id}}.dump();
  e.drill = true;
  e.source = "drill";
  e.token_name = actor;
  auto applied = ingest::apply_event(repo, e, now);
  if (!applied) {
    return applied.error();
  }
  if (messages) {
    *messages = applied->messages;
  }
  auto inserted = store::run_sql(
      repo.database(),
      "INSERT INTO drills (" + kDrillColumns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
      [&](store::Statement& s) {
        s.bind(1, d.id).bind(2, d.client_id).bind(3, d.incident_id).bind(4, d.event_id);
        s.bind(5, to_string(d.phase)).bind(6, to_string(d.severity));
        s.bind(7, to_ms(d.started_at)).bind(8, d.actor).bind(9, d.scheduled);
      });
  if (!inserted) {
    return inserted.error();
  }
  json data{{"drill", d.id},
            {"incident", d.incident_id},
            {"phase", to_string(phase)},
            {"severity", to_string(severity)},
            {"scheduled", scheduled},
            {"messages", applied->messages}};
  if (auto s = repo.audit("drill.started", actor, client_id, d.incident_id, data.dump(), now); !s) {
    return s.error();
  }
  return d;
}

Result<std::optional<DrillRecord>> find_drill(store::Repo& repo, const std::string& id) {
  auto rows = store::select_rows<DrillRecord>(
      repo.database(), "SELECT " + kDrillColumns + " FROM drills WHERE id = ?1",
      [&](store::Statement& s) { s.bind(1, id); }, drill_row);
  if (!rows) {
    return rows.error();
  }
  if (rows->empty()) {
    return std::optional<DrillRecord>{};
  }
  return std::optional<DrillRecord>((*rows)[0]);
}

Result<std::vector<DrillRecord>> list_drills(store::Repo& repo, const std::string& client_id,
                                             std::optional<Timestamp> from,
                                             std::optional<Timestamp> until) {
  return store::select_rows<DrillRecord>(
      repo.database(),
      "SELECT " + kDrillColumns +
          " FROM drills WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR started_at >= ?2) "
          "AND (?3 IS NULL OR started_at < ?3) ORDER BY started_at, id",
      [&](store::Statement& s) {
        s.bind_text_or_null(1, client_id);
        s.bind_optional(2, from ? std::optional<int64_t>(to_ms(*from)) : std::nullopt);
        s.bind_optional(3, until ? std::optional<int64_t>(to_ms(*until)) : std::nullopt);
      },
      drill_row);
}

Result<bool> is_drill_incident(store::Repo& repo, const std::string& client_id,
                               const std::string& incident_id) {
  auto incident = repo.incident(client_id, incident_id);
  if (!incident) {
    return incident.error();
  }
  return incident->has_value() && (*incident)->drill;
}

Result<nlohmann::json> drill_report(store::Repo& repo, const DrillRecord& d, Timestamp now) {
  Status status;
  auto messages = all_messages(repo, d.client_id, d.incident_id, status);
  if (!status) {
    return status.error();
  }
  auto contacts = repo.contacts(d.client_id);
  auto endpoints = repo.endpoints(d.client_id);
  auto acks = repo.acks(d.client_id, d.incident_id);
  if (!contacts || !endpoints || !acks) {
    return !contacts ? contacts.error() : !endpoints ? endpoints.error() : acks.error();
  }
  std::map<std::string, Timestamp> acked;  // message id → when
  for (const auto& a : *acks) {
    acked[a.message_id] = a.at;
  }
  // recipient → channel → outcome, in the order recipients first appear.
  std::map<std::string, std::map<std::string, ChannelOutcome>> people, rooms;
  std::vector<std::string> people_order, room_order;
  int delivered = 0, failed = 0, in_progress = 0, cancelled = 0;
  for (const auto& m : messages) {
    bool person = !m.contact_id.empty();
    auto& group = person ? people : rooms;
    auto& order = person ? people_order : room_order;
    const std::string& who = person ? m.contact_id : m.endpoint_id;
    if (!group.count(who)) {
      order.push_back(who);
    }
    auto& o = group[who][m.channel];
    o.messages.push_back(m.id);
    o.attempts += m.attempts;
    if (o.status.empty() || status_rank(m.status) > status_rank(*parse_message_status(o.status))) {
      o.status = std::string(to_string(m.status));
    }
    if (m.delivered_at && (!o.delivered_at || *m.delivered_at < *o.delivered_at)) {
      o.delivered_at = m.delivered_at;
    }
    if (auto it = acked.find(m.id); it != acked.end()) {
      if (!o.acknowledged_at || it->second < *o.acknowledged_at) {
        o.acknowledged_at = it->second;
      }
    }
    if (!m.last_error.empty()) {
      o.last_error = m.last_error;
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
  }

  json people_json = json::array();
  int reached = 0, acknowledged = 0;
  std::vector<int64_t> deliver_times, ack_times;
  for (const auto& id : people_order) {
    auto contact = std::find_if(contacts->begin(), contacts->end(),
                                [&](const Contact& c) { return c.id == id; });
    json channels = json::array();
    std::optional<Timestamp> first_delivery, first_ack;
    for (const auto& [channel, o] : people[id]) {
      channels.push_back(channel_json(channel, o, d.started_at));
      if (o.delivered_at && (!first_delivery || *o.delivered_at < *first_delivery)) {
        first_delivery = o.delivered_at;
      }
      if (o.acknowledged_at && (!first_ack || *o.acknowledged_at < *first_ack)) {
        first_ack = o.acknowledged_at;
      }
    }
    reached += first_delivery ? 1 : 0;
    acknowledged += first_ack ? 1 : 0;
    if (first_delivery) {
      deliver_times.push_back(since(d.started_at, first_delivery)->count());
    }
    if (first_ack) {
      ack_times.push_back(since(d.started_at, first_ack)->count());
    }
    people_json.push_back(
        json{{"contact", id},
             {"name", contact != contacts->end() ? json(contact->name) : json(nullptr)},
             {"roles", contact != contacts->end() ? json(contact->roles) : json::array()},
             {"reached", first_delivery.has_value()},
             {"first_delivered_at", time_or_null(first_delivery)},
             {"time_to_deliver_ms", millis_or_null(since(d.started_at, first_delivery))},
             {"acknowledged", first_ack.has_value()},
             {"acknowledged_at", time_or_null(first_ack)},
             {"time_to_acknowledge_ms", millis_or_null(since(d.started_at, first_ack))},
             {"channels", channels}});
  }
  json rooms_json = json::array();
  int rooms_reached = 0;
  for (const auto& id : room_order) {
    auto endpoint = std::find_if(endpoints->begin(), endpoints->end(),
                                 [&](const Endpoint& e) { return e.id == id; });
    json channels = json::array();
    std::optional<Timestamp> first_delivery;
    for (const auto& [channel, o] : rooms[id]) {
      channels.push_back(channel_json(channel, o, d.started_at));
      if (o.delivered_at && (!first_delivery || *o.delivered_at < *first_delivery)) {
        first_delivery = o.delivered_at;
      }
    }
    rooms_reached += first_delivery ? 1 : 0;
    rooms_json.push_back(json{
        {"endpoint", id},
        {"type", endpoint != endpoints->end() ? json(to_string(endpoint->type)) : json(nullptr)},
        {"reached", first_delivery.has_value()},
        {"first_delivered_at", time_or_null(first_delivery)},
        {"time_to_deliver_ms", millis_or_null(since(d.started_at, first_delivery))},
        {"channels", channels}});
  }
  auto gaps = plan_gaps(repo, d.client_id);
  if (!gaps) {
    return gaps.error();
  }
  auto slowest = [](const std::vector<int64_t>& v) {
    return v.empty() ? json(nullptr) : json(*std::max_element(v.begin(), v.end()));
  };
  json summary{{"messages", messages.size()},
               {"delivered", delivered},
               {"failed", failed},
               {"in_progress", in_progress},
               {"cancelled", cancelled},
               {"contacts", people_order.size()},
               {"contacts_reached", reached},
               {"contacts_acknowledged", acknowledged},
               {"endpoints", room_order.size()},
               {"endpoints_reached", rooms_reached},
               {"slowest_delivery_ms", slowest(deliver_times)},
               {"slowest_acknowledgement_ms", slowest(ack_times)}};
  bool finished = in_progress == 0;
  bool passed = finished && failed == 0 && reached == static_cast<int>(people_order.size()) &&
                rooms_reached == static_cast<int>(room_order.size()) && !messages.empty();
  return json{{"drill", d.id},
              {"client", d.client_id},
              {"incident", d.incident_id},
              {"event_id", d.event_id},
              {"phase", to_string(d.phase)},
              {"severity", to_string(d.severity)},
              {"started_at", format_rfc3339(d.started_at)},
              {"started_by", d.actor},
              {"scheduled", d.scheduled},
              {"status", finished ? "finished" : "running"},
              {"result", !finished ? "pending"
                         : passed  ? "passed"
                                   : "gaps"},
              {"as_of", format_rfc3339(now)},
              {"summary", summary},
              {"contacts", people_json},
              {"endpoints", rooms_json},
              {"gaps", *gaps}};
}

Result<nlohmann::json> drill_summary(store::Repo& repo, const DrillRecord& d) {
  auto report = drill_report(repo, d, d.started_at);
  if (!report) {
    return report.error();
  }
  json s = (*report)["summary"];
  return json{{"drill", d.id},
              {"client", d.client_id},
              {"phase", to_string(d.phase)},
              {"severity", to_string(d.severity)},
              {"started_at", format_rfc3339(d.started_at)},
              {"scheduled", d.scheduled},
              {"status", (*report)["status"]},
              {"result", (*report)["result"]},
              {"messages", s["messages"]},
              {"delivered", s["delivered"]},
              {"failed", s["failed"]},
              {"contacts", s["contacts"]},
              {"contacts_reached", s["contacts_reached"]},
              {"contacts_acknowledged", s["contacts_acknowledged"]},
              {"endpoints", s["endpoints"]},
              {"endpoints_reached", s["endpoints_reached"]}};
}

Result<nlohmann::json> plan_gaps(store::Repo& repo, const std::string& client_id) {
  auto contacts = repo.contacts(client_id);
  auto endpoints = repo.endpoints(client_id);
  if (!contacts || !endpoints) {
    return !contacts ? contacts.error() : endpoints.error();
  }
  auto plan = load_plan(repo, client_id, *endpoints);
  if (!plan) {
    return plan.error();
  }
  auto holds = [](const Contact& c, const std::string& role) {
    return std::find(c.roles.begin(), c.roles.end(), role) != c.roles.end();
  };

  // Roles the plan names (rules and escalations) that nobody holds.
  std::map<std::string, std::vector<std::string>> role_rules;
  std::vector<std::string> role_order;
  auto note_role = [&](const std::string& role, const std::string& rule) {
    if (!role_rules.count(role)) {
      role_order.push_back(role);
    }
    auto& rules = role_rules[role];
    if (std::find(rules.begin(), rules.end(), rule) == rules.end()) {
      rules.push_back(rule);
    }
  };
  for (const auto& rule : plan->rules) {
    for (const auto& role : rule.roles) {
      note_role(role, rule.id);
    }
    if (rule.escalate) {
      for (const auto& role : rule.escalate->to_roles) {
        note_role(role, rule.id);
      }
    }
  }
  json roles = json::array();
  for (const auto& role : role_order) {
    bool held = std::any_of(contacts->begin(), contacts->end(),
                            [&](const Contact& c) { return holds(c, role); });
    if (!held) {
      roles.push_back(json{{"role", role}, {"rules", role_rules[role]}});
    }
  }

  // Contacts a rule (or its escalation) reaches who lack an address, or do not allow, a
  // channel the rule uses; `reachable` false when the rule reaches them on nothing at all.
  json addresses = json::array();
  for (const auto& rule : plan->rules) {
    std::vector<std::string> rule_roles = rule.roles;
    if (rule.escalate) {
      rule_roles.insert(rule_roles.end(), rule.escalate->to_roles.begin(),
                        rule.escalate->to_roles.end());
    }
    for (const auto& c : *contacts) {
      if (!std::any_of(rule_roles.begin(), rule_roles.end(),
                       [&](const std::string& r) { return holds(c, r); })) {
        continue;
      }
      auto usable = plan::channels_for(rule, c);
      std::vector<std::string> missing;
      if (!rule.channels.empty()) {
        for (const auto& ch : rule.channels) {
          if (std::find(usable.begin(), usable.end(), ch) == usable.end()) {
            missing.push_back(ch);
          }
        }
      } else if (!c.channels.empty()) {
        for (const auto& ch : c.channels) {
          if (!plan::has_address(c, ch)) {
            missing.push_back(ch);
          }
        }
      }
      if (missing.empty() && !usable.empty()) {
        continue;
      }
      json reasons = json::array();
      for (const auto& ch : missing) {
        bool allowed = c.channels.empty() ||
                       std::find(c.channels.begin(), c.channels.end(), ch) != c.channels.end();
        reasons.push_back(
            !plan::has_address(c, ch)
                ? fmt::format("no {}", ch == kChannelEmail ? "email address" : "phone number")
            : !allowed ? fmt::format("does not accept {}", ch)
                       : std::string("unusable"));
      }
      addresses.push_back(json{{"contact", c.id},
                               {"rule", rule.id},
                               {"channels", missing},
                               {"reasons", reasons},
                               {"reachable", !usable.empty()}});
    }
  }

  // Phases for which no rule tells anyone anything (closed is optional).
  json phases = json::array();
  for (Phase p : kAllPhases) {
    if (p == Phase::closed) {
      continue;
    }
    if (plan::matching_rules(*plan, p, Severity::critical).empty()) {
      phases.push_back(to_string(p));
    }
  }

  // Recipients none of whose messages was delivered in their most recent drills (drills still
  // sending to them do not count yet).
  struct Seen {
    std::string drill;
    Timestamp at;
    bool delivered;
    bool open;
  };
  std::map<std::string, std::vector<Seen>> seen;  // "contact:x" / "endpoint:y" → newest first
  auto rows = store::select_rows<std::pair<std::string, Seen>>(
      repo.database(),
      "SELECT d.id, d.started_at, m.contact_id, m.endpoint_id, "
      "MAX(m.status = 'delivered'), MAX(m.status IN ('scheduled', 'sending', 'retrying')) "
      "FROM drills d JOIN messages m ON m.client_id = d.client_id AND m.incident_id = "
      "d.incident_id WHERE d.client_id = ?1 GROUP BY d.id, m.contact_id, m.endpoint_id "
      "ORDER BY d.started_at DESC, d.id DESC",
      [&](store::Statement& s) { s.bind(1, client_id); },
      [](store::Statement& s) {
        std::string who = s.text(2).empty() ? "endpoint:" + s.text(3) : "contact:" + s.text(2);
        return std::make_pair(
            who, Seen{s.text(0), from_ms(s.integer(1)), s.integer(4) != 0, s.integer(5) != 0});
      });
  if (!rows) {
    return rows.error();
  }
  std::vector<std::string> who_order;
  for (auto& [who, s] : *rows) {
    if (!seen.count(who)) {
      who_order.push_back(who);
    }
    seen[who].push_back(s);
  }
  json unreached = json::array();
  for (const auto& who : who_order) {
    std::vector<std::string> missed;
    size_t considered = 0;
    for (const auto& s : seen[who]) {
      if (s.open) {
        continue;
      }
      if (s.delivered || considered >= kRecentDrills) {
        break;
      }
      ++considered;
      missed.push_back(s.drill);
    }
    if (missed.empty()) {
      continue;
    }
    bool person = who.rfind("contact:", 0) == 0;
    std::string id = who.substr(who.find(':') + 1);
    if (person && std::none_of(contacts->begin(), contacts->end(),
                               [&](const Contact& c) { return c.id == id; })) {
      continue;  // deleted since: nothing left to fix
    }
    json entry{{person ? "contact" : "endpoint", id}, {"drills", missed}};
    unreached.push_back(entry);
  }

  return json{{"roles_without_contacts", roles},
              {"contacts_without_address", addresses},
              {"phases_without_rules", phases},
              {"not_reached_in_recent_drills", unreached}};
}

// ---- scheduled drills -----------------------------------------------------------------------

std::optional<int> parse_days(std::string_view text) {
  if (text == "daily" || text == "all") {
    return 0x7F;
  }
  if (text == "weekdays") {
    return 0x1F;
  }
  int bits = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view part =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    size_t dash = part.find('-');
    auto first = day_index(part.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : day_index(part.substr(dash + 1));
    if (!first || !last) {
      return std::nullopt;
    }
    for (int i = *first;; i = (i + 1) % 7) {
      bits |= 1 << i;
      if (i == *last) {
        break;
      }
    }
    if (comma == std::string_view::npos) {
      break;
    }
    pos = comma + 1;
  }
  return bits == 0 ? std::nullopt : std::optional<int>(bits);
}

std::string format_days(int days) {
  if (days == 0x7F) {
    return "daily";
  }
  std::vector<std::string> parts;
  for (int i = 0; i < 7;) {
    if (!(days & (1 << i))) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < 7 && (days & (1 << (j + 1)))) {
      ++j;
    }
    parts.push_back(j == i       ? std::string(kDayNames[i])
                    : j == i + 1 ? fmt::format("{},{}", kDayNames[i], kDayNames[j])
                                 : fmt::format("{}-{}", kDayNames[i], kDayNames[j]));
    i = j + 1;
  }
  return fmt::format("{}", fmt::join(parts, ","));
}

Timestamp next_slot(const DrillSchedule& s, std::string_view zone_name, Timestamp from) {
  const date::time_zone* zone = find_zone(zone_name);
  if (!zone) {
    zone = find_zone("UTC");
  }
  if (!zone) {
    return from;
  }
  auto local = zone->to_local(from);
  auto day = date::floor<date::days>(local);
  for (int i = 0; i < 9; ++i, day += date::days(1)) {
    // date's weekday: Sunday = 0; ours: Monday = 0.
    int index = (date::weekday(day).c_encoding() + 6) % 7;
    if (!(s.days & (1 << index))) {
      continue;
    }
    auto start = date::floor<Millis>(zone->to_sys(
        date::local_time<std::chrono::minutes>(day) + std::chrono::minutes(s.window_start),
        date::choose::earliest));
    auto end = date::floor<Millis>(zone->to_sys(
        date::local_time<std::chrono::minutes>(day) + std::chrono::minutes(s.window_end),
        date::choose::earliest));
    if (from < start) {
      return start;
    }
    if (from < end) {
      return from;
    }
  }
  return from;
}

Result<DrillSchedule> parse_schedule(const json& body, const Client& client, Timestamp now) {
  if (!body.is_object()) {
    return make_error(ErrorKind::unprocessable, "invalid_schedule",
                      "the drill schedule must be a JSON object");
  }
  static const std::set<std::string> kFields{"every",  "phase", "severity",
                                             "window", "days",  "start"};
  for (const auto& [key, _] : body.items()) {
    if (!kFields.count(key)) {
      return field_error("unknown_field", key,
                         fmt::format("unknown field \"{}\" (one of every, phase, severity, "
                                     "window, days, start)",
                                     key));
    }
  }
  DrillSchedule s;
  s.client_id = client.id;
  auto text = [&](const char* key) -> std::optional<std::string> {
    if (!body.contains(key) || body[key].is_null()) {
      return std::nullopt;
    }
    return body[key].is_string() ? std::optional<std::string>(body[key].get<std::string>())
                                 : std::optional<std::string>("\x01");
  };
  auto every = text("every");
  if (!every) {
    return field_error("missing_field", "every", "every is required, e.g. \"90d\"");
  }
  auto d = parse_duration(*every);
  if (!d || *d < kMinEvery || *d > kMaxEvery) {
    return field_error("invalid_field", "every",
                       "every must be a duration from 1h to 366d, e.g. \"90d\"");
  }
  s.every = *d;
  auto phase = text("phase");
  if (!phase || !parse_phase(*phase)) {
    return field_error("invalid_phase", "phase",
                       "phase must be one of preparation, identification, containment, "
                       "eradication, recovery, lessons_learned, closed");
  }
  s.phase = *parse_phase(*phase);
  auto severity = text("severity");
  if (!severity || !parse_severity(*severity)) {
    return field_error("invalid_severity", "severity",
                       "severity must be one of low, medium, high, critical");
  }
  s.severity = *parse_severity(*severity);
  if (auto window = text("window")) {
    auto dash = window->find('-');
    auto start = dash == std::string::npos ? std::nullopt : parse_clock(window->substr(0, dash));
    auto end = dash == std::string::npos ? std::nullopt : parse_clock(window->substr(dash + 1));
    if (!start || !end || *start >= *end || *start >= kMinutesPerDay) {
      return field_error("invalid_field", "window",
                         "window must be \"HH:MM-HH:MM\" with the start before the end, e.g. "
                         "\"09:00-17:00\" (in the client's time zone)");
    }
    s.window_start = *start;
    s.window_end = *end;
  }
  if (auto days = text("days")) {
    auto bits = parse_days(*days);
    if (!bits) {
      return field_error("invalid_field", "days",
                         "days must be day names or ranges like \"mon-fri\", \"mon,wed,fri\", "
                         "or \"daily\"");
    }
    s.days = *bits;
  }
  Timestamp from = now + s.every;
  if (auto start = text("start")) {
    auto t = parse_rfc3339(*start);
    if (!t) {
      return field_error("invalid_field", "start",
                         "start must be an RFC 3339 time like \"2026-12-07T09:00:00Z\"");
    }
    from = *t;
  }
  s.next_at = next_slot(s, client.timezone, from);
  return s;
}

json schedule_json(const DrillSchedule& s) {
  return json{{"client", s.client_id},
              {"every", format_duration(s.every)},
              {"phase", to_string(s.phase)},
              {"severity", to_string(s.severity)},
              {"window", format_clock(s.window_start) + "-" + format_clock(s.window_end)},
              {"days", format_days(s.days)},
              {"next_at", format_rfc3339(s.next_at)},
              {"last_drill", s.last_drill ? json(*s.last_drill) : json(nullptr)}};
}

Status put_schedule(store::Repo& repo, const DrillSchedule& s, Timestamp now) {
  json body = schedule_json(s);
  body.erase("next_at");
  body.erase("last_drill");
  auto r = store::run_sql(
      repo.database(),
      "INSERT INTO drill_schedules (client_id, body, every_ms, phase, severity, window_start, "
      "window_end, days, next_at, last_drill, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
      "?9, NULL, ?10) ON CONFLICT (client_id) DO UPDATE SET body = ?2, every_ms = ?3, phase = ?4, "
      "severity = ?5, window_start = ?6, window_end = ?7, days = ?8, next_at = ?9, "
      "updated_at = ?10",
      [&](store::Statement& st) {
        st.bind(1, s.client_id).bind(2, body.dump()).bind(3, static_cast<int64_t>(s.every.count()));
        st.bind(4, to_string(s.phase)).bind(5, to_string(s.severity));
        st.bind(6, s.window_start).bind(7, s.window_end).bind(8, s.days);
        st.bind(9, to_ms(s.next_at)).bind(10, to_ms(now));
      });
  if (!r) {
    return r.error();
  }
  return {};
}

namespace {
const std::string kScheduleColumns =
    "client_id, every_ms, phase, severity, window_start, window_end, days, next_at, last_drill";
DrillSchedule schedule_row(store::Statement& st) {
  DrillSchedule s;
  s.client_id = st.text(0);
  s.every = Millis{st.integer(1)};
  s.phase = parse_phase(st.text(2)).value_or(Phase::containment);
  s.severity = parse_severity(st.text(3)).value_or(Severity::high);
  s.window_start = static_cast<int>(st.integer(4));
  s.window_end = static_cast<int>(st.integer(5));
  s.days = static_cast<int>(st.integer(6));
  s.next_at = from_ms(st.integer(7));
  if (!st.is_null(8)) {
    s.last_drill = st.text(8);
  }
  return s;
}
}  // namespace

Result<std::optional<DrillSchedule>> get_schedule(store::Repo& repo, const std::string& client_id) {
  auto rows = store::select_rows<DrillSchedule>(
      repo.database(), "SELECT " + kScheduleColumns + " FROM drill_schedules WHERE client_id = ?1",
      [&](store::Statement& s) { s.bind(1, client_id); }, schedule_row);
  if (!rows) {
    return rows.error();
  }
  return rows->empty() ? std::optional<DrillSchedule>{} : std::optional<DrillSchedule>((*rows)[0]);
}

Result<bool> delete_schedule(store::Repo& repo, const std::string& client_id) {
  auto n = store::run_sql(repo.database(), "DELETE FROM drill_schedules WHERE client_id = ?1",
                          [&](store::Statement& s) { s.bind(1, client_id); });
  if (!n) {
    return n.error();
  }
  return *n > 0;
}

Result<std::vector<DrillRecord>> run_due_schedules(store::Repo& repo, Timestamp now) {
  auto due = store::select_rows<DrillSchedule>(
      repo.database(),
      "SELECT " + kScheduleColumns + " FROM drill_schedules WHERE next_at <= ?1 LIMIT 50",
      [&](store::Statement& s) { s.bind(1, to_ms(now)); }, schedule_row);
  if (!due) {
    return due.error();
  }
  std::vector<DrillRecord> started;
  for (const auto& s : *due) {
    auto client = repo.client(s.client_id);
    if (!client) {
      return client.error();
    }
    std::string zone = client->has_value() ? (*client)->timezone : "UTC";
    std::optional<std::string> last;
    if (client->has_value()) {
      auto d = start_drill(repo, s.client_id, s.phase, s.severity, "schedule", true, now);
      if (!d) {
        return d.error();
      }
      last = d->id;
      started.push_back(*d);
    }
    // The next slot counts from this run: missed slots are not made up one after another.
    Timestamp next = next_slot(s, zone, now + s.every);
    auto r = store::run_sql(
        repo.database(),
        "UPDATE drill_schedules SET next_at = ?2, last_drill = COALESCE(?3, last_drill) "
        "WHERE client_id = ?1",
        [&](store::Statement& st) {
          st.bind(1, s.client_id).bind(2, to_ms(next));
          st.bind_text_or_null(3, last.value_or(""));
        });
    if (!r) {
      return r.error();
    }
  }
  return started;
}

}  // namespace herald::drill
