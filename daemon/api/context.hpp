// Internal to the API: the request context handlers share, and JSON helpers.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/api/api.hpp"

#include "daemon/core/domain.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/http/server.hpp"
#include "daemon/store/store.hpp"

namespace herald::ingest {
class Ingestor;
}

namespace herald::api {

using nlohmann::json;

// Every token the API accepts: the config file's and those made through POST /v1/tokens.
// Thread-safe: sessions authenticate while SIGHUP or the tokens API change the set.
class TokenRegistry {
 public:
  // The token whose SHA-256 is `digest` (every token compared in constant time), noting its
  // use at `now`. An expired token is returned too: the caller says why it is refused.
  std::optional<Token> find(std::string_view digest, Timestamp now);
  std::vector<Token> all() const;
  std::optional<Timestamp> last_used(const std::string& name) const;
  bool is_config(std::string_view name) const;
  // Refused (nothing changed) when a name would be both a config and a stored token's.
  Status set_config(std::vector<Token> tokens);
  Status set_stored(std::vector<Token> tokens);
  void add_stored(Token token);
  void remove_stored(std::string_view name);

 private:
  mutable std::mutex mutex_;
  std::vector<Token> config_;
  std::vector<Token> stored_;
  std::map<std::string, Timestamp, std::less<>> last_used_;
};

struct Services {
  store::Store& store;
  ingest::Ingestor& ingestor;
  const Clock& clock;
  Metrics& metrics;
  std::function<void()> wake_dispatcher;
  std::string public_url;
  std::string version;
  std::string ack_key;
  std::function<std::vector<SourceState>()> sources;  // may be empty
  TokenRegistry& tokens;
};

struct Call {
  const http::Request& request;
  std::unordered_map<std::string, std::string> params;  // from the route's {placeholders}
  std::string actor;                                    // the token's name
  std::vector<std::string> scopes;                      // the token's scopes
  const std::string& param(const std::string& name) const { return params.at(name); }
};

http::Response json_response(int status, const json& body);
http::Response error_response(const Error& error);
int status_of(ErrorKind kind);
// Parses the request body as JSON; malformed → 400 "malformed_json" naming the position.
Result<json> parse_body(const http::Request& request);

// Query parameters shared by the list endpoints (daemon/api/deliveries.cpp): each error is a
// 400 invalid_parameter naming the parameter.
Error bad_parameter(const std::string& name, const std::string& message);
Result<int> limit_param(const http::Request& r);       // 1..500, default 50
Result<int64_t> cursor_param(const http::Request& r);  // default 0
Result<std::optional<Timestamp>> time_param(const http::Request& r, const std::string& name);

std::string rfc3339_or_null_text(const std::optional<Timestamp>& t);
json time_json(const std::optional<Timestamp>& t);

// Admin (daemon/api/admin.cpp)
void put_client(Services& s, const Call& c, const http::Responder& respond);
void get_clients(Services& s, const Call& c, const http::Responder& respond);
void get_client(Services& s, const Call& c, const http::Responder& respond);
void delete_client(Services& s, const Call& c, const http::Responder& respond);
void put_contact(Services& s, const Call& c, const http::Responder& respond);
void get_contacts(Services& s, const Call& c, const http::Responder& respond);
void get_contact(Services& s, const Call& c, const http::Responder& respond);
void delete_contact(Services& s, const Call& c, const http::Responder& respond);
void put_endpoint(Services& s, const Call& c, const http::Responder& respond);
void get_endpoints(Services& s, const Call& c, const http::Responder& respond);
void get_endpoint(Services& s, const Call& c, const http::Responder& respond);
void delete_endpoint(Services& s, const Call& c, const http::Responder& respond);
void put_plan(Services& s, const Call& c, const http::Responder& respond);
void get_plan(Services& s, const Call& c, const http::Responder& respond);
void preview_plan(Services& s, const Call& c, const http::Responder& respond);

// Audit and deliveries (daemon/api/deliveries.cpp)
void post_event(Services& s, const Call& c, const http::Responder& respond);
void post_alertmanager(Services& s, const Call& c, const http::Responder& respond);
void list_deliveries(Services& s, const Call& c, const http::Responder& respond);
void get_delivery(Services& s, const Call& c, const http::Responder& respond);
void retry_delivery(Services& s, const Call& c, const http::Responder& respond);
void get_incident(Services& s, const Call& c, const http::Responder& respond);

// The audit trail (daemon/api/audit.cpp)
void list_audit(Services& s, const Call& c, const http::Responder& respond);
void export_audit(Services& s, const Call& c, const http::Responder& respond);
void verify_audit(Services& s, const Call& c, const http::Responder& respond);

// Bus sources (daemon/api/sources.cpp)
void list_source_rejections(Services& s, const Call& c, const http::Responder& respond);

// Acknowledgement links (daemon/api/ack.cpp)
void get_ack(Services& s, const Call& c, const http::Responder& respond);
void post_ack(Services& s, const Call& c, const http::Responder& respond);

// Templates (daemon/api/templates.cpp)
void put_template(Services& s, const Call& c, const http::Responder& respond);
void list_templates(Services& s, const Call& c, const http::Responder& respond);
void get_template(Services& s, const Call& c, const http::Responder& respond);
void template_history(Services& s, const Call& c, const http::Responder& respond);
void delete_template(Services& s, const Call& c, const http::Responder& respond);
void render_template(Services& s, const Call& c, const http::Responder& respond);

// The web console's static files (daemon/api/console.cpp): "/ui" and everything under "/ui/".
bool is_console_path(std::string_view path);
http::Response console_response(const http::Request& request);
// API tokens (daemon/api/tokens.cpp)
void post_token(Services& s, const Call& c, const http::Responder& respond);
void list_tokens(Services& s, const Call& c, const http::Responder& respond);
void delete_token(Services& s, const Call& c, const http::Responder& respond);

// Drills, drill schedules, plan gaps, obligations (daemon/api/drills.cpp)
void post_drill(Services& s, const Call& c, const http::Responder& respond);
void list_client_drills(Services& s, const Call& c, const http::Responder& respond);
void get_drill(Services& s, const Call& c, const http::Responder& respond);
void get_gaps(Services& s, const Call& c, const http::Responder& respond);
void put_drill_schedule(Services& s, const Call& c, const http::Responder& respond);
void get_drill_schedule(Services& s, const Call& c, const http::Responder& respond);
void delete_drill_schedule(Services& s, const Call& c, const http::Responder& respond);
void put_obligations(Services& s, const Call& c, const http::Responder& respond);
void get_obligations(Services& s, const Call& c, const http::Responder& respond);
void post_obligation_met(Services& s, const Call& c, const http::Responder& respond);

// Reports (daemon/api/reports.cpp)
void get_incident_report(Services& s, const Call& c, const http::Responder& respond);
void get_effectiveness(Services& s, const Call& c, const http::Responder& respond);

// Operations (daemon/api/api.cpp)
std::string render_metrics(Services& s);

}  // namespace herald::api
