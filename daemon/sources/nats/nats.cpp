#include "daemon/sources/nats/nats.hpp"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "daemon/core/json_depth.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/store/store.hpp"

namespace herald::sources {
namespace {

using nlohmann::json;

// The HTTP API's body limit: a bus message may not be bigger than a POST /v1/events body.
constexpr size_t kMaxMessageBytes = 1 << 20;
constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";

// The host of nats://[credentials@]HOST[:PORT], for checking the server's certificate.
std::string url_host(const std::string& url) {
  auto scheme = url.find("://");
  std::string rest = url.substr(scheme == std::string::npos ? 0 : scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/,"));
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    rest = rest.substr(at + 1);
  }
  if (!rest.empty() && rest.front() == '[') {
    return rest.substr(1, rest.find(']') - 1);
  }
  return rest.substr(0, rest.find(':'));
}

// The URL without its credentials (nats://user:pass@host or nats://token@host), for logs.
std::string redacted(const std::string& url) {
  auto scheme = url.find("://");
  auto start = scheme == std::string::npos ? 0 : scheme + 3;
  auto at = url.find('@', start);
  if (at == std::string::npos || url.find('/', start) < at) {
    return url;
  }
  return url.substr(0, start) + "***" + url.substr(at);
}

std::string nats_error(std::string_view what, natsStatus s,
                       jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string text = fmt::format("{}: {}", what, natsStatus_GetText(s));
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && std::string_view(detail) != natsStatus_GetText(s)) {
    text += fmt::format(" ({})", detail);
  }
  if (jerr != 0) {
    text += fmt::format(" [JetStream error {}]", static_cast<int>(jerr));
  }
  return text;
}

// One fetched message on its way through ingest.
struct Item {
  natsMsg* msg = nullptr;
  std::string ref;  // STREAM:SEQUENCE
  std::string subject;
  std::string_view data;
  std::optional<Result<ingest::IngestResult>> result;  // set on the writer thread
  std::optional<Error> rejected;                       // never an event: record and terminate
};

}  // namespace

Result<Event> nats_event(std::string_view data) {
  if (data.size() > kMaxMessageBytes) {
    return make_error(
        ErrorKind::invalid, "too_large",
        fmt::format("the message is {} bytes; the limit is {}", data.size(), kMaxMessageBytes));
  }
  if (data.empty()) {
    return make_error(ErrorKind::invalid, "malformed_json", "the message is empty: send JSON");
  }
  if (!json_depth_within(data)) {
    return make_error(ErrorKind::invalid, "malformed_json",
                      fmt::format("the message nests arrays and objects more than {} levels deep",
                                  kMaxJsonDepth));
  }
  json body;
  try {
    body = json::parse(data);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    return make_error(ErrorKind::invalid, "malformed_json",
                      fmt::format("the message is not valid JSON (byte {}): {}", e.byte,
                                  what.substr(what.find(':') + 2)));
  } catch (const json::exception& e) {
    // A number too large for a double ("1e999") is out_of_range, not a parse_error.
    const std::string what = e.what();
    return make_error(ErrorKind::invalid, "malformed_json",
                      "the message is not valid JSON: " + what.substr(what.find("] ") + 2));
  }
  auto event = ingest::parse_event(body);
  if (event) {
    event->source = "nats";
    event->token_name = "nats";
  }
  return event;
}

struct NatsSource::Impl {
  Impl(NatsOptions o, store::Store& s, ingest::Ingestor& i, const Clock& c, Metrics& m)
      : options(std::move(o)), store(s), ingestor(i), clock(c), metrics(m) {}

  NatsOptions options;
  store::Store& store;
  ingest::Ingestor& ingestor;
  const Clock& clock;
  Metrics& metrics;

  mutable std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  NatsStatus status;
  std::thread thread;
  std::mt19937_64 random{std::random_device{}()};

  // Touched by the consumer thread only.
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  std::chrono::steady_clock::time_point info_read_at{};

  bool stop_requested() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  // Sleeps unless asked to stop; false when stopping.
  bool pause(Millis how_long) {
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, how_long, [this] { return stopping; });
  }

  void set_state(std::string state, std::string error) {
    {
      std::lock_guard lock(mutex);
      status.state = state;
      if (!error.empty() || state == "subscribed") {
        status.last_error = error;
      }
      if (state == "subscribed") {
        ++status.connects;
      }
    }
    metrics.set("herald_nats_up", "", state == "subscribed" ? 1 : 0);
  }

  void run() {
    int failures = 0;
    while (!stop_requested()) {
      set_state("connecting", "");
      // The thread's boundary: whatever escapes a session ends it, and the loop reconnects.
      try {
        if (session()) {
          failures = 0;
        }
      } catch (const std::exception& e) {
        spdlog::error("nats: unexpected failure: {}; reconnecting", e.what());
        set_state("disconnected", std::string("unexpected failure: ") + e.what());
      }
      teardown();
      if (stop_requested()) {
        break;
      }
      // Exponential backoff with jitter: a fleet of Heralds does not reconnect in step.
      auto ceiling = std::min<int64_t>(options.max_backoff.count(), options.min_backoff.count()
                                                                        << std::min(failures, 16));
      ++failures;
      std::uniform_int_distribution<int64_t> jitter(ceiling / 2, std::max<int64_t>(ceiling, 1));
      if (!pause(Millis{jitter(random)})) {
        break;
      }
    }
    teardown();
    set_state("stopped", "");
  }

  // One connection's life: subscribe, then consume until the connection ends or Herald stops.
  // True when it got as far as subscribing.
  bool session() {
    auto connected = subscribe();
    if (!connected) {
      metrics.add("herald_nats_connect_failures_total", "");
      spdlog::warn("nats: {}", connected.error().message);
      set_state("disconnected", connected.error().message);
      return false;
    }
    set_state("subscribed", "");
    metrics.add("herald_nats_connects_total", "");
    spdlog::info("nats: consuming {} (stream {}, consumer {}) from {}", options.subject,
                 options.stream, options.consumer, redacted(options.url));
    auto ended = consume();
    if (!ended && !stop_requested()) {
      spdlog::warn("nats: {}; reconnecting", ended.error().message);
      set_state("disconnected", ended.error().message);
    }
    return true;
  }

  void teardown() {
    if (sub != nullptr) {
      // Destroy, not Unsubscribe: the durable consumer stays on the server, with its position.
      natsSubscription_Destroy(sub);
      sub = nullptr;
    }
    if (js != nullptr) {
      jsCtx_Destroy(js);
      js = nullptr;
    }
    if (nc != nullptr) {
      natsConnection_Close(nc);
      natsConnection_Destroy(nc);
      nc = nullptr;
    }
  }

  Status subscribe() {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) {
      s = natsOptions_SetURL(opts, options.url.c_str());
    }
    if (s == NATS_OK) {
      s = natsOptions_SetName(opts, "herald");
    }
    // Herald reconnects itself (with backoff, and setting the stream and consumer up again, in
    // case the server came back without them); the client's own reconnect would hide that.
    if (s == NATS_OK) {
      s = natsOptions_SetAllowReconnect(opts, false);
    }
    if (s == NATS_OK) {
      s = natsOptions_SetTimeout(opts, 5'000);
    }
    if (s == NATS_OK) {
      s = natsOptions_SetPingInterval(opts, 10'000);
    }
    if (s == NATS_OK) {
      s = natsOptions_SetMaxPingsOut(opts, 2);
    }
    // tls://: TLS required, the server's certificate checked against the CA file and the host.
    if (s == NATS_OK && options.url.rfind("tls://", 0) == 0) {
      s = natsOptions_SetSecure(opts, true);
      if (s == NATS_OK) {
        const std::string& ca = options.ca_file.empty() ? kSystemCaFile : options.ca_file;
        s = natsOptions_LoadCATrustedCertificates(opts, ca.c_str());
        if (s != NATS_OK) {
          natsOptions_Destroy(opts);
          return make_error(ErrorKind::unavailable, "nats",
                            nats_error("cannot load the CA certificates in " + ca, s));
        }
      }
      if (s == NATS_OK) {
        s = natsOptions_SetExpectedHostname(opts, url_host(options.url).c_str());
      }
    }
    if (s != NATS_OK) {
      natsOptions_Destroy(opts);
      return make_error(ErrorKind::internal, "nats", nats_error("options", s));
    }
    s = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot connect to " + redacted(options.url), s));
    }
    jsOptions jsopts;
    jsOptions_Init(&jsopts);
    jsopts.Wait = 5'000;
    s = natsConnection_JetStream(&js, nc, &jsopts);
    if (s != NATS_OK) {
      return make_error(ErrorKind::unavailable, "nats", nats_error("JetStream context", s));
    }
    if (auto st = ensure_stream(); !st) {
      return st;
    }
    if (auto st = ensure_consumer(); !st) {
      return st;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = options.stream.c_str();
    so.Consumer = options.consumer.c_str();
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_PullSubscribe(&sub, js, options.subject.c_str(), options.consumer.c_str(), nullptr, &so,
                         &jerr);
    if (s != NATS_OK) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot bind to consumer " + options.consumer, s, jerr));
    }
    return {};
  }

  // The stream is created when absent, capturing the subject, on file storage.
  Status ensure_stream() {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, options.stream.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      return {};
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot read stream " + options.stream, s, jerr));
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {options.subject.c_str()};
    cfg.Name = options.stream.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
    if (s != NATS_OK) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot create stream " + options.stream, s, jerr));
    }
    jsStreamInfo_Destroy(si);
    spdlog::info("nats: created stream {} capturing {}", options.stream, options.subject);
    return {};
  }

  // The durable consumer, created explicitly so that it outlives every subscription to it.
  Status ensure_consumer() {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&ci, js, options.stream.c_str(), options.consumer.c_str(),
                                      nullptr, &jerr);
    if (s == NATS_OK) {
      record_info(ci);
      jsConsumerInfo_Destroy(ci);
      return {};
    }
    if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot read consumer " + options.consumer, s, jerr));
    }
    jsConsumerConfig cfg;
    jsConsumerConfig_Init(&cfg);
    cfg.Durable = options.consumer.c_str();
    cfg.AckPolicy = js_AckExplicit;
    cfg.DeliverPolicy = js_DeliverAll;
    cfg.FilterSubject = options.subject.c_str();
    cfg.AckWait = options.ack_wait.count() * kNanosPerMilli;
    cfg.MaxAckPending = std::max(1024, options.batch * 4);
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&ci, js, options.stream.c_str(), &cfg, nullptr, &jerr);
    if (s != NATS_OK) {
      return make_error(ErrorKind::unavailable, "nats",
                        nats_error("cannot create consumer " + options.consumer, s, jerr));
    }
    record_info(ci);
    jsConsumerInfo_Destroy(ci);
    spdlog::info("nats: created durable consumer {} on stream {}", options.consumer,
                 options.stream);
    return {};
  }

  void record_info(const jsConsumerInfo* ci) {
    {
      std::lock_guard lock(mutex);
      status.pending = static_cast<int64_t>(ci->NumPending);
      status.ack_pending = ci->NumAckPending;
    }
    metrics.set("herald_nats_pending", "", static_cast<double>(ci->NumPending));
    metrics.set("herald_nats_ack_pending", "", static_cast<double>(ci->NumAckPending));
    info_read_at = std::chrono::steady_clock::now();
  }

  // Best effort: the lag is for operators; failing to read it is not a reason to stop.
  void refresh_info(bool force) {
    if (!force && std::chrono::steady_clock::now() - info_read_at < options.info_interval) {
      return;
    }
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetConsumerInfo(&ci, js, options.stream.c_str(), options.consumer.c_str(), nullptr,
                           &jerr) == NATS_OK) {
      record_info(ci);
      jsConsumerInfo_Destroy(ci);
    }
  }

  // Fetches, commits and acknowledges batch after batch; returns (with why) when the
  // connection is lost, or {} when asked to stop.
  Status consume() {
    while (!stop_requested()) {
      natsMsgList list{nullptr, 0};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s =
          natsSubscription_Fetch(&list, sub, options.batch, options.fetch_wait.count(), &jerr);
      if (s == NATS_OK && list.Count > 0) {
        handle_batch(list);
        natsMsgList_Destroy(&list);
        // The acknowledgements leave now, not when the client's buffer next fills.
        natsStatus flushed = natsConnection_FlushTimeout(nc, 5'000);
        if (flushed != NATS_OK) {
          return make_error(ErrorKind::unavailable, "nats",
                            nats_error("cannot flush acknowledgements", flushed));
        }
        refresh_info(false);
        continue;
      }
      natsMsgList_Destroy(&list);
      if (natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
        return make_error(ErrorKind::unavailable, "nats", "connection lost");
      }
      if (s != NATS_OK && s != NATS_TIMEOUT) {
        return make_error(ErrorKind::unavailable, "nats", nats_error("fetch", s, jerr));
      }
      refresh_info(true);
    }
    return {};
  }

  void handle_batch(natsMsgList& list) {
    std::vector<Item> items(static_cast<size_t>(list.Count));
    struct Wait {
      std::mutex mutex;
      std::condition_variable done;
      size_t pending = 0;
    } wait;
    for (int i = 0; i < list.Count; ++i) {
      Item& item = items[static_cast<size_t>(i)];
      item.msg = list.Msgs[i];
      const char* subject = natsMsg_GetSubject(item.msg);
      item.subject = subject != nullptr ? subject : "";
      item.data = std::string_view(natsMsg_GetData(item.msg),
                                   static_cast<size_t>(natsMsg_GetDataLength(item.msg)));
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, item.msg) == NATS_OK) {
        item.ref = fmt::format("{}:{}", meta->Stream != nullptr ? meta->Stream : options.stream,
                               meta->Sequence.Stream);
        jsMsgMetaData_Destroy(meta);
      } else {
        item.ref = options.stream + ":?";
      }
    }
    // Parsed first: once an event is queued, its callback refers to `items` and `wait`, so
    // nothing that can throw comes between queueing and waiting.
    std::vector<std::optional<Event>> events(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      auto event = nats_event(items[i].data);
      if (event) {
        events[i] = std::move(*event);
      } else {
        items[i].rejected = event.error();
      }
    }
    // Every event of the batch is queued before any is awaited, so they share group commits.
    wait.pending = static_cast<size_t>(
        std::count_if(events.begin(), events.end(), [](const auto& e) { return e.has_value(); }));
    for (size_t i = 0; i < items.size(); ++i) {
      if (!events[i]) {
        continue;
      }
      Item& item = items[i];
      ingestor.ingest(std::move(*events[i]), [&item, &wait](Result<ingest::IngestResult> r) {
        std::lock_guard lock(wait.mutex);
        item.result.emplace(std::move(r));
        if (--wait.pending == 0) {
          wait.done.notify_one();
        }
      });
    }
    {
      std::unique_lock lock(wait.mutex);
      wait.done.wait(lock, [&wait] { return wait.pending == 0; });
    }

    std::vector<Item*> rejected;
    for (auto& item : items) {
      if (item.rejected) {
        rejected.push_back(&item);
        continue;
      }
      const auto& r = *item.result;
      if (r) {
        // Committed: only now may JetStream forget it.
        natsMsg_Ack(item.msg, nullptr);
        metrics.add("herald_nats_messages_total",
                    r->duplicate ? "outcome=\"duplicate\"" : "outcome=\"accepted\"");
      } else if (r.error().kind == ErrorKind::unprocessable ||
                 r.error().kind == ErrorKind::invalid) {
        item.rejected = r.error();  // e.g. an unknown client: redelivery cannot fix it
        rejected.push_back(&item);
      } else {
        // Not committed (database busy or failing): JetStream redelivers it later.
        spdlog::warn("nats: {} not committed, redelivery in {} ms: {}", item.ref,
                     options.retry_delay.count(), r.error().message);
        natsMsg_NakWithDelay(item.msg, options.retry_delay.count(), nullptr);
        metrics.add("herald_nats_messages_total", "outcome=\"retried\"");
      }
    }
    if (!rejected.empty()) {
      record_rejections(rejected);
    }
  }

  // Records the rejections (and an audit record each) in one commit, then terminates them.
  void record_rejections(const std::vector<Item*>& rejected) {
    auto now = clock.now();
    Status recorded = store.write_sync([&](store::Repo& repo) -> Status {
      for (const Item* item : rejected) {
        store::SourceRejection r;
        r.source = "nats";
        r.ref = item->ref;
        r.subject = item->subject;
        r.received_at = now;
        r.code = item->rejected->code;
        r.field = item->rejected->field;
        r.message = item->rejected->message;
        r.size = static_cast<int64_t>(item->data.size());
        // Stored as JSON text can carry it: invalid UTF-8 replaced.
        r.payload = json(std::string(item->data.substr(0, store::kMaxRejectedPayload)))
                        .dump(-1, ' ', false, json::error_handler_t::replace);
        r.payload = json::parse(r.payload).get<std::string>();
        auto inserted = repo.insert_source_rejection(r);
        if (!inserted) {
          return inserted.error();
        }
        if (!*inserted) {
          continue;  // a redelivery of one already recorded
        }
        auto data = json{{"source", "nats"}, {"ref", r.ref},     {"subject", r.subject},
                         {"code", r.code},   {"field", r.field}, {"message", r.message},
                         {"size", r.size}}
                        .dump(-1, ' ', false, json::error_handler_t::replace);
        if (auto s = repo.audit("source.rejected", "nats", "", r.ref, data, now); !s) {
          return s.error();
        }
      }
      return {};
    });
    for (Item* item : rejected) {
      if (recorded) {
        spdlog::warn("nats: rejected {} ({}): {}", item->ref, item->rejected->code,
                     item->rejected->message);
        natsMsg_Term(item->msg, nullptr);
        metrics.add("herald_nats_messages_total", "outcome=\"rejected\"");
      } else {
        natsMsg_NakWithDelay(item->msg, options.retry_delay.count(), nullptr);
        metrics.add("herald_nats_messages_total", "outcome=\"retried\"");
      }
    }
    if (!recorded) {
      spdlog::warn("nats: cannot record rejected messages, redelivery in {} ms: {}",
                   options.retry_delay.count(), recorded.error().message);
    }
  }
};

NatsSource::NatsSource(NatsOptions options, store::Store& store, ingest::Ingestor& ingestor,
                       const Clock& clock, Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), store, ingestor, clock, metrics)) {
  auto& m = impl_->metrics;
  m.describe("herald_nats_up", "gauge", "1 while the JetStream consumer is subscribed.");
  m.describe("herald_nats_pending", "gauge",
             "Messages on the stream not yet delivered to Herald's consumer (num_pending).");
  m.describe("herald_nats_ack_pending", "gauge",
             "Messages delivered to Herald and not yet acknowledged (num_ack_pending).");
  m.describe("herald_nats_messages_total", "counter",
             "JetStream messages handled, by outcome (accepted, duplicate, rejected, retried).");
  m.describe("herald_nats_connects_total", "counter", "Successful subscriptions to JetStream.");
  m.describe("herald_nats_connect_failures_total", "counter",
             "Failed attempts to connect and subscribe (each followed by a backoff).");
  m.set("herald_nats_up", "", 0);
}

NatsSource::~NatsSource() {
  stop();
}

void NatsSource::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void NatsSource::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
    // The client library's own threads and buffers, so that nothing is left at exit. Not after
    // TLS: libnats 3.4's cleanup frees OpenSSL's compression-method stack, which OpenSSL 3
    // frees again at exit (a crash in OPENSSL_cleanup).
    if (impl_->options.url.rfind("tls://", 0) != 0) {
      nats_CloseAndWait(5'000);
    }
  }
}

NatsStatus NatsSource::status() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->status;
}

}  // namespace herald::sources
