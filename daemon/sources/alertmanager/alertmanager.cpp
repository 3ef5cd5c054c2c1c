#include "daemon/sources/alertmanager/alertmanager.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "daemon/core/crypto.hpp"

namespace herald::sources {
namespace {

using nlohmann::json;

constexpr size_t kMaxIncidentId = 200;

Error bad(size_t index, const std::string& field, const std::string& problem) {
  return make_error(ErrorKind::unprocessable, "invalid_alert",
                    fmt::format("alerts[{}]: {}", index, problem),
                    fmt::format("alerts[{}].{}", index, field));
}

std::string text(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string()) {
    return obj[key].get<std::string>();
  }
  return {};
}

// Cuts `s` to at most `max` bytes at a character boundary, ending with an ellipsis.
void shorten(std::string& s, size_t max) {
  constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  if (s.size() <= max) {
    return;
  }
  size_t cut = max - kEllipsis.size();
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
    --cut;  // not inside a UTF-8 sequence
  }
  s.resize(cut);
  s += kEllipsis;
}

// The ids POST /v1/events accepts (daemon/ingest): 1 to 200 characters, no control character.
bool valid_id(const std::string& id) {
  return !id.empty() && id.size() <= kMaxIncidentId &&
         std::none_of(id.begin(), id.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// Alertmanager's own severities are free-form; Herald's four are kept, the common
// `critical` and `warning` mapped, anything else is low.
Severity severity_of(const std::string& label) {
  if (auto s = parse_severity(label)) {
    return *s;
  }
  return label == "warning" ? Severity::medium : Severity::low;
}

// groupKey can be long; an incident id must stay within bounds and stable.
std::string incident_of(const std::string& group_key) {
  if (valid_id(group_key)) {
    return group_key;
  }
  return "am-" + sha256_hex(group_key).substr(0, 24);
}

}  // namespace

Result<std::vector<Event>> alertmanager_events(const json& payload,
                                               const std::string& default_client) {
  if (!payload.is_object() || !payload.contains("alerts") || !payload["alerts"].is_array()) {
    return make_error(ErrorKind::unprocessable, "invalid_payload",
                      "not an Alertmanager webhook payload: \"alerts\" must be an array", "alerts");
  }
  if (payload.contains("version") && text(payload, "version") != "4") {
    return make_error(ErrorKind::unprocessable, "unsupported_version",
                      fmt::format("Alertmanager payload version {} is not supported (4 is)",
                                  payload["version"].dump()),
                      "version");
  }
  const std::string group_key = text(payload, "groupKey");
  std::vector<Event> out;
  const auto& alerts = payload["alerts"];
  for (size_t i = 0; i < alerts.size(); ++i) {
    const json& alert = alerts[i];
    if (!alert.is_object()) {
      return bad(i, "", "must be an object");
    }
    const json labels = alert.value("labels", json::object());
    const json annotations = alert.value("annotations", json::object());
    const std::string status = text(alert, "status");
    if (status != "firing" && status != "resolved") {
      return bad(i, "status", "status must be \"firing\" or \"resolved\"");
    }
    Event e;
    e.source = "alertmanager";
    e.client_id = text(labels, "client");
    if (e.client_id.empty()) {
      e.client_id = default_client;
    }
    if (e.client_id.empty()) {
      return bad(i, "labels.client",
                 "no client: give the alert a `client` label or call with ?client=CLIENT");
    }
    if (!valid_id(e.client_id)) {
      return bad(i, "labels.client",
                 "the client must be 1 to 200 characters without control characters");
    }
    e.incident_id = text(labels, "incident");
    if (e.incident_id.empty()) {
      e.incident_id = incident_of(group_key);
    }
    if (e.incident_id.empty()) {
      return bad(i, "labels.incident", "no incident: no `incident` label and no groupKey");
    }
    if (!valid_id(e.incident_id)) {
      return bad(i, "labels.incident",
                 "the incident label must be 1 to 200 characters without control characters");
    }
    const std::string phase = text(labels, "phase");
    if (!phase.empty()) {
      auto p = parse_phase(phase);
      if (!p) {
        return bad(i, "labels.phase", fmt::format("unknown phase \"{}\"", phase));
      }
      e.phase = *p;
    } else {
      e.phase = status == "firing" ? Phase::identification : Phase::recovery;
    }
    e.severity = severity_of(text(labels, "severity"));
    e.title = text(annotations, "summary");
    if (e.title.empty()) {
      e.title = text(labels, "alertname");
    }
    e.summary = text(annotations, "description");
    if (e.summary.empty()) {
      e.summary = text(annotations, "summary");
    }
    // A verbose annotation must not cost the notification: shortened to what an event holds.
    shorten(e.title, kMaxEventTitle);
    shorten(e.summary, kMaxEventSummary);
    const std::string starts_at = text(alert, "startsAt");
    const std::string ends_at = text(alert, "endsAt");
    const std::string& when = status == "resolved" ? ends_at : starts_at;
    if (auto t = parse_rfc3339(when)) {
      e.occurred_at = *t;
    }
    json details{{"labels", labels}, {"annotations", annotations}};
    for (const char* key : {"generatorURL", "fingerprint", "startsAt", "endsAt"}) {
      if (!text(alert, key).empty()) {
        details[key] = text(alert, key);
      }
    }
    e.details_json = details.dump(-1, ' ', false, json::error_handler_t::replace);
    if (e.details_json.size() > kMaxEventDetails) {
      return bad(i, "annotations",
                 fmt::format("the alert's labels and annotations take {} bytes; at most {} fit "
                             "in an event's details",
                             e.details_json.size(), kMaxEventDetails));
    }
    // Alertmanager repeats its notifications: the same alert in the same state maps to the
    // same event id, so repeats are duplicates and create nothing.
    std::string identity = text(alert, "fingerprint");
    if (identity.empty()) {
      identity = labels.dump();
    }
    e.event_id = "am-" + sha256_hex(identity + "\n" + status + "\n" + starts_at).substr(0, 32);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace herald::sources
