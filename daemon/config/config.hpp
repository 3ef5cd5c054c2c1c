// The daemon's TOML configuration file: typed structs, strict parsing and validation, and the
// secrets that may come from the environment instead of the file.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::config {

struct TokenConfig {
  std::string name;
  std::string sha256;  // lowercase hex of sha256(token)
  std::vector<std::string> scopes;
};

struct ServerConfig {
  std::string host = "127.0.0.1";  // IPv6 addresses without brackets
  uint16_t port = 8080;            // 0 = pick a free port
  std::string public_url;          // no trailing slash; defaults to "http://" + listen
};

struct StorageConfig {
  std::string database = "/var/lib/herald/herald.db";
};

struct SmtpConfig {
  std::string url;                    // smtp:// or smtps://
  std::string tls = "opportunistic";  // or "required"
  std::string from;
  std::string username;
  std::string password;  // never logged, never in an error message
};

struct SmsConfig {
  std::string base_url = "https://api.twilio.com";
  std::string account_sid;
  std::string auth_token;  // never logged, never in an error message
  std::string from;        // E.164
};

struct NetworkConfig {
  std::vector<std::string> allow_private;  // CIDRs, each checked by parse_cidr
};

// Per-provider limits on one attempt: chat webhooks answer in well under a second, Teams
// Workflows (Power Automate) can take many seconds, SMTP is a whole conversation.
inline std::map<std::string, Millis> default_timeouts() {
  using std::chrono::seconds;
  return {{"slack", seconds(10)},   {"teams", seconds(30)},      {"mattermost", seconds(10)},
          {"discord", seconds(10)}, {"googlechat", seconds(10)}, {"webhook", seconds(15)},
          {"sms", seconds(15)},     {"email", seconds(60)}};
}

struct NatsConfig {
  std::string url;
  std::string stream = "INCIDENTS";
  std::string subject = "incidents.phase";
  std::string consumer = "herald";
  int batch = 128;          // messages fetched and committed together, 1 to 1024
  Millis ack_wait{30'000};  // AckWait of the consumer when Herald creates it
  std::string ca_file;      // tls:// only: CA certificates (PEM); "" = the system's
};

struct DeliveryConfig {
  int concurrency = 64;
  // Set: the limit on one attempt for every kind [delivery.timeouts] does not name (how
  // configurations written before per-kind timeouts keep their meaning). Unset: 30 s, only
  // for what has no kind.
  Millis attempt_timeout{30'000};
  // The limit on one attempt by kind, resolved: per-provider defaults, then attempt_timeout
  // when set, then [delivery.timeouts].
  std::map<std::string, Millis> timeouts = default_timeouts();
  Millis retry_horizon{std::chrono::hours(24)};  // counted from the first attempt
  // The wait after the 1st, 2nd, ... failed attempt; the last step repeats (Standard Webhooks).
  std::vector<Millis> retry_schedule = {std::chrono::seconds(5),  std::chrono::minutes(5),
                                        std::chrono::minutes(30), std::chrono::hours(2),
                                        std::chrono::hours(5),    std::chrono::hours(10)};
  Millis max_backoff{0};            // when positive, caps every step of the schedule
  int destination_concurrency = 4;  // attempts in flight per chat or webhook endpoint
  // Attempts in flight per SMS or email provider server. When only destination_concurrency is
  // set, it is that (its meaning before this key existed: every destination).
  int server_concurrency = 32;
  int breaker_threshold = 5;  // consecutive retryable failures that pause a destination
  Millis breaker_cool_down{30'000};
  Millis breaker_max_cool_down{300'000};
  // Rates by kind (slack, teams, mattermost, discord, googlechat, webhook, sms, email), each
  // checked by dispatch::parse_rate, or "none". Chat and webhook: per endpoint.
  std::map<std::string, std::string> rate_limits = {{"slack", "1/s"}, {"sms", "1/s"}};
};

struct AuditConfig {
  // How long a message's rendered subject and body are kept after it was created; nullopt keeps
  // them forever ("forever", the default). The audit chain keeps their hashes either way.
  std::optional<Millis> retain_bodies;
  Millis prune_interval{std::chrono::hours(1)};  // how often the daemon looks for bodies to prune
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text, json (JSON lines)
  std::string sink = "auto";    // auto (the journal under systemd, else stderr), stderr, journal
};

struct Config {
  ServerConfig server;
  StorageConfig storage;
  std::vector<TokenConfig> tokens;
  std::optional<SmtpConfig> smtp;
  std::optional<SmsConfig> sms;
  NetworkConfig network;
  std::optional<NatsConfig> nats;
  DeliveryConfig delivery;
  AuditConfig audit;
  LogConfig log;
};

// Looks up an environment variable; injected so tests need not touch the real environment.
using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// Parses and validates a whole file. On failure: Error{invalid, "invalid_config", message}
// where message starts with "SOURCE:LINE:COLUMN: " and names the full key. Only the first
// problem is reported. HERALD_SMTP_PASSWORD and HERALD_SMS_AUTH_TOKEN (read through getenv)
// override the file's secrets.
Result<Config> parse_config(std::string_view toml_text, std::string_view source_name,
                            const Getenv& getenv);
// Reads PATH and the real environment; an unreadable file is an "invalid_config" error too.
Result<Config> load_config_file(const std::string& path);

// An IPv4 or IPv6 network in CIDR notation ("10.0.0.0/8", "fd00::/8"); the prefix is required.

}  // namespace herald::config
