// Herald's domain: clients, contacts, endpoints, plans, incidents, events and messages.
// Plain typed structs shared by every stage; JSON lives only at the API edge (daemon/api).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/time.hpp"

namespace herald {

// The SANS incident-response phases, in lifecycle order, then `closed`.
enum class Phase {
  preparation,
  identification,
  containment,
  eradication,
  recovery,
  lessons_learned,
  closed,
};
inline constexpr Phase kAllPhases[] = {
    Phase::preparation, Phase::identification,  Phase::containment, Phase::eradication,
    Phase::recovery,    Phase::lessons_learned, Phase::closed};

std::optional<Phase> parse_phase(std::string_view text);
std::string_view to_string(Phase phase);
std::string_view phase_label(Phase phase);  // "Containment", "Lessons learned"
int phase_number(Phase phase);              // preparation = 1 ... lessons_learned = 6, closed = 7

enum class Severity { low, medium, high, critical };

std::optional<Severity> parse_severity(std::string_view text);
std::string_view to_string(Severity severity);

// The channels a message travels on. People are reached by email and SMS; endpoints by chat
// (the endpoint's service decides the payload) or signed webhook.
inline constexpr std::string_view kChannelEmail = "email";
inline constexpr std::string_view kChannelSms = "sms";
inline constexpr std::string_view kChannelChat = "chat";
inline constexpr std::string_view kChannelWebhook = "webhook";
bool is_person_channel(std::string_view channel);  // email, sms

enum class EndpointType { slack, teams, mattermost, discord, googlechat, webhook };
std::optional<EndpointType> parse_endpoint_type(std::string_view text);
std::string_view to_string(EndpointType type);
// "chat" for the chat services, "webhook" for signed webhooks.
std::string_view channel_of(EndpointType type);

struct Client {
  std::string id;
  std::string name;
  std::string timezone = "UTC";
  std::string locale = "en";
};

struct QuietHours {
  int start_minute = 0;  // minutes after local midnight, [0, 1440)
  int end_minute = 0;    // may be before start: the quiet period then crosses midnight
};

struct Contact {
  std::string client_id;
  std::string id;
  std::string name;
  std::vector<std::string> roles;
  std::string email;  // empty when the contact has none
  std::string phone;  // E.164, empty when none
  std::string chat;   // a chat handle, informational
  std::string timezone = "UTC";
  std::optional<QuietHours> quiet_hours;
  std::vector<std::string> channels;  // order of preference and fallback; empty = all
};

struct Endpoint {
  std::string client_id;
  std::string id;
  EndpointType type = EndpointType::webhook;
  std::string url;                   // a secret in itself for chat webhooks: never shown back
  std::vector<std::string> secrets;  // webhook signing secrets ("whsec_..."), newest first
  bool enabled = true;
};

enum class QuietHoursPolicy { respect, ignore };

struct Escalation {
  Millis after{0};
  std::vector<std::string> to_roles;
};

struct Rule {
  std::string id;
  std::vector<Phase> phases;
  Severity min_severity = Severity::low;
  std::vector<std::string> roles;
  std::vector<std::string> endpoints;
  std::vector<std::string> channels;  // for people; empty = every channel the contact allows
  Millis delay{0};
  std::optional<Millis> repeat;
  QuietHoursPolicy quiet_hours = QuietHoursPolicy::respect;
  std::optional<Escalation> escalate;
};

struct Plan {
  std::vector<Rule> rules;
};

struct Incident {
  std::string client_id;
  std::string id;
  std::string title;
  Severity severity = Severity::low;
  Phase phase = Phase::preparation;
  std::optional<Phase> previous_phase;
  bool drill = false;
  Timestamp opened_at{};
  Timestamp phase_since{};  // occurred_at of the event that set `phase`
  Timestamp updated_at{};
};

// What an event may carry, in bytes, whatever its source (POST /v1/events refuses more; the
// Alertmanager adapter shortens a long title or summary).
inline constexpr size_t kMaxEventTitle = 1000;
inline constexpr size_t kMaxEventSummary = 20'000;
inline constexpr size_t kMaxEventDetails = 256 * 1024;

struct Event {
  std::string event_id;
  std::string client_id;
  std::string incident_id;
  std::string title;
  Severity severity = Severity::low;
  Phase phase = Phase::preparation;
  Timestamp occurred_at{};
  std::string summary;
  std::string details_json = "{}";  // the event's `details` object, verbatim JSON
  bool drill = false;
  Timestamp received_at{};
  std::string source;  // "api", "alertmanager", "nats", ...
  std::string token_name;
};

enum class MessageStatus { scheduled, sending, retrying, delivered, failed, cancelled };
std::optional<MessageStatus> parse_message_status(std::string_view text);
std::string_view to_string(MessageStatus status);

// One delivery: (event, rule, contact or endpoint, channel).
struct Message {
  std::string id;  // deterministic; the idempotency key every channel carries
  std::string event_id;
  std::string client_id;
  std::string incident_id;
  Phase phase = Phase::preparation;
  std::string rule_id;
  std::string contact_id;   // empty for endpoints
  std::string endpoint_id;  // empty for people
  std::string role;         // the role that made the contact a recipient
  std::string channel;      // email, sms, chat, webhook
  MessageStatus status = MessageStatus::scheduled;
  int attempts = 0;
  int update_number = 1;
  Timestamp created_at{};
  Timestamp send_at{};
  std::optional<Timestamp> delivered_at;
  std::string last_error;
  std::optional<Millis> repeat;  // a fresh update follows this long after planned_at
  Timestamp planned_at{};        // when due before quiet hours deferred it
  QuietHoursPolicy quiet_hours = QuietHoursPolicy::respect;
  std::string kind = "notify";  // or "escalation"
  std::string fallback_of;      // the failed message this one replaces on another channel
  std::optional<Timestamp> acknowledged_at;
  // When its first attempt was claimed: the retry horizon counts from here. Empty until then.
  std::optional<Timestamp> first_attempt_at;
};

enum class AttemptOutcome { delivered, retryable, permanent };
std::string_view to_string(AttemptOutcome outcome);

struct Attempt {
  std::string message_id;
  int number = 0;
  Timestamp started_at{};
  Millis duration{0};
  AttemptOutcome outcome = AttemptOutcome::delivered;
  int status_code = 0;  // HTTP or SMTP reply code; 0 when none came back
  std::string error;
};

}  // namespace herald
