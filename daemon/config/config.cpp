#include "daemon/config/config.hpp"

#include "daemon/core/cidr.hpp"
#include "daemon/dispatch/limits.hpp"

#include <arpa/inet.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <span>
#include <sstream>
#include <tuple>

namespace herald::config {
namespace {

constexpr std::string_view kScopes[] = {"admin", "audit", "ingest"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
constexpr std::string_view kLogSinks[] = {"auto", "stderr", "journal"};
constexpr int kMaxConcurrency = 1024;

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) {
    return s.size() > p.size() && s.substr(0, p.size()) == p;
  });
}

// A URL as it may be shown in an error: any "user:password@" is dropped.
std::string redact_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return std::string(url);
  }
  auto authority_start = scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority_start);
  auto at = url.rfind('@', authority_end == std::string_view::npos ? url.size() : authority_end);
  if (at == std::string_view::npos || at < authority_start) {
    return std::string(url);
  }
  return std::string(url.substr(0, authority_start)) + "REDACTED@" +
         std::string(url.substr(at + 1));
}

bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-' ||
      host.back() == '.' || host.back() == '-') {
    return false;
  }
  bool all_digits_and_dots = true;
  for (char c : host) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '-') {
      return false;
    }
    if (!(c >= '0' && c <= '9') && c != '.') {
      all_digits_and_dots = false;
    }
  }
  if (all_digits_and_dots) {
    // Looks like an IPv4 address: then it must be a valid one ("300.1.1.1" is a typo).
    in_addr addr{};
    return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
  }
  return true;
}

std::optional<std::pair<std::string, uint16_t>> parse_listen(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return std::nullopt;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!is_hostname(host)) {
      return std::nullopt;
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  long value = std::strtol(std::string(port).c_str(), nullptr, 10);
  if (value > 65535) {
    return std::nullopt;
  }
  return std::make_pair(std::string(host), static_cast<uint16_t>(value));
}

bool is_email_address(std::string_view addr) {
  auto at = addr.find('@');
  if (at == std::string_view::npos || at == 0 || addr.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  for (char c : addr.substr(0, at)) {
    if (c <= ' ' || c == '<' || c == '>' || c == '"' || c == ',' || c == 0x7f) {
      return false;
    }
  }
  return is_hostname(addr.substr(at + 1));
}

// "Name <addr@domain>" or "addr@domain".
bool is_mailbox(std::string_view from) {
  if (from.find_first_of("\r\n") != std::string_view::npos) {
    return false;
  }
  auto open = from.find('<');
  if (open == std::string_view::npos) {
    return is_email_address(from);
  }
  if (from.back() != '>' || open == 0 || from[open - 1] != ' ') {
    return false;
  }
  std::string_view name = from.substr(0, open - 1);
  if (name.find_first_not_of(' ') == std::string_view::npos ||
      name.find_first_of("<>") != std::string_view::npos) {
    return false;
  }
  return is_email_address(from.substr(open + 1, from.size() - open - 2));
}

bool is_e164(std::string_view phone) {
  if (phone.size() < 3 || phone.size() > 16 || phone[0] != '+' || phone[1] < '1' ||
      phone[1] > '9') {
    return false;
  }
  return std::all_of(phone.begin() + 1, phone.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

template <size_t N>
bool one_of(std::string_view value, const std::string_view (&allowed)[N]) {
  return std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed);
}

template <size_t N>
std::string join(const std::string_view (&items)[N]) {
  std::string out;
  for (auto item : items) {
    out += out.empty() ? "" : ", ";
    out += item;
  }
  return out;
}

// Walks the parsed document and collects every problem with its position; the caller reports
// them in file order. Values of secret keys never go into a message.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  void problem(const toml::source_region& where, std::string message) {
    problems_.push_back({where.begin.line, where.begin.column, std::move(message)});
  }

  bool ok() const { return problems_.empty(); }

  std::string report() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::string out;
    for (const auto& p : problems_) {
      out += out.empty() ? "" : "\n";
      out += source_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": " +
             p.message;
    }
    return out;
  }

  void check_keys(const toml::table& table, const std::string& prefix,
                  std::initializer_list<std::string_view> allowed) {
    for (auto&& [key, node] : table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end()) {
        problem(key.source(), "unknown key " + quoted(full(prefix, key.str())));
      }
    }
  }

  // The sub-table KEY of TABLE, or nullptr when absent or of the wrong type.
  const toml::table* table(const toml::table& parent, const std::string& prefix,
                           std::string_view key) {
    const toml::node* node = parent.get(key);
    if (node == nullptr) {
      return nullptr;
    }
    if (!node->is_table()) {
      type_problem(*node, full(prefix, key), "a table");
      return nullptr;
    }
    return node->as_table();
  }

  // Reads a string; a wrong type is reported without the value.
  std::optional<std::string> string(const toml::table& table, const std::string& prefix,
                                    std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    if (!node->is_string()) {
      type_problem(*node, full(prefix, key), "a string");
      return std::nullopt;
    }
    return node->as_string()->get();
  }

  // A required string: absence is reported at the table's header.
  std::optional<std::string> required_string(const toml::table& table, const std::string& prefix,
                                             std::string_view key) {
    if (table.get(key) == nullptr) {
      problem(table.source(), full(prefix, key) + ": required");
      return std::nullopt;
    }
    auto value = string(table, prefix, key);
    if (value && value->empty()) {
      problem(table.get(key)->source(), full(prefix, key) + ": must not be empty");
      return std::nullopt;
    }
    return value;
  }

  void type_problem(const toml::node& node, const std::string& key, std::string_view expected) {
    problem(node.source(), key + ": expected " + std::string(expected) + ", got " +
                               std::string(type_name(node.type())));
  }

  static std::string full(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }

 private:
  struct Problem {
    uint32_t line;
    uint32_t column;
    std::string message;
  };
  std::string source_;
  std::vector<Problem> problems_;
};

void read_server(Reader& r, const toml::table& root, ServerConfig& out) {
  const toml::table* t = r.table(root, "", "server");
  std::string listen = out.host + ":" + std::to_string(out.port);
  if (t != nullptr) {
    r.check_keys(*t, "server", {"listen", "public_url"});
    if (auto v = r.string(*t, "server", "listen")) {
      if (auto hp = parse_listen(*v)) {
        out.host = hp->first;
        out.port = hp->second;
        listen = *v;
      } else {
        r.problem(t->get("listen")->source(),
                  "server.listen: expected \"host:port\", got " + quoted(*v));
      }
    }
    if (auto v = r.string(*t, "server", "public_url")) {
      std::string url = *v;
      while (!url.empty() && url.back() == '/') {
        url.pop_back();
      }
      if (!starts_with_any(url, {"http://", "https://"})) {
        r.problem(t->get("public_url")->source(),
                  "server.public_url: expected an http:// or https:// URL, got " +
                      quoted(redact_url(*v)));
      }
      out.public_url = url;
    }
  }
  if (out.public_url.empty()) {
    out.public_url = "http://" + listen;
  }
}

void read_storage(Reader& r, const toml::table& root, StorageConfig& out) {
  const toml::table* t = r.table(root, "", "storage");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "storage", {"database"});
  if (auto v = r.string(*t, "storage", "database")) {
    if (v->empty()) {
      r.problem(t->get("database")->source(), "storage.database: must not be empty");
    }
    out.database = *v;
  }
}

void read_tokens(Reader& r, const toml::table& root, std::vector<TokenConfig>& out) {
  const toml::node* node = root.get("tokens");
  if (node == nullptr) {
    return;
  }
  const toml::array* tokens = node->as_array();
  if (tokens == nullptr) {
    r.type_problem(*node, "tokens", "an array of tables ([[tokens]])");
    return;
  }
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string prefix = "tokens[" + std::to_string(i) + "]";
    const toml::node& item = *tokens->get(i);
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      r.type_problem(item, prefix, "a table");
      continue;
    }
    r.check_keys(*t, prefix, {"name", "sha256", "scopes"});
    TokenConfig token;
    if (auto v = r.required_string(*t, prefix, "name")) {
      token.name = *v;
      bool duplicate = std::any_of(out.begin(), out.end(),
                                   [&](const TokenConfig& other) { return other.name == *v; });
      if (duplicate) {
        r.problem(t->get("name")->source(),
                  prefix + ".name: " + quoted(*v) + " is used by another token");
      }
    }
    if (auto v = r.required_string(*t, prefix, "sha256")) {
      if (!is_sha256_hex(*v)) {
        // Someone may have pasted the token itself here: do not echo it.
        r.problem(t->get("sha256")->source(),
                  prefix +
                      ".sha256: expected 64 lowercase hex characters (the SHA-256 of the "
                      "token), got " +
                      std::to_string(v->size()) + " characters");
      }
      token.sha256 = *v;
    }
    const toml::node* scopes = t->get("scopes");
    if (scopes == nullptr) {
      r.problem(t->source(), prefix + ".scopes: required");
    } else if (!scopes->is_array()) {
      r.type_problem(*scopes, prefix + ".scopes", "an array of strings");
    } else if (scopes->as_array()->empty()) {
      r.problem(scopes->source(), prefix + ".scopes: must name at least one of " + join(kScopes));
    } else {
      for (const toml::node& scope : *scopes->as_array()) {
        if (!scope.is_string()) {
          r.type_problem(scope, prefix + ".scopes", "an array of strings");
        } else if (!one_of(scope.as_string()->get(), kScopes)) {
          r.problem(scope.source(), prefix + ".scopes: unknown scope " +
                                        quoted(scope.as_string()->get()) + " (expected one of " +
                                        join(kScopes) + ")");
        } else {
          token.scopes.push_back(scope.as_string()->get());
        }
      }
    }
    out.push_back(std::move(token));
  }
}

void read_smtp(Reader& r, const toml::table& root, std::optional<SmtpConfig>& out) {
  const toml::table* t = r.table(root, "", "smtp");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "smtp", {"url", "tls", "from", "username", "password"});
  SmtpConfig smtp;
  if (auto v = r.required_string(*t, "smtp", "url")) {
    if (!starts_with_any(*v, {"smtp://", "smtps://"})) {
      r.problem(t->get("url")->source(),
                "smtp.url: expected smtp://HOST:PORT or smtps://HOST:PORT, got " +
                    quoted(redact_url(*v)));
    }
    smtp.url = *v;
  }
  if (auto v = r.string(*t, "smtp", "tls")) {
    if (*v != "opportunistic" && *v != "required") {
      r.problem(t->get("tls")->source(),
                "smtp.tls: expected \"opportunistic\" or \"required\", got " + quoted(*v));
    }
    smtp.tls = *v;
  }
  if (auto v = r.required_string(*t, "smtp", "from")) {
    if (!is_mailbox(*v)) {
      r.problem(t->get("from")->source(),
                "smtp.from: expected \"Name <addr@domain>\" or \"addr@domain\", got " + quoted(*v));
    }
    smtp.from = *v;
  }
  if (auto v = r.string(*t, "smtp", "username")) {
    smtp.username = *v;
  }
  if (auto v = r.string(*t, "smtp", "password")) {
    smtp.password = *v;
  }
  out = std::move(smtp);
}

void read_sms(Reader& r, const toml::table& root, const std::optional<std::string>& env_token,
              std::optional<SmsConfig>& out) {
  const toml::table* t = r.table(root, "", "sms");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "sms", {"base_url", "account_sid", "auth_token", "from"});
  SmsConfig sms;
  if (auto v = r.string(*t, "sms", "base_url")) {
    std::string url = *v;
    while (!url.empty() && url.back() == '/') {
      url.pop_back();
    }
    if (!starts_with_any(url, {"http://", "https://"})) {
      r.problem(t->get("base_url")->source(),
                "sms.base_url: expected an http:// or https:// URL, got " + quoted(redact_url(*v)));
    }
    sms.base_url = url;
  }
  if (auto v = r.required_string(*t, "sms", "account_sid")) {
    sms.account_sid = *v;
  }
  if (env_token && !env_token->empty()) {
    sms.auth_token = *env_token;
    (void)r.string(*t, "sms", "auth_token");  // still type-checked
  } else if (auto v = r.required_string(*t, "sms", "auth_token")) {
    sms.auth_token = *v;
  }
  if (auto v = r.required_string(*t, "sms", "from")) {
    if (!is_e164(*v)) {
      r.problem(t->get("from")->source(),
                "sms.from: expected an E.164 number like \"+15550000000\", got " + quoted(*v));
    }
    sms.from = *v;
  }
  out = std::move(sms);
}

void read_network(Reader& r, const toml::table& root, NetworkConfig& out) {
  const toml::table* t = r.table(root, "", "network");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "network", {"allow_private"});
  const toml::node* node = t->get("allow_private");
  if (node == nullptr) {
    return;
  }
  if (!node->is_array()) {
    r.type_problem(*node, "network.allow_private", "an array of strings");
    return;
  }
  for (const toml::node& item : *node->as_array()) {
    if (!item.is_string()) {
      r.type_problem(item, "network.allow_private", "an array of strings");
    } else if (!herald::parse_cidr(item.as_string()->get())) {
      r.problem(item.source(),
                "network.allow_private: expected a CIDR like \"10.0.0.0/8\" or \"fd00::/8\", got " +
                    quoted(item.as_string()->get()));
    } else {
      out.allow_private.push_back(item.as_string()->get());
    }
  }
}

void read_nats(Reader& r, const toml::table& root, std::optional<NatsConfig>& out) {
  const toml::table* t = r.table(root, "", "nats");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "nats",
               {"url", "stream", "subject", "consumer", "batch", "ack_wait", "ca_file"});
  NatsConfig nats;
  if (auto v = r.required_string(*t, "nats", "url")) {
    if (!starts_with_any(*v, {"nats://", "tls://"})) {
      r.problem(
          t->get("url")->source(),
          "nats.url: expected nats://HOST:PORT or tls://HOST:PORT, got " + quoted(redact_url(*v)));
    }
    nats.url = *v;
  }
  for (auto [key, field] : {std::pair{"stream", &nats.stream}, std::pair{"subject", &nats.subject},
                            std::pair{"consumer", &nats.consumer}}) {
    if (auto v = r.string(*t, "nats", key)) {
      if (v->empty()) {
        r.problem(t->get(key)->source(), "nats." + std::string(key) + ": must not be empty");
      } else if (std::string_view(key) != "subject" &&
                 v->find_first_of(" \t\r\n.*>/\\") != std::string::npos) {
        // JetStream names become subject tokens ($JS.API.CONSUMER.INFO.STREAM.CONSUMER).
        r.problem(t->get(key)->source(), "nats." + std::string(key) +
                                             ": must not contain spaces, '.', '*', '>', '/' or "
                                             "'\\', got " +
                                             quoted(*v));
      }
      *field = *v;
    }
  }
  if (const toml::node* node = t->get("batch")) {
    if (!node->is_integer()) {
      r.type_problem(*node, "nats.batch", "an integer");
    } else if (int64_t n = node->as_integer()->get(); n < 1 || n > 1024) {
      r.problem(node->source(), "nats.batch: expected 1 to 1024, got " + std::to_string(n));
    } else {
      nats.batch = static_cast<int>(n);
    }
  }
  if (auto v = r.string(*t, "nats", "ack_wait")) {
    auto d = parse_duration(*v);
    if (!d || d->count() < 1000) {
      r.problem(
          t->get("ack_wait")->source(),
          "nats.ack_wait: expected a duration of at least 1s like \"30s\", got " + quoted(*v));
    } else {
      nats.ack_wait = *d;
    }
  }
  if (auto v = r.string(*t, "nats", "ca_file")) {
    if (v->empty()) {
      r.problem(t->get("ca_file")->source(), "nats.ca_file: must not be empty");
    }
    nats.ca_file = *v;
  }
  out = std::move(nats);
}

void read_audit(Reader& r, const toml::table& root, AuditConfig& out) {
  const toml::table* t = r.table(root, "", "audit");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "audit", {"retain_bodies", "prune_interval"});
  if (auto v = r.string(*t, "audit", "retain_bodies")) {
    auto d = parse_duration(*v);
    if (*v == "forever") {
      out.retain_bodies.reset();
    } else if (!d || d->count() < 1000) {
      r.problem(t->get("retain_bodies")->source(),
                "audit.retain_bodies: expected a duration of at least 1s like \"90d\", or "
                "\"forever\", got " +
                    quoted(*v));
    } else {
      out.retain_bodies = *d;
    }
  }
  if (auto v = r.string(*t, "audit", "prune_interval")) {
    auto d = parse_duration(*v);
    if (!d || d->count() < 1000) {
      r.problem(t->get("prune_interval")->source(),
                "audit.prune_interval: expected a duration of at least 1s like \"1h\", got " +
                    quoted(*v));
    } else {
      out.prune_interval = *d;
    }
  }
}

void read_delivery(Reader& r, const toml::table& root, DeliveryConfig& out) {
  const toml::table* t = r.table(root, "", "delivery");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "delivery",
               {"concurrency", "attempt_timeout", "timeouts", "retry_horizon", "retry_schedule",
                "max_backoff", "destination_concurrency", "server_concurrency", "breaker_threshold",
                "breaker_cool_down", "breaker_max_cool_down", "rate_limits"});
  for (auto [key, field, max] :
       {std::tuple{"concurrency", &out.concurrency, kMaxConcurrency},
        std::tuple{"destination_concurrency", &out.destination_concurrency, kMaxConcurrency},
        std::tuple{"server_concurrency", &out.server_concurrency, kMaxConcurrency},
        std::tuple{"breaker_threshold", &out.breaker_threshold, 1000}}) {
    const toml::node* node = t->get(key);
    if (node == nullptr) {
      continue;
    }
    std::string name = "delivery." + std::string(key);
    if (!node->is_integer()) {
      r.type_problem(*node, name, "an integer");
    } else if (int64_t n = node->as_integer()->get(); n < 1 || n > max) {
      r.problem(node->source(),
                name + ": expected 1 to " + std::to_string(max) + ", got " + std::to_string(n));
    } else {
      *field = static_cast<int>(n);
    }
  }
  if (t->get("destination_concurrency") != nullptr && t->get("server_concurrency") == nullptr) {
    out.server_concurrency = out.destination_concurrency;
  }
  if (const toml::table* limits = r.table(*t, "delivery", "rate_limits")) {
    r.check_keys(
        *limits, "delivery.rate_limits",
        {"slack", "teams", "mattermost", "discord", "googlechat", "webhook", "sms", "email"});
    for (auto&& [key, node] : *limits) {
      std::string kind(key.str());
      auto v = r.string(*limits, "delivery.rate_limits", kind);
      if (!v) {
        continue;
      }
      if (*v != "none") {
        if (auto rate = dispatch::parse_rate(*v); !rate) {
          r.problem(node.source(),
                    "delivery.rate_limits." + kind + ": " + rate.error().message + " or \"none\"");
          continue;
        }
      }
      out.rate_limits[kind] = *v;
    }
  }
  for (auto [key, field] :
       {std::pair{"attempt_timeout", &out.attempt_timeout},
        std::pair{"retry_horizon", &out.retry_horizon}, std::pair{"max_backoff", &out.max_backoff},
        std::pair{"breaker_cool_down", &out.breaker_cool_down},
        std::pair{"breaker_max_cool_down", &out.breaker_max_cool_down}}) {
    if (auto v = r.string(*t, "delivery", key)) {
      auto d = parse_duration(*v);
      if (!d || d->count() <= 0) {
        r.problem(t->get(key)->source(), "delivery." + std::string(key) +
                                             ": expected a positive duration like \"30s\", "
                                             "\"15m\" or \"24h\", got " +
                                             quoted(*v));
      } else {
        *field = *d;
      }
    }
  }
  if (t->get("attempt_timeout") != nullptr) {
    for (auto& [kind, timeout] : out.timeouts) {
      timeout = out.attempt_timeout;
    }
  }
  if (const toml::table* timeouts = r.table(*t, "delivery", "timeouts")) {
    r.check_keys(
        *timeouts, "delivery.timeouts",
        {"slack", "teams", "mattermost", "discord", "googlechat", "webhook", "sms", "email"});
    for (auto&& [key, node] : *timeouts) {
      std::string kind(key.str());
      auto v = r.string(*timeouts, "delivery.timeouts", kind);
      if (!v) {
        continue;
      }
      auto d = parse_duration(*v);
      if (!d || d->count() <= 0) {
        r.problem(node.source(), "delivery.timeouts." + kind +
                                     ": expected a positive duration like \"10s\" or \"1m\", "
                                     "got " +
                                     quoted(*v));
      } else {
        out.timeouts[kind] = *d;
      }
    }
  }
  if (const toml::node* node = t->get("retry_schedule")) {
    const char* expected = "an array of durations like [\"5s\", \"5m\", \"30m\", \"2h\"]";
    if (!node->is_array() || node->as_array()->empty()) {
      r.type_problem(*node, "delivery.retry_schedule", expected);
    } else if (node->as_array()->size() > 100) {
      r.problem(node->source(), "delivery.retry_schedule: at most 100 steps, got " +
                                    std::to_string(node->as_array()->size()));
    } else {
      std::vector<Millis> steps;
      for (const toml::node& item : *node->as_array()) {
        if (!item.is_string()) {
          r.type_problem(item, "delivery.retry_schedule", expected);
          continue;
        }
        auto d = parse_duration(item.as_string()->get());
        if (!d || d->count() <= 0) {
          r.problem(item.source(),
                    "delivery.retry_schedule: expected a positive duration like \"5m\", got " +
                        quoted(item.as_string()->get()));
          continue;
        }
        steps.push_back(*d);
      }
      if (steps.size() == node->as_array()->size()) {
        out.retry_schedule = std::move(steps);
      }
    }
  }
}

void read_log(Reader& r, const toml::table& root, LogConfig& out) {
  const toml::table* t = r.table(root, "", "log");
  if (t == nullptr) {
    return;
  }
  r.check_keys(*t, "log", {"level", "format", "sink"});
  for (auto [key, field, allowed] :
       {std::tuple{"level", &out.level, std::span<const std::string_view>(kLogLevels)},
        std::tuple{"format", &out.format, std::span<const std::string_view>(kLogFormats)},
        std::tuple{"sink", &out.sink, std::span<const std::string_view>(kLogSinks)}}) {
    if (auto v = r.string(*t, "log", key)) {
      if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
        std::string names;
        for (auto a : allowed) {
          names += (names.empty() ? "" : ", ") + std::string(a);
        }
        r.problem(t->get(key)->source(),
                  "log." + std::string(key) + ": expected one of " + names + ", got " + quoted(*v));
      }
      *field = *v;
    }
  }
}

Error config_error(std::string message) {
  return make_error(ErrorKind::invalid, "invalid_config", std::move(message));
}

// toml++ descriptions can quote the text they stumbled on, which may be part of a secret: keep
// them only when the offending line holds no secret key.
std::string syntax_description(std::string_view text, const toml::parse_error& e) {
  std::string_view line = text;
  for (uint32_t n = 1; n < e.source().begin.line; ++n) {
    auto nl = line.find('\n');
    if (nl == std::string_view::npos) {
      break;
    }
    line.remove_prefix(nl + 1);
  }
  line = line.substr(0, line.find('\n'));
  for (std::string_view secret : {"password", "auth_token"}) {
    if (line.find(secret) != std::string_view::npos) {
      return "TOML syntax error on a line holding a secret (details withheld)";
    }
  }
  return "TOML syntax error: " + std::string(e.description());
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view source_name,
                            const Getenv& getenv) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    return config_error(std::string(source_name) + ":" + std::to_string(e.source().begin.line) +
                        ":" + std::to_string(e.source().begin.column) + ": " +
                        syntax_description(toml_text, e));
  }

  auto env = [&](const std::string& name) -> std::optional<std::string> {
    return getenv ? getenv(name) : std::nullopt;
  };

  Reader r(source_name);
  Config config;
  r.check_keys(root, "",
               {"server", "storage", "tokens", "smtp", "sms", "network", "nats", "delivery",
                "audit", "log"});
  read_server(r, root, config.server);
  read_storage(r, root, config.storage);
  read_tokens(r, root, config.tokens);
  read_smtp(r, root, config.smtp);
  read_sms(r, root, env("HERALD_SMS_AUTH_TOKEN"), config.sms);
  read_network(r, root, config.network);
  read_nats(r, root, config.nats);
  read_delivery(r, root, config.delivery);
  read_audit(r, root, config.audit);
  read_log(r, root, config.log);
  if (!r.ok()) {
    return config_error(r.report());
  }
  if (config.smtp) {
    if (auto password = env("HERALD_SMTP_PASSWORD"); password && !password->empty()) {
      config.smtp->password = *password;
    }
  }
  return config;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return config_error(path + ": cannot read: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  });
}

}  // namespace herald::config
