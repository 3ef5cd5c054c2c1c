// The NATS JetStream source (CONTRACT.md `[nats]`): a durable pull consumer whose messages are
// events. Each is handled exactly like POST /v1/events (same validation, idempotency and single
// commit) and acknowledged to JetStream only after that commit; one that can never become an
// event is recorded in source_rejections, with why, and terminated.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/core/domain.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::store {
class Store;
}
namespace herald::ingest {
class Ingestor;
}

namespace herald::sources {

// A message body as an event: malformed JSON is `invalid` "malformed_json", a body over the
// HTTP API's limit `invalid` "too_large"; otherwise ingest::parse_event's answer.
Result<Event> nats_event(std::string_view data);

struct NatsOptions {
  std::string url;
  std::string stream = "INCIDENTS";
  std::string subject = "incidents.phase";
  std::string consumer = "herald";
  std::string ca_file;        // tls:// URLs: the CA certificates to trust; "" = the system's
  int batch = 128;            // messages fetched, committed and acknowledged together
  Millis fetch_wait{1'000};   // how long one fetch waits for messages
  Millis ack_wait{30'000};    // the consumer's AckWait when Herald creates it
  Millis retry_delay{5'000};  // redelivery delay of a message whose commit failed
  Millis min_backoff{250};    // reconnect backoff: doubles up to max_backoff, full jitter
  Millis max_backoff{30'000};
  Millis info_interval{2'000};  // how often the consumer's lag is read
};

// What /readyz and /metrics say of the subscription.
struct NatsStatus {
  std::string state = "starting";  // starting, connecting, subscribed, disconnected, stopped
  std::string last_error;          // the last failure, "" once subscribed again
  int64_t pending = -1;            // the consumer's num_pending (-1: not known yet)
  int64_t ack_pending = -1;        // the consumer's num_ack_pending
  int64_t connects = 0;            // successful subscriptions since start
};

class NatsSource {
 public:
  NatsSource(NatsOptions options, store::Store& store, ingest::Ingestor& ingestor,
             const Clock& clock, Metrics& metrics);
  ~NatsSource();
  NatsSource(const NatsSource&) = delete;
  NatsSource& operator=(const NatsSource&) = delete;

  // Starts the consumer thread; it connects, retrying with backoff, and never gives up.
  void start();
  // Stops fetching, lets the batch in hand finish (commit and acknowledge), closes the
  // connection. Idempotent.
  void stop();
  NatsStatus status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::sources
