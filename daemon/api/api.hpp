// The HTTP API (CONTRACT.md "HTTP API"): routing, bearer tokens and scopes, JSON in and out.
// Handlers are thin: parse → call a plain function (store, ingest, planner) → map to a status.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/core/metrics.hpp"
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
};

struct ApiOptions {
  std::vector<Token> tokens;
  std::string public_url;
  std::string version;
  std::string ack_key;  // signs acknowledgement links
};

class Api {
 public:
  Api(ApiOptions options, store::Store& store, ingest::Ingestor& ingestor, const Clock& clock,
      Metrics& metrics, std::function<void()> wake_dispatcher);
  ~Api();
  // The http::Handler: answers every request exactly once.
  void handle(http::Request&& request, http::Responder respond);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::api
