// Retention of rendered message bodies: after [audit] retain_bodies a finished message's subject
// and body are cleared. The audit chain holds only their hashes (message.rendered), so it still
// verifies, and each pruning is itself recorded (bodies.pruned).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/store/store.hpp"

namespace herald::audit {

// One pass: clears the bodies of finished messages created before now - retain, oldest first,
// `batch` messages per commit, each commit with one "bodies.pruned" record per client listing
// its message ids. Returns how many bodies it cleared; an error stops the pass (what was
// committed stays committed, the rest waits for the next pass).
Result<int64_t> prune_bodies(store::Store& store, Timestamp now, Millis retain, int batch = 500);

// Runs prune_bodies every `interval` on its own thread, the first pass at start().
class Pruner {
 public:
  Pruner(store::Store& store, const Clock& clock, Millis retain, Millis interval);
  ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  void start();
  // Waits for a pass in progress to finish its current commit. Idempotent.
  void stop();

 private:
  void run();

  store::Store& store_;
  const Clock& clock_;
  const Millis retain_;
  const Millis interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace herald::audit
