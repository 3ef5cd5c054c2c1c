// The dispatcher: claims due messages from the outbox, renders them, sends them concurrently
// through the channels and the transport, and records every attempt. It alone decides on
// retries (a schedule close to Standard Webhooks' with jitter, Retry-After honoured) and final
// failure.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "channels/channel.hpp"
#include "daemon/core/domain.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"
#include "daemon/dispatch/limits.hpp"

namespace herald::store {
class Store;
}
namespace herald::render {
class Renderer;
}
namespace herald::channels {
class ChannelRegistry;
}
namespace herald::transport {
class Transport;
}

namespace herald::dispatch {

// Close to the Standard Webhooks schedule: after the first attempt (immediately) 5 s, 5 min,
// 30 min, 2 h, 5 h, then every 10 h.
std::vector<Millis> default_retry_schedule();

struct DispatcherOptions {
  int concurrency = 64;  // attempts in flight at once
  // The wait after the first, second, ... failed attempt; the last step repeats.
  std::vector<Millis> retry_schedule = default_retry_schedule();
  double retry_jitter = 0.2;          // each wait is drawn from [1 - jitter, 1] x its step
  std::optional<Millis> max_backoff;  // when set, no wait between attempts is longer
  Millis retry_horizon{86'400'000};   // counted from the first attempt; then a message fails
  Millis min_backoff{500};            // never retry sooner than this
  // Per kind (slack, ..., webhook, sms, email): the limit on one attempt; others get
  // attempt_timeout. Applied to each request, so a hung receiver holds one transport slot.
  std::map<std::string, Millis> timeouts;
  Millis attempt_timeout{30'000};
  Millis poll_interval{1'000};  // a safety net; new work wakes the dispatcher at once
  // Per destination (DESIGN: one bad endpoint must never delay the others).
  BreakerOptions breaker;           // keyed by host:port
  int destination_concurrency = 4;  // in flight per chat or webhook endpoint; 0: no limit
  int server_concurrency = 32;      // in flight per SMS or email provider server; 0: no limit
  // By kind (slack, teams, ..., webhook, sms, email); chat and webhook per endpoint.
  std::map<std::string, Rate> rate_limits = {{"slack", Rate{1, 1}}, {"sms", Rate{1, 1}}};
  Millis busy_wait{1'000};  // a message held back by the concurrency limit waits this
  std::string public_url;   // base of acknowledgement links
  std::string ack_key;      // signs them; people get no link when empty
};

// The wait before the next attempt after attempt number `attempt` failed: its schedule step
// (capped by max_backoff), shortened by up to `retry_jitter` of it; random01 in [0, 1].
Millis retry_wait(int attempt, const DispatcherOptions& options, double random01);

struct Decision {
  MessageStatus status = MessageStatus::delivered;
  Timestamp send_at{};
  std::optional<Timestamp> delivered_at;
  std::string last_error;
};

// What happens to a message after an attempt with this outcome.
Decision decide(const Message& message, const channels::Outcome& outcome, Timestamp now,
                const DispatcherOptions& options, double random01);

class Dispatcher {
 public:
  Dispatcher(DispatcherOptions options, store::Store& store, const render::Renderer& renderer,
             const channels::ChannelRegistry& channels, transport::Transport& transport,
             const Clock& clock, Metrics& metrics, std::function<double()> random01 = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Requeues what a previous run left in flight, then starts the dispatching thread.
  Status start();
  // New messages may be due: look now rather than at the next poll.
  void wake();

  // The hand-over, for ingest (DESIGN: one fsync between an event's POST and its first send).
  // A message planned due at once can skip the claim commit of its own: ingest claims it in
  // the event's transaction and hands it over once that commits. `reserve` (on the store's
  // writer thread, inside the transaction) says whether the dispatcher takes it now: only when
  // it has nothing due waiting (a fresh message never overtakes older ones), a free slot and
  // room under its destination's limit. Asking again for the same id (a rerun transaction) gets
  // the same answer. A reservation ends with `take` (committed, claimed: sent at once) or
  // `release` (not committed after all).
  bool reserve(const Message& message);
  void release(const std::string& message_id);
  void take(std::vector<Message> claimed);
  // Stops claiming, waits up to `drain` for attempts in flight, records them, and joins.
  // Attempts still in flight after that are left `sending` and resent at the next start.
  void stop(Millis drain = Millis{5'000});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::dispatch
