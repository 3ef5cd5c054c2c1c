// The HTTP API (CONTRACT.md "HTTP API"): routing, bearer tokens and scopes, JSON in and out.
// Handlers are thin: parse → call a plain function (store, ingest, planner) → map to a status.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/http/server.hpp"

namespace herald::store {
class Store;
}
namespace herald::ingest {
class Ingestor;
}

namespace herald::api {

struct Token {
  std::string name;
  std::string sha256;  // hex of sha256(token)
  std::vector<std::string> scopes;
  // Tokens made through POST /v1/tokens (stored in the database) carry these:
  bool stored = false;
  std::optional<Timestamp> created_at;
  std::string created_by;
  std::optional<Timestamp> expires_at;  // from then on the token is refused (401)
};

// A bus subscription's state as /readyz reports it (the NATS source's, when configured).
struct SourceState {
  std::string name;          // "nats"
  std::string state;         // connecting, subscribed, disconnected, stopped
  std::string error;         // the last failure, "" when none
  int64_t pending = -1;      // messages not yet delivered to Herald (-1: not known)
  int64_t ack_pending = -1;  // delivered and not yet acknowledged
};

struct ApiOptions {
  std::vector<Token> tokens;
  std::string public_url;
  std::string version;
  std::string ack_key;                                // signs acknowledgement links
  std::function<std::vector<SourceState>()> sources;  // may be empty
};

class Api {
 public:
  Api(ApiOptions options, store::Store& store, ingest::Ingestor& ingestor, const Clock& clock,
      Metrics& metrics, std::function<void()> wake_dispatcher);
  ~Api();
  // Loads the tokens made through the API from the database; an error when one has the name
  // of a config-file token (the message names it).
  Status load_stored_tokens();
  // Replaces the config-file tokens (SIGHUP). Refused, changing nothing, when a name is also
  // a stored token's.
  Status set_config_tokens(std::vector<Token> tokens);
  // The http::Handler: answers every request exactly once.
  void handle(http::Request&& request, http::Responder respond);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::api
