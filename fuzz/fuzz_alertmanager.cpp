// Fuzz target "alertmanager": the body of POST /v1/sources/alertmanager?client=acme through
// api::parse_body and sources::alertmanager_events, the adapter that turns Alertmanager's
// webhook payload into events (which then go to storage without further validation, so what
// the adapter returns must already be a valid event).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/api/context.hpp"
#include "daemon/core/time.hpp"
#include "daemon/sources/alertmanager/alertmanager.hpp"
#include "fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  herald::http::Request request;
  request.method = "POST";
  request.target = "/v1/sources/alertmanager?client=acme";
  request.path = "/v1/sources/alertmanager";
  request.body.assign(reinterpret_cast<const char*>(data), size);

  auto body = herald::api::parse_body(request);
  if (!body) {
    FUZZ_CHECK(herald::api::error_response(body.error()).status == 400);
    return 0;
  }
  // Once with the request's ?client=, once without (the alerts' labels must then name it).
  for (const std::string client : {"acme", ""}) {
    auto events = herald::sources::alertmanager_events(*body, client);
    if (!events) {
      FUZZ_CHECK(herald::api::error_response(events.error()).status == 422);
      continue;
    }
    for (const auto& e : *events) {
      // The ids POST /v1/events accepts: 1 to 200 characters, no control character.
      for (const std::string* id : {&e.event_id, &e.client_id, &e.incident_id}) {
        FUZZ_CHECK(!id->empty() && id->size() <= 200);
        FUZZ_CHECK(std::none_of(id->begin(), id->end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
        }));
      }
      FUZZ_CHECK(json::parse(e.details_json).is_object());
    }
  }
  return 0;
}
