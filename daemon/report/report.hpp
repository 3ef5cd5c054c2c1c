// Reports: one incident's communications record (for its lessons-learned review) and the
// effectiveness figures of a period, as JSON and as self-contained printable HTML; and the
// background work that runs scheduled drills, records missed deadlines and keeps the key
// figures in the metrics.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/store/repo.hpp"

namespace herald::store {
class Store;
}

namespace herald::report {

// GET /v1/incidents/{incident}/report: phases, who was told what and when, what failed and
// what was done about it (retries, fallbacks), escalations, acknowledgements, deadlines, and
// the audit chain's verification of the incident's records. not_found for an unknown incident.
Result<nlohmann::json> incident_report(store::Repo& repo, const std::string& client_id,
                                       const std::string& incident_id, Timestamp now);
// The same as a self-contained HTML page (inline CSS, no scripts), every value escaped.
std::string incident_report_html(const nlohmann::json& report);

struct Period {
  std::string client_id;  // empty: every client
  std::optional<Timestamp> since, until;
};

// GET /v1/reports/effectiveness: per phase, time from the phase change to the first delivery
// (p50, p90, max); per channel, success rate and attempts per message; time to acknowledge
// (p50, p90); escalations; obligations; and, apart, the drills of the period. Drill incidents
// never count in the real figures.
Result<nlohmann::json> effectiveness(store::Repo& repo, const Period& period, Timestamp now);
std::string effectiveness_html(const nlohmann::json& report);

// Nearest-rank percentile of sorted values; nullopt when empty.
std::optional<int64_t> percentile(const std::vector<int64_t>& sorted, double p);

// Sets the key figures of the last 30 days as gauges (herald_report_*).
void publish_metrics(Metrics& metrics, const nlohmann::json& effectiveness);

// A thread that, every second, starts scheduled drills that fell due and records deadlines
// that passed unmet, and every minute refreshes the effectiveness gauges.
class Background {
 public:
  Background(store::Store& store, const Clock& clock, Metrics& metrics,
             std::function<void()> wake_dispatcher);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  void start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::report
