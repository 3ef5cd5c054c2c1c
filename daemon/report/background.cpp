#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "daemon/drill/drill.hpp"
#include "daemon/obligation/obligation.hpp"
#include "daemon/report/report.hpp"
#include "daemon/store/query.hpp"
#include "daemon/store/store.hpp"

namespace herald::report {

namespace {
constexpr Millis kTick{1'000};
constexpr Millis kMetricsEvery{60'000};
constexpr Millis kMetricsWindow{30LL * 86'400'000};
}  // namespace

struct Background::Impl {
  Impl(store::Store& st, const Clock& c, Metrics& m, std::function<void()> w)
      : store(st), clock(c), metrics(m), wake(std::move(w)) {}
  store::Store& store;
  const Clock& clock;
  Metrics& metrics;
  std::function<void()> wake;
  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;
  std::optional<Timestamp> metrics_at;

  void tick() {
    auto now = clock.now();
    std::vector<drill::DrillRecord> started;
    int overdue = 0;
    // A read first: most seconds nothing is due, and a write would cost a commit each time.
    auto due = store.read<bool>([&](store::Repo& r) -> Result<bool> {
      auto rows = store::select_rows<int64_t>(
          r.database(),
          "SELECT EXISTS (SELECT 1 FROM drill_schedules WHERE next_at <= ?1) OR EXISTS (SELECT 1 "
          "FROM incident_obligations WHERE met_at IS NULL AND overdue_at IS NULL AND due_at <= "
          "?1)",
          [&](store::Statement& s) { s.bind(1, store::to_ms(now)); },
          [](store::Statement& s) { return s.integer(0); });
      if (!rows) {
        return rows.error();
      }
      return !rows->empty() && (*rows)[0] != 0;
    });
    Status st = !due || !*due ? Status{} : store.write_sync([&](store::Repo& r) -> Status {
      auto d = drill::run_due_schedules(r, now);
      if (!d) {
        return d.error();
      }
      started = std::move(*d);
      auto o = obligation::mark_overdue(r, now);
      if (!o) {
        return o.error();
      }
      overdue = *o;
      return {};
    });
    if (!due) {
      spdlog::error("scheduled drills and deadlines: {}", due.error().message);
    } else if (!st) {
      spdlog::error("scheduled drills and deadlines: {}", st.error().message);
    }
    for (const auto& d : started) {
      spdlog::info("scheduled drill {} started for client {} ({}, {})", d.id, d.client_id,
                   to_string(d.phase), to_string(d.severity));
      metrics.add("herald_drills_started_total", "trigger=\"schedule\"");
    }
    if (overdue > 0) {
      spdlog::warn("{} notification deadline(s) passed unmet", overdue);
    }
    if (!started.empty() && wake) {
      wake();
    }
    if (!metrics_at || now - *metrics_at >= kMetricsEvery) {
      metrics_at = now;
      Period p;
      p.since = now - kMetricsWindow;
      auto e = store.read<nlohmann::json>([&](store::Repo& r) { return effectiveness(r, p, now); });
      if (e) {
        publish_metrics(metrics, *e);
      } else {
        spdlog::warn("effectiveness figures: {}", e.error().message);
      }
    }
  }

  void run() {
    while (true) {
      tick();
      std::unique_lock lock(mutex);
      if (cv.wait_for(lock, kTick, [&] { return stopping; })) {
        return;
      }
    }
  }
};

Background::Background(store::Store& store, const Clock& clock, Metrics& metrics,
                       std::function<void()> wake_dispatcher)
    : impl_(std::make_unique<Impl>(store, clock, metrics, std::move(wake_dispatcher))) {
  metrics.describe("herald_report_first_delivery_seconds", "gauge",
                   "Last 30 days, real incidents: time from a phase change to its first "
                   "delivery, by phase and quantile.");
  metrics.describe("herald_report_delivery_success_ratio", "gauge",
                   "Last 30 days, real incidents: delivered / (delivered + failed), by channel.");
  metrics.describe("herald_report_attempts_per_message", "gauge",
                   "Last 30 days, real incidents: attempts per settled message, by channel.");
  metrics.describe("herald_report_ack_seconds", "gauge",
                   "Last 30 days, real incidents: time from delivery to acknowledgement.");
  metrics.describe("herald_report_drills", "gauge", "Last 30 days: drills by result.");
  metrics.describe("herald_drills_started_total", "counter",
                   "Drills started, by trigger (api or schedule).");
}

Background::~Background() {
  stop();
}

void Background::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Background::stop() {
  if (!impl_->thread.joinable()) {
    return;
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

}  // namespace herald::report
