#include "daemon/audit/retention.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herald::audit {
namespace {

// A bound on one pass (500 × 20,000 = ten million bodies); the next pass goes on.
constexpr int kMaxBatchesPerPass = 20'000;

}  // namespace

Result<int64_t> prune_bodies(store::Store& store, Timestamp now, Millis retain, int batch) {
  const Timestamp cutoff = now - retain;
  int64_t total = 0;
  for (int i = 0; i < kMaxBatchesPerPass; ++i) {
    size_t pruned = 0;
    Status st = store.write_sync([&](store::Repo& r) -> Status {
      auto ids = r.prune_bodies(cutoff, batch);
      if (!ids) {
        return ids.error();
      }
      pruned = ids->size();
      std::map<std::string, std::vector<std::string>> by_client;
      for (auto& [client, id] : *ids) {
        by_client[client].push_back(std::move(id));
      }
      for (const auto& [client, list] : by_client) {
        nlohmann::json data{{"retain", format_duration(retain)},
                            {"created_before", format_rfc3339(cutoff)},
                            {"messages", list}};
        if (auto s =
                r.audit("bodies.pruned", "retention", client, "messages",
                        data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
            !s) {
          return s;
        }
      }
      return {};
    });
    if (!st) {
      return st.error();
    }
    total += static_cast<int64_t>(pruned);
    if (static_cast<int>(pruned) < batch) {
      break;
    }
  }
  return total;
}

Pruner::Pruner(store::Store& store, const Clock& clock, Millis retain, Millis interval)
    : store_(store), clock_(clock), retain_(retain), interval_(interval) {}

Pruner::~Pruner() {
  stop();
}

void Pruner::start() {
  thread_ = std::thread([this] { run(); });
}

void Pruner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Pruner::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    auto pruned = prune_bodies(store_, clock_.now(), retain_);
    if (!pruned) {
      spdlog::error("retention: cannot prune message bodies: {}", pruned.error().message);
    } else if (*pruned > 0) {
      spdlog::info("retention: pruned the bodies of {} message(s) older than {}", *pruned,
                   format_duration(retain_));
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace herald::audit
