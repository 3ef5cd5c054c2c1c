// The Alertmanager source: Prometheus Alertmanager's webhook payload (version 4) turned into
// Herald events, one per alert, with the mapping of CONTRACT.md "Sources". A thin adapter:
// the events then go through the same ingest as POST /v1/events.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"

namespace herald::sources {

// Maps every alert of the payload; `default_client` is the `?client=` of the request, used
// when an alert has no `client` label. Fails whole (unprocessable, naming the alert and field)
// if any alert cannot be mapped, so nothing of a bad payload is half-accepted.
Result<std::vector<Event>> alertmanager_events(const nlohmann::json& payload,
                                               const std::string& default_client);

}  // namespace herald::sources
