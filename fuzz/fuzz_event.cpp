// Fuzz target "event": the body of POST /v1/events through what the API does with it before
// storage: api::parse_body (JSON), ingest::parse_event (the contract's validation) and, for a
// refusal, api::error_response (the error as the client gets it).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/api/context.hpp"
#include "daemon/core/time.hpp"
#include "daemon/ingest/ingest.hpp"
#include "fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  herald::http::Request request;
  request.method = "POST";
  request.target = request.path = "/v1/events";
  request.body.assign(reinterpret_cast<const char*>(data), size);

  auto body = herald::api::parse_body(request);
  if (!body) {
    FUZZ_CHECK(herald::api::error_response(body.error()).status == 400);
    return 0;
  }
  auto event = herald::ingest::parse_event(*body);
  if (!event) {
    FUZZ_CHECK(herald::api::error_response(event.error()).status == 422);
    return 0;
  }
  // What an accepted event promises the rest of the pipeline.
  FUZZ_CHECK(!event->event_id.empty() && event->event_id.size() <= 200);
  FUZZ_CHECK(!event->client_id.empty() && !event->incident_id.empty());
  FUZZ_CHECK(json::parse(event->details_json).is_object());
  // The time is stored and shown as RFC 3339: it must read back as the same instant.
  const auto again = herald::parse_rfc3339(herald::format_rfc3339(event->occurred_at));
  FUZZ_CHECK(again && *again == event->occurred_at);
  return 0;
}
