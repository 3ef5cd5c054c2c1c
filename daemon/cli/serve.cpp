#include "daemon/cli/serve.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <filesystem>
#include <iostream>

#include "channels/registry.hpp"
#include "daemon/api/api.hpp"
#include "daemon/audit/retention.hpp"
#include "daemon/config/config.hpp"
#include "daemon/core/ack_link.hpp"
#include "daemon/dispatch/dispatcher.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/log/log.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/report/report.hpp"
#include "daemon/sources/nats/nats.hpp"
#include "daemon/store/store.hpp"
#include "daemon/transport/transport.hpp"

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

namespace herald::cli {
namespace {

channels::ChannelSettings channel_settings(const config::Config& c) {
  channels::ChannelSettings s;
  if (c.smtp) {
    channels::SmtpSettings smtp;
    smtp.url = c.smtp->url;
    smtp.tls =
        c.smtp->tls == "required" ? channels::SmtpTls::required : channels::SmtpTls::opportunistic;
    smtp.from = c.smtp->from;
    smtp.username = c.smtp->username;
    smtp.password = c.smtp->password;
    s.smtp = smtp;
  }
  if (c.sms) {
    s.sms =
        channels::SmsSettings{c.sms->base_url, c.sms->account_sid, c.sms->auth_token, c.sms->from};
  }
  return s;
}

std::vector<api::Token> api_tokens(const config::Config& c) {
  std::vector<api::Token> out;
  for (const auto& t : c.tokens) {
    api::Token token;
    token.name = t.name;
    token.sha256 = t.sha256;
    token.scopes = t.scopes;
    out.push_back(std::move(token));
  }
  return out;
}

log::Settings log_settings(const config::LogConfig& c) {
  return log::Settings{c.level, c.format, c.sink};
}

// Blocks SIGTERM, SIGINT and SIGHUP in every thread (threads inherit the mask), so the main
// thread alone receives them, synchronously, through sigtimedwait.
sigset_t block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// The settings a reload cannot change, by name, where the new file differs from the running one.
std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b) {
  std::vector<std::string> out;
  auto differs = [&out](bool changed, const char* name) {
    if (changed) {
      out.emplace_back(name);
    }
  };
  differs(a.server.host != b.server.host || a.server.port != b.server.port, "server.listen");
  differs(a.server.public_url != b.server.public_url, "server.public_url");
  differs(a.storage.database != b.storage.database, "storage.database");
  differs(a.network.allow_private != b.network.allow_private, "network.allow_private");
  differs(
      a.nats.has_value() != b.nats.has_value() ||
          (a.nats && (a.nats->url != b.nats->url || a.nats->stream != b.nats->stream ||
                      a.nats->subject != b.nats->subject || a.nats->consumer != b.nats->consumer ||
                      a.nats->batch != b.nats->batch || a.nats->ack_wait != b.nats->ack_wait)),
      "nats");
  const auto& x = a.delivery;
  const auto& y = b.delivery;
  differs(x.concurrency != y.concurrency || x.attempt_timeout != y.attempt_timeout ||
              x.retry_horizon != y.retry_horizon || x.max_backoff != y.max_backoff ||
              x.destination_concurrency != y.destination_concurrency ||
              x.server_concurrency != y.server_concurrency ||
              x.breaker_threshold != y.breaker_threshold ||
              x.breaker_cool_down != y.breaker_cool_down ||
              x.breaker_max_cool_down != y.breaker_max_cool_down || x.rate_limits != y.rate_limits,
          "delivery");
  return out;
}

// SIGHUP: the new file's tokens, [smtp], [sms] and [log] take effect, all or nothing. Attempts
// in flight finish with the settings they started with; nothing queued is touched.
void reload(const std::string& path, config::Config& running, api::Api& api,
            channels::ChannelRegistry& channels) {
  sd_notify(0, "RELOADING=1");
  auto loaded = config::load_config_file(path);
  if (!loaded) {
    spdlog::error("reload refused, the running configuration stays in force: {}",
                  loaded.error().message);
    sd_notify(0, "READY=1\nSTATUS=reload refused: see the log");
    return;
  }
  config::Config& next = *loaded;
  if (auto st = api.set_config_tokens(api_tokens(next)); !st) {
    spdlog::error("reload refused, the running configuration stays in force: {}: {}", path,
                  st.error().message);
    sd_notify(0, "READY=1\nSTATUS=reload refused: see the log");
    return;
  }
  channels.reconfigure(channel_settings(next));
  if (auto st = log::configure(log_settings(next.log)); !st) {
    spdlog::error("log settings: {}", st.error().message);  // checked by the parser: unexpected
  }
  auto pending = restart_only_changes(running, next);
  if (!pending.empty()) {
    spdlog::warn("reload: {} changed in {}: these apply only after a restart",
                 fmt::join(pending, ", "), path);
  }
  // What a restart would apply stays as it runs, so the next reload compares against it.
  next.server = running.server;
  next.storage = running.storage;
  next.network = running.network;
  next.nats = running.nats;
  next.delivery = running.delivery;
  running = std::move(next);
  spdlog::info("reloaded {}: {} token(s), email {}, sms {}, log level {}, format {}, sink {}", path,
               running.tokens.size(), running.smtp ? "on" : "off", running.sms ? "on" : "off",
               running.log.level, running.log.format, log::current_sink());
  sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
}

}  // namespace

int serve(const std::string& config_path) {
  // Buffers of 256 KiB and more (large API answers, a fan-out's batches) get pages of their
  // own, given back when freed. glibc otherwise raises this threshold after the first such
  // free and keeps later ones in its arenas: 4-6 MiB more resident after a burst
  // (bench/memory.py, bench/README.md "Memory").
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  auto loaded = config::load_config_file(config_path);
  if (!loaded) {
    std::cerr << "herald: " << loaded.error().message << "\n";
    return 1;
  }
  config::Config running = *loaded;
  const config::Config& cfg = running;
  if (auto st = log::configure(log_settings(cfg.log)); !st) {
    std::cerr << "herald: " << st.error().message << "\n";
    return 1;
  }
  sigset_t signals = block_signals();
  curl_global_init(CURL_GLOBAL_DEFAULT);

  auto parent = std::filesystem::path(cfg.storage.database).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  auto store = store::Store::open(cfg.storage.database);
  if (!store) {
    spdlog::critical("{}", store.error().message);
    return 1;
  }
  spdlog::info("database {} ready (schema version {})", cfg.storage.database,
               store::latest_schema_version());

  // The key that signs acknowledgement links: made at the first start, kept in the database so
  // links in messages already sent stay valid across restarts.
  std::string ack_key;
  Status keyed = (*store)->write_sync([&ack_key](store::Repo& r) -> Status {
    auto existing = r.meta("ack_key");
    if (!existing) {
      return existing.error();
    }
    ack_key = existing->value_or(new_ack_key());
    return existing->has_value() ? Status{} : r.set_meta("ack_key", ack_key);
  });
  if (!keyed) {
    spdlog::critical("cannot set up the acknowledgement key: {}", keyed.error().message);
    return 1;
  }

  auto renderer = render::Renderer::load_shipped();
  if (!renderer) {
    spdlog::critical("templates: {}", renderer.error().message);
    return 1;
  }
  channels::ChannelRegistry channels(channel_settings(cfg));
  if (!cfg.smtp) {
    spdlog::warn("no [smtp] section: email messages will wait until one is configured");
  }
  if (!cfg.sms) {
    spdlog::warn("no [sms] section: SMS messages will wait until one is configured");
  }
  if (cfg.tokens.empty()) {
    spdlog::warn("no [[tokens]]: every API call but /healthz, /readyz and /metrics is refused");
  }

  SystemClock clock;
  Metrics metrics;
  transport::TransportOptions topts;
  topts.allow_private = cfg.network.allow_private;
  topts.total_timeout = cfg.delivery.attempt_timeout;
  topts.max_in_flight = cfg.delivery.concurrency;
  transport::Transport transport(topts);

  dispatch::DispatcherOptions dopts;
  dopts.concurrency = cfg.delivery.concurrency;
  if (cfg.delivery.max_backoff > Millis{0}) {
    dopts.max_backoff = cfg.delivery.max_backoff;
  }
  dopts.retry_schedule = cfg.delivery.retry_schedule;
  dopts.retry_horizon = cfg.delivery.retry_horizon;
  dopts.timeouts = cfg.delivery.timeouts;
  dopts.attempt_timeout = cfg.delivery.attempt_timeout;
  dopts.destination_concurrency = cfg.delivery.destination_concurrency;
  dopts.server_concurrency = cfg.delivery.server_concurrency;
  dopts.breaker.failure_threshold = cfg.delivery.breaker_threshold;
  dopts.breaker.cool_down = cfg.delivery.breaker_cool_down;
  dopts.breaker.max_cool_down = cfg.delivery.breaker_max_cool_down;
  dopts.rate_limits.clear();
  for (const auto& [kind, text] : cfg.delivery.rate_limits) {
    if (auto rate = dispatch::parse_rate(text)) {  // "none" (no limit) does not parse
      dopts.rate_limits[kind] = *rate;
    }
  }
  dopts.public_url = cfg.server.public_url;
  dopts.ack_key = ack_key;
  dispatch::Dispatcher dispatcher(dopts, **store, *renderer, channels, transport, clock, metrics);
  if (auto st = dispatcher.start(); !st) {
    spdlog::critical("dispatcher: {}", st.error().message);
    return 1;
  }

  // [audit] retain_bodies: rendered bodies are pruned in the background, the chain keeps their
  // hashes.
  std::unique_ptr<audit::Pruner> pruner;
  if (cfg.audit.retain_bodies) {
    pruner = std::make_unique<audit::Pruner>(**store, clock, *cfg.audit.retain_bodies,
                                             cfg.audit.prune_interval);
    pruner->start();
    spdlog::info("retention: message bodies are pruned {} after they were created",
                 format_duration(*cfg.audit.retain_bodies));
  }

  ingest::Handoff handoff;
  handoff.reserve = [&dispatcher](const Message& m) { return dispatcher.reserve(m); };
  handoff.release = [&dispatcher](const std::string& id) { dispatcher.release(id); };
  handoff.take = [&dispatcher](std::vector<Message> claimed) {
    dispatcher.take(std::move(claimed));
  };
  ingest::Ingestor ingestor(
      **store, clock, [&dispatcher] { dispatcher.wake(); }, std::move(handoff));
  std::unique_ptr<sources::NatsSource> nats;
  if (cfg.nats) {
    sources::NatsOptions nopts;
    nopts.url = cfg.nats->url;
    nopts.stream = cfg.nats->stream;
    nopts.subject = cfg.nats->subject;
    nopts.consumer = cfg.nats->consumer;
    nopts.batch = cfg.nats->batch;
    nopts.ack_wait = cfg.nats->ack_wait;
    nopts.ca_file = cfg.nats->ca_file;
    nats = std::make_unique<sources::NatsSource>(nopts, **store, ingestor, clock, metrics);
  }
  api::ApiOptions aopts;
  aopts.tokens = api_tokens(cfg);
  aopts.public_url = cfg.server.public_url;
  aopts.version = HERALD_VERSION;
  aopts.ack_key = ack_key;
  if (nats) {
    aopts.sources = [&nats] {
      auto st = nats->status();
      return std::vector<api::SourceState>{
          {"nats", st.state, st.last_error, st.pending, st.ack_pending}};
    };
  }
  api::Api api(aopts, **store, ingestor, clock, metrics, [&dispatcher] { dispatcher.wake(); });
  if (auto st = api.load_stored_tokens(); !st) {
    spdlog::critical("tokens: {}", st.error().message);
    dispatcher.stop();
    return 1;
  }
  // Scheduled drills, missed notification deadlines, effectiveness gauges.
  report::Background background(**store, clock, metrics, [&dispatcher] { dispatcher.wake(); });
  background.start();

  http::ServerOptions hopts;
  hopts.host = cfg.server.host;
  hopts.port = cfg.server.port;
  http::Server server(hopts, [&api](http::Request&& r, http::Responder respond) {
    api.handle(std::move(r), std::move(respond));
  });
  auto port = server.start();
  if (!port) {
    spdlog::critical("{}", port.error().message);
    background.stop();
    dispatcher.stop();
    return 1;
  }
  spdlog::info("herald {} listening on http://{}:{}", HERALD_VERSION,
               cfg.server.host.find(':') != std::string::npos ? "[" + cfg.server.host + "]"
                                                              : cfg.server.host,
               *port);
  // The bus is subscribed to once the HTTP side is up: /readyz then shows how it goes.
  if (nats) {
    nats->start();
  }
  sd_notifyf(0, "READY=1\nSTATUS=listening on port %u", static_cast<unsigned>(*port));

  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  auto tick = watchdog ? std::chrono::microseconds(watchdog_usec / 2) : std::chrono::seconds(60);
  while (true) {
    timespec timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(tick).count();
    timeout.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(tick % std::chrono::seconds(1))
            .count());
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("received {}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP) {
      spdlog::info("received SIGHUP: reloading {}", config_path);
      reload(config_path, running, api, channels);
    }
    if (watchdog) {
      sd_notify(0, "WATCHDOG=1");
    }
  }
  sd_notify(0, "STOPPING=1");
  // First the sources, so every event taken from the bus is committed and acknowledged while
  // the store still runs.
  if (nats) {
    nats->stop();
  }
  server.stop(Millis{5'000});
  background.stop();
  dispatcher.stop(Millis{5'000});
  if (pruner) {
    pruner->stop();
  }
  (*store)->stop();
  spdlog::info("stopped");
  spdlog::shutdown();
  curl_global_cleanup();
  return 0;
}

}  // namespace herald::cli
