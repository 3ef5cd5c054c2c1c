// Repo: every query Herald makes, on one SQLite connection. The Store hands a Repo to readers
// (pooled connections) and to writers (the single writer connection, inside a transaction).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"
#include "daemon/store/sqlite.hpp"

namespace herald::store {

struct StoredPlan {
  std::string body;  // JSON
  int64_t version = 0;
  Timestamp updated_at{};
};

struct StoredEvent {
  Event event;
  std::optional<Phase> previous_phase;
  bool applied = true;
  int messages = 0;
};

// A bus message that could not become an event (schema/007_source_rejections.sql).
struct SourceRejection {
  int64_t id = 0;
  std::string source;   // "nats"
  std::string ref;      // "STREAM:SEQUENCE"
  std::string subject;  // the subject it was published on
  Timestamp received_at{};
  std::string code;
  std::string field;
  std::string message;
  std::string payload;  // cut at kMaxRejectedPayload bytes
  int64_t size = 0;     // the full size
};
inline constexpr size_t kMaxRejectedPayload = 4096;

struct MessageFilter {
  std::string client_id;
  std::string incident_id;
  std::optional<MessageStatus> status;
  std::string channel;
  std::optional<Timestamp> since;  // created_at >= since
  std::optional<Timestamp> until;  // created_at < until
  int limit = 50;
  int64_t after_seq = 0;  // the cursor: items with a larger seq
};

struct MessagePage {
  std::vector<Message> items;
  std::optional<int64_t> next_seq;  // present when more items may follow
};

struct MessageContent {
  std::string address;
  std::string subject;
  std::string body;
  std::string content_hash;
  std::string templates = "[]";         // JSON array: the template (and version) of each part
  std::optional<int64_t> sms_segments;  // SMS only
  bool pruned = false;                  // retention cleared subject and body; the hashes stay
};

// One version of a template stored through the API. Every PUT and DELETE adds a version; a
// DELETE's has no body.
struct TemplateVersion {
  std::string client_id;  // '' for a template that serves every client
  std::string name;
  int64_t version = 0;
  std::optional<std::string> body;
  Timestamp at{};
  std::string actor;
};

struct AuditRecord {
  int64_t seq = 0;
  Timestamp at{};
  std::string kind;
  std::string actor;
  std::string client_id;
  std::string subject;
  std::string data;  // JSON object
  std::string prev_hash;
  std::string hash;
};

// Which audit records to read, in seq order. Empty strings and absent times match everything.
struct AuditFilter {
  int64_t after_seq = 0;             // the cursor: records with a larger seq
  std::optional<int64_t> up_to_seq;  // an export's snapshot: nothing appended after it began
  std::optional<Timestamp> since;    // at >= since
  std::optional<Timestamp> until;    // at < until
  std::string kind;
  std::string client_id;
  std::string actor;
  int limit = 50;
};

struct AuditVerification {
  bool ok = true;
  int64_t records = 0;
  std::optional<int64_t> first_bad;
  std::string reason;
};

struct StatusCount {
  std::string channel;
  std::string status;
  int64_t count = 0;
};

// A due message's place in the queue (send_at, seq) and what the dispatcher's limits key it
// by, read ahead of claiming it.
struct DueCandidate {
  Timestamp send_at{};
  int64_t seq = 0;
  std::string id;
  std::string client_id;
  std::string channel;
  std::string contact_id;
  std::string endpoint_id;
};
// A position in due order: (send_at, seq).
struct DuePosition {
  Timestamp send_at{};
  int64_t seq = 0;
};

// Messages due now and not yet sent (status scheduled or retrying, send_at <= now).
struct DueQueue {
  int64_t scheduled = 0;
  int64_t retrying = 0;
  std::optional<Timestamp> oldest;  // the earliest send_at among them
};

struct AckRecord {
  std::string message_id;
  std::string client_id;
  std::string incident_id;
  Phase phase = Phase::preparation;
  std::string rule_id;
  std::string contact_id;
  Timestamp at{};
  std::string remote;
};

enum class EscalationStatus { pending, fired, acknowledged, cancelled };
std::string_view to_string(EscalationStatus status);

// "If nobody holding the rule's roles acknowledges by due_at, tell to_roles as well."
struct EscalationRecord {
  std::string id;
  std::string client_id;
  std::string incident_id;
  std::string event_id;
  Phase phase = Phase::preparation;
  std::string rule_id;
  Timestamp due_at{};
  std::vector<std::string> to_roles;
  std::vector<std::string> channels;
  QuietHoursPolicy quiet_hours = QuietHoursPolicy::respect;
  EscalationStatus status = EscalationStatus::pending;
  std::optional<Timestamp> resolved_at;
  int messages = 0;
};

// An API token made through POST /v1/tokens: only its SHA-256 is stored.
struct ApiToken {
  std::string name;
  std::string sha256;  // lowercase hex
  std::vector<std::string> scopes;
  Timestamp created_at{};
  std::string created_by;
  std::optional<Timestamp> expires_at;
};

// The hash of an audit record given the previous record's hash.
std::string audit_hash(const AuditRecord& record);

class Repo {
 public:
  explicit Repo(Database& db) : db_(db) {}
  // The connection, for modules that keep their own queries (drills, obligations, reports).
  Database& database() { return db_; }

  // Clients. A deleted client is gone for the API, but its history stays.
  Result<std::optional<Client>> client(std::string_view id);
  Result<std::vector<Client>> clients();
  Result<bool> put_client(const Client& client, Timestamp now);  // true when created
  Result<bool> delete_client(std::string_view id, Timestamp now);

  Result<std::vector<Contact>> contacts(std::string_view client_id);
  Result<std::optional<Contact>> contact(std::string_view client_id, std::string_view id);
  Result<bool> put_contact(const Contact& contact, Timestamp now);
  Result<bool> delete_contact(std::string_view client_id, std::string_view id);

  Result<std::vector<Endpoint>> endpoints(std::string_view client_id);
  Result<std::optional<Endpoint>> endpoint(std::string_view client_id, std::string_view id);
  Result<bool> put_endpoint(const Endpoint& endpoint, Timestamp now);
  Result<bool> delete_endpoint(std::string_view client_id, std::string_view id);
  // Turns an endpoint on or off without touching the rest; true when it was changed.
  Result<bool> set_endpoint_enabled(std::string_view client_id, std::string_view id, bool enabled,
                                    Timestamp now);

  Result<std::optional<StoredPlan>> plan(std::string_view client_id);
  Result<int64_t> put_plan(std::string_view client_id, std::string_view body, Timestamp now);

  Result<std::optional<StoredEvent>> event(std::string_view client_id, std::string_view event_id);
  Status insert_event(const Event& event, std::optional<Phase> previous_phase, bool applied,
                      int messages);
  Result<std::vector<StoredEvent>> incident_events(std::string_view client_id,
                                                   std::string_view incident_id);

  Result<std::optional<Incident>> incident(std::string_view client_id, std::string_view id);
  Status put_incident(const Incident& incident);

  // Inserts unless a message with the same id exists; returns whether it was inserted.
  Result<bool> insert_message(const Message& message);
  // Cancels the incident's scheduled and retrying messages planned by earlier events: a new
  // event (another phase, or news within the same one) supersedes their schedule.
  // Each returns the ids of the messages it cancelled.
  Result<std::vector<std::string>> cancel_superseded(const Event& event);
  // Cancels every pending message of a client (when it is deleted).
  Result<std::vector<std::string>> cancel_client(std::string_view client_id,
                                                 std::string_view reason);
  // Marks up to `limit` due messages `sending`, counting the attempt; returns them.
  Result<std::vector<Message>> claim_due(Timestamp now, int limit);
  // Up to `limit` messages due at `now` (scheduled or retrying, send_at <= now) in due order
  // (send_at, seq), after `after` (from the first when nullopt). Nothing is changed.
  Result<std::vector<DueCandidate>> due_after(Timestamp now, std::optional<DuePosition> after,
                                              int limit);
  // Claims the messages with these ids, as claim_due does, that are still due at `now` (not
  // cancelled, claimed or moved since they were read); returns them in due order.
  Result<std::vector<Message>> claim_ids(const std::vector<std::string>& ids, Timestamp now);
  // Puts a claimed message back without counting its attempt (the dispatcher held it back):
  // `retrying` when it had been tried before, else `scheduled`, due at send_at.
  Status defer_claimed(std::string_view id, Timestamp send_at);
  // After a restart: messages left `sending` get an attempt recorded as interrupted and are
  // due again at once. Returns how many.
  Result<int64_t> requeue_interrupted(Timestamp now);
  // The earliest time a message or an escalation falls due.
  Result<std::optional<Timestamp>> next_due();
  Status record_attempt(const Attempt& attempt);
  Status finish_attempt(std::string_view id, MessageStatus status, Timestamp send_at,
                        std::optional<Timestamp> delivered_at, std::string_view last_error);
  Status set_content(std::string_view id, const MessageContent& content);
  // finish_attempt and set_content in one statement: an attempt's outcome with what it sent.
  Status finish_attempt(std::string_view id, MessageStatus status, Timestamp send_at,
                        std::optional<Timestamp> delivered_at, std::string_view last_error,
                        const MessageContent& content);
  // The content hash stored with a message (nullopt: none yet).
  Result<std::optional<std::string>> content_hash(std::string_view id);
  // Retention: clears the subject and body of up to `limit` finished (delivered, failed,
  // cancelled) messages created before `cutoff`, oldest first, keeping their content hash.
  // Returns (client, message id) of each.
  Result<std::vector<std::pair<std::string, std::string>>> prune_bodies(Timestamp cutoff,
                                                                        int limit);
  Result<std::optional<MessageContent>> content(std::string_view id);
  Result<std::optional<Message>> message(std::string_view id);
  Result<std::vector<Attempt>> attempts(std::string_view message_id);
  // The channels already used to reach this message's contact with the same update.
  Result<std::vector<std::string>> channels_tried(const Message& message);
  Result<MessagePage> messages(const MessageFilter& filter);
  Result<std::vector<StatusCount>> message_counts();
  Result<int64_t> queue_depth(Timestamp now);
  Result<DueQueue> due_queue(Timestamp now);

  // Acknowledgements. insert_ack returns false when the message was acknowledged already.
  Result<bool> insert_ack(const AckRecord& ack);
  Result<std::vector<AckRecord>> acks(std::string_view client_id, std::string_view incident_id);
  // Has anyone acknowledged a message of this rule for this incident and phase?
  Result<bool> rule_acknowledged(std::string_view client_id, std::string_view incident_id,
                                 Phase phase, std::string_view rule_id);
  Result<bool> contact_acknowledged(std::string_view client_id, std::string_view incident_id,
                                    Phase phase, std::string_view rule_id,
                                    std::string_view contact_id);
  // Cancels what is still to be sent to one contact for one rule, incident and phase.
  Result<std::vector<std::string>> cancel_contact_pending(std::string_view client_id,
                                                          std::string_view incident_id, Phase phase,
                                                          std::string_view rule_id,
                                                          std::string_view contact_id,
                                                          std::string_view reason);

  // Escalations.
  Result<bool> insert_escalation(const EscalationRecord& escalation);
  Result<std::vector<EscalationRecord>> due_escalations(Timestamp now, int limit);
  Status resolve_escalation(std::string_view id, EscalationStatus status, Timestamp at,
                            int messages);
  // Marks pending escalations acknowledged (an ack arrived) for a rule, incident and phase.
  Result<int64_t> acknowledge_escalations(std::string_view client_id, std::string_view incident_id,
                                          Phase phase, std::string_view rule_id, Timestamp at);
  // Cancels the incident's pending escalations from earlier events.
  Result<int64_t> cancel_superseded_escalations(const Event& event, Timestamp at);
  Result<std::vector<EscalationRecord>> escalations(std::string_view client_id,
                                                    std::string_view incident_id);

  // Templates (schema/004_templates.sql). current_templates: the latest live version of each
  // template of the client and of every client (''), for rendering; client_id "*" lists
  // every client's.
  Result<std::vector<TemplateVersion>> current_templates(std::string_view client_id);
  // VERSION 0: the latest (deleted or not).
  Result<std::optional<TemplateVersion>> template_version(std::string_view client_id,
                                                          std::string_view name, int64_t version);
  Result<std::vector<TemplateVersion>> template_history(std::string_view client_id,
                                                        std::string_view name);
  // Appends a version (BODY nullopt: deleted); returns its number.
  Result<int64_t> put_template(std::string_view client_id, std::string_view name,
                               const std::optional<std::string>& body, std::string_view actor,
                               Timestamp now);

  // Records a rejected bus message; false when (source, ref) was already recorded.
  Result<bool> insert_source_rejection(const SourceRejection& rejection);
  // Oldest first, after id `after_id`.
  Result<std::vector<SourceRejection>> source_rejections(std::string_view source, int64_t after_id,
                                                         int limit);
  // API tokens (schema/006_api_tokens.sql). insert_api_token: false when the name is taken.
  Result<std::vector<ApiToken>> api_tokens();
  Result<bool> insert_api_token(const ApiToken& token);
  // True when a token of that name existed.
  Result<bool> delete_api_token(std::string_view name);

  Result<std::optional<std::string>> meta(std::string_view key);
  Status set_meta(std::string_view key, std::string_view value);

  // Appends one audit record to the chain.
  Status audit(std::string_view kind, std::string_view actor, std::string_view client_id,
               std::string_view subject, std::string_view data_json, Timestamp now);
  // The pipeline's transitions, each appended in the caller's transaction; nothing is written
  // for an empty list. "messages.planned": the messages one cause (event, repeat, escalation,
  // fallback) added, about their incident. "messages.cancelled": the ids a change cancelled.
  Status audit_planned(std::string_view actor, std::string_view cause,
                       const std::vector<Message>& messages, Timestamp now);
  Status audit_cancelled(std::string_view actor, std::string_view client_id,
                         std::string_view subject, std::string_view reason,
                         const std::vector<std::string>& ids, Timestamp now);
  Result<std::vector<AuditRecord>> audit_records(int64_t after_seq, int limit,
                                                 std::string_view kind);
  Result<std::vector<AuditRecord>> audit_records(const AuditFilter& filter);
  // The seq of the newest record (0 when there is none).
  Result<int64_t> last_audit_seq();
  Result<AuditVerification> verify_audit();

 private:
  Database& db_;
};

}  // namespace herald::store
