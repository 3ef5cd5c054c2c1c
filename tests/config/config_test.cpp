#include "daemon/config/config.hpp"

#include <gtest/gtest.h>

#include <map>

namespace herald::config {
namespace {

using namespace std::chrono_literals;

Getenv no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

Getenv env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

const std::string kHash = "7c43ef5ae21d43ce2743f770c68e24def1a43ee2f416d2438410c8af7af2ff2c";

TEST(ConfigTest, ExampleFileParses) {
  auto config = load_config_file(std::string(HERALD_SOURCE_DIR) + "/examples/herald.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.host, "127.0.0.1");
  EXPECT_EQ(config->server.port, 8080);
  EXPECT_EQ(config->server.public_url, "http://127.0.0.1:8080");
  EXPECT_EQ(config->storage.database, "var/herald.db");
  ASSERT_EQ(config->tokens.size(), 1u);
  EXPECT_EQ(config->tokens[0].name, "demo");
  EXPECT_EQ(config->tokens[0].sha256, kHash);
  EXPECT_EQ(config->tokens[0].scopes, (std::vector<std::string>{"admin", "audit", "ingest"}));
  ASSERT_TRUE(config->smtp.has_value());
  EXPECT_EQ(config->smtp->url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(config->smtp->from, "Herald <herald@msp.example>");
  EXPECT_EQ(config->smtp->tls, "opportunistic");
  ASSERT_TRUE(config->sms.has_value());
  EXPECT_EQ(config->sms->base_url, "http://127.0.0.1:8025");
  EXPECT_EQ(config->sms->account_sid, "ACdemo");
  EXPECT_EQ(config->sms->auth_token, "demo");
  EXPECT_EQ(config->sms->from, "+15550000000");
  EXPECT_EQ(config->network.allow_private, (std::vector<std::string>{"127.0.0.0/8"}));
  EXPECT_FALSE(config->nats.has_value());
}

TEST(ConfigTest, EmptyFileGivesDefaults) {
  auto config = parse_config("", "herald.toml", no_env());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.host, "127.0.0.1");
  EXPECT_EQ(config->server.port, 8080);
  EXPECT_EQ(config->server.public_url, "http://127.0.0.1:8080");
  EXPECT_EQ(config->storage.database, "/var/lib/herald/herald.db");
  EXPECT_TRUE(config->tokens.empty());
  EXPECT_FALSE(config->smtp.has_value());
  EXPECT_FALSE(config->sms.has_value());
  EXPECT_EQ(config->delivery.concurrency, 64);
  EXPECT_EQ(config->delivery.attempt_timeout, Millis(30'000));
  EXPECT_EQ(config->delivery.retry_horizon, Millis(24h));
  EXPECT_EQ(config->delivery.max_backoff, Millis(0));  // none: the retry schedule decides
  EXPECT_EQ(config->log.level, "info");
  EXPECT_EQ(config->log.format, "text");
  EXPECT_EQ(config->log.sink, "auto");
}

TEST(ConfigTest, EveryKeyRead) {
  auto config = parse_config(R"(
[server]
listen = "[::1]:0"
public_url = "https://herald.msp.example/"
[smtp]
url = "smtps://mail.example:465"
tls = "required"
from = "alerts@msp.example"
username = "u"
password = "p"
[nats]
url = "tls://nats.example:4222"
stream = "S"
subject = "a.b"
consumer = "c"
[delivery]
concurrency = 4
attempt_timeout = "10s"
retry_horizon = "2h"
max_backoff = "5m"
[log]
level = "debug"
format = "json"
sink = "journal"
[network]
allow_private = ["10.0.0.0/8", "fd00::/8", "::1/128", "0.0.0.0/0"]
)",
                             "h.toml", no_env());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.host, "::1");
  EXPECT_EQ(config->server.port, 0);
  EXPECT_EQ(config->server.public_url, "https://herald.msp.example");
  EXPECT_EQ(config->smtp->tls, "required");
  EXPECT_EQ(config->smtp->password, "p");
  EXPECT_EQ(config->nats->url, "tls://nats.example:4222");
  EXPECT_EQ(config->nats->consumer, "c");
  EXPECT_EQ(config->delivery.concurrency, 4);
  EXPECT_EQ(config->delivery.attempt_timeout, Millis(10'000));
  EXPECT_EQ(config->delivery.retry_horizon, Millis(2h));
  EXPECT_EQ(config->delivery.max_backoff, Millis(5min));
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.format, "json");
  EXPECT_EQ(config->log.sink, "journal");
  EXPECT_EQ(config->network.allow_private.size(), 4u);
}

TEST(ConfigTest, NatsDefaults) {
  auto config = parse_config("[nats]\nurl = \"nats://127.0.0.1:4222\"\n", "h.toml", no_env());
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->nats->stream, "INCIDENTS");
  EXPECT_EQ(config->nats->subject, "incidents.phase");
  EXPECT_EQ(config->nats->consumer, "herald");
  EXPECT_EQ(config->nats->batch, 128);
  EXPECT_EQ(config->nats->ack_wait, Millis{30'000});
  auto tuned =
      parse_config("[nats]\nurl = \"nats://127.0.0.1:4222\"\nbatch = 16\nack_wait = \"2s\"\n",
                   "h.toml", no_env());
  ASSERT_TRUE(tuned.ok()) << tuned.error().message;
  EXPECT_EQ(tuned->nats->batch, 16);
  EXPECT_EQ(tuned->nats->ack_wait, Millis{2'000});
}

TEST(ConfigTest, ListenForms) {
  struct Case {
    std::string listen;
    std::string host;
    uint16_t port;
  };
  for (const auto& c : std::vector<Case>{{"127.0.0.1:8080", "127.0.0.1", 8080},
                                         {"localhost:0", "localhost", 0},
                                         {"herald.internal:65535", "herald.internal", 65535},
                                         {"[::1]:9000", "::1", 9000},
                                         {"0.0.0.0:1", "0.0.0.0", 1}}) {
    auto config =
        parse_config("[server]\nlisten = \"" + c.listen + "\"\n", "herald.toml", no_env());
    ASSERT_TRUE(config.ok()) << c.listen << ": " << config.error().message;
    EXPECT_EQ(config->server.host, c.host);
    EXPECT_EQ(config->server.port, c.port);
    EXPECT_EQ(config->server.public_url, "http://" + c.listen);
  }
}

const std::string kSmtp = "[smtp]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"h@msp.example\"\n";

TEST(ConfigTest, BadConfigsNameFileLineAndKey) {
  struct Case {
    std::string name;
    std::string toml;
    std::string message;  // the whole message
  };
  const std::vector<Case> cases = {
      {"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\n\n" + kSmtp + "pasword = \"x\"\n",
       "herald.toml:7:1: unknown key \"smtp.pasword\""},
      {"unknown table", "[sever]\nlisten = \"127.0.0.1:1\"\n",
       "herald.toml:1:2: unknown key \"sever\""},
      {"unknown top key", "debug = true\n", "herald.toml:1:1: unknown key \"debug\""},
      {"unknown token key",
       "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash + "\"\nscopes = [\"admin\"]\nscope = 1\n",
       "herald.toml:5:1: unknown key \"tokens[0].scope\""},
      {"wrong type", "[server]\nlisten = 8080\n",
       "herald.toml:2:10: server.listen: expected a string, got an integer"},
      {"wrong table type", "server = \"x\"\n",
       "herald.toml:1:10: server: expected a table, got a string"},
      {"bad listen", "[server]\n\nlisten = \"localhost\"\n",
       "herald.toml:3:10: server.listen: expected \"host:port\", got \"localhost\""},
      {"bad listen port", "[server]\nlisten = \"127.0.0.1:70000\"\n",
       "herald.toml:2:10: server.listen: expected \"host:port\", got \"127.0.0.1:70000\""},
      {"bad listen ipv4", "[server]\nlisten = \"300.1.1.1:80\"\n",
       "herald.toml:2:10: server.listen: expected \"host:port\", got \"300.1.1.1:80\""},
      {"bad listen ipv6", "[server]\nlisten = \"::1:80\"\n",
       "herald.toml:2:10: server.listen: expected \"host:port\", got \"::1:80\""},
      {"bad public url", "[server]\npublic_url = \"herald.example\"\n",
       "herald.toml:2:14: server.public_url: expected an http:// or https:// URL, got "
       "\"herald.example\""},
      {"bad sha256",
       "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash.substr(0, 63) + "X" +
           "\"\nscopes = [\"admin\"]\n",
       "herald.toml:3:10: tokens[0].sha256: expected 64 lowercase hex characters (the SHA-256 "
       "of the token), got 64 characters"},
      {"short sha256", "[[tokens]]\nname = \"a\"\nsha256 = \"abc\"\nscopes = [\"admin\"]\n",
       "herald.toml:3:10: tokens[0].sha256: expected 64 lowercase hex characters (the SHA-256 "
       "of the token), got 3 characters"},
      {"bad scope",
       "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash + "\"\nscopes = [\"admin\", \"root\"]\n",
       "herald.toml:4:20: tokens[0].scopes: unknown scope \"root\" (expected one of admin, "
       "audit, ingest)"},
      {"empty scopes", "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash + "\"\nscopes = []\n",
       "herald.toml:4:10: tokens[0].scopes: must name at least one of admin, audit, ingest"},
      {"missing token name", "[[tokens]]\nsha256 = \"" + kHash + "\"\nscopes = [\"admin\"]\n",
       "herald.toml:1:1: tokens[0].name: required"},
      {"duplicate token name",
       "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash + "\"\nscopes = [\"admin\"]\n" +
           "[[tokens]]\nname = \"a\"\nsha256 = \"" + kHash + "\"\nscopes = [\"audit\"]\n",
       "herald.toml:6:8: tokens[1].name: \"a\" is used by another token"},
      {"bad cidr", "[network]\nallow_private = [\"127.0.0.0/8\", \"10.0.0.0/33\"]\n",
       "herald.toml:2:33: network.allow_private: expected a CIDR like \"10.0.0.0/8\" or "
       "\"fd00::/8\", got \"10.0.0.0/33\""},
      {"cidr not an address", "[network]\nallow_private = [\"10.0.0/8\"]\n",
       "herald.toml:2:18: network.allow_private: expected a CIDR like \"10.0.0.0/8\" or "
       "\"fd00::/8\", got \"10.0.0/8\""},
      {"bad smtp url", "[smtp]\nurl = \"http://mail.example\"\nfrom = \"h@msp.example\"\n",
       "herald.toml:2:7: smtp.url: expected smtp://HOST:PORT or smtps://HOST:PORT, got "
       "\"http://mail.example\""},
      {"missing smtp from", "\n[smtp]\nurl = \"smtp://127.0.0.1:25\"\n",
       "herald.toml:2:1: smtp.from: required"},
      {"missing smtp url", "[smtp]\nfrom = \"h@msp.example\"\n",
       "herald.toml:1:1: smtp.url: required"},
      {"bad smtp from", "[smtp]\nurl = \"smtp://h:25\"\nfrom = \"Herald herald@\"\n",
       "herald.toml:3:8: smtp.from: expected \"Name <addr@domain>\" or \"addr@domain\", got "
       "\"Herald herald@\""},
      {"bad smtp tls", kSmtp + "tls = \"always\"\n",
       "herald.toml:4:7: smtp.tls: expected \"opportunistic\" or \"required\", got \"always\""},
      {"bad sms from", "[sms]\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"5550000000\"\n",
       "herald.toml:4:8: sms.from: expected an E.164 number like \"+15550000000\", got "
       "\"5550000000\""},
      {"missing sms sid", "[sms]\nauth_token = \"t\"\nfrom = \"+15550000000\"\n",
       "herald.toml:1:1: sms.account_sid: required"},
      {"bad sms base url",
       "[sms]\nbase_url = \"ftp://x\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\n"
       "from = \"+15550000000\"\n",
       "herald.toml:2:12: sms.base_url: expected an http:// or https:// URL, got \"ftp://x\""},
      {"bad nats url", "[nats]\nurl = \"http://n:4222\"\n",
       "herald.toml:2:7: nats.url: expected nats://HOST:PORT or tls://HOST:PORT, got "
       "\"http://n:4222\""},
      {"nats consumer with a dot", "[nats]\nurl = \"nats://n:4222\"\nconsumer = \"her.ald\"\n",
       "herald.toml:3:12: nats.consumer: must not contain spaces, '.', '*', '>', '/' or '\\', "
       "got \"her.ald\""},
      {"nats empty ca_file", "[nats]\nurl = \"tls://n:4222\"\nca_file = \"\"\n",
       "herald.toml:3:11: nats.ca_file: must not be empty"},
      {"nats batch range", "[nats]\nurl = \"nats://n:4222\"\nbatch = 5000\n",
       "herald.toml:3:9: nats.batch: expected 1 to 1024, got 5000"},
      {"nats ack_wait too short", "[nats]\nurl = \"nats://n:4222\"\nack_wait = \"10ms\"\n",
       "herald.toml:3:12: nats.ack_wait: expected a duration of at least 1s like \"30s\", got "
       "\"10ms\""},
      {"concurrency range", "[delivery]\nconcurrency = 0\n",
       "herald.toml:2:15: delivery.concurrency: expected 1 to 1024, got 0"},
      {"bad duration", "[delivery]\nretry_horizon = \"forever\"\n",
       "herald.toml:2:17: delivery.retry_horizon: expected a positive duration like \"30s\", "
       "\"15m\" or \"24h\", got \"forever\""},
      {"bad log level", "[log]\nlevel = \"verbose\"\n",
       "herald.toml:2:9: log.level: expected one of trace, debug, info, warn, error, got "
       "\"verbose\""},
      {"bad log format", "[log]\nformat = \"xml\"\n",
       "herald.toml:2:10: log.format: expected one of text, json, got \"xml\""},
      {"bad log sink", "[log]\nsink = \"syslog\"\n",
       "herald.toml:2:8: log.sink: expected one of auto, stderr, journal, got \"syslog\""},
      {"bad retain_bodies", "[audit]\nretain_bodies = \"90 days\"\n",
       "herald.toml:2:17: audit.retain_bodies: expected a duration of at least 1s like \"90d\", "
       "or \"forever\", got \"90 days\""},
      {"tiny prune_interval", "[audit]\nprune_interval = \"10ms\"\n",
       "herald.toml:2:18: audit.prune_interval: expected a duration of at least 1s like \"1h\", "
       "got \"10ms\""},
      {"unknown audit key", "[audit]\nretain = \"1d\"\n",
       "herald.toml:2:1: unknown key \"audit.retain\""},
      {"syntax error", "[server]\nlisten = \"127.0.0.1:8080\"\nport = \n",
       "herald.toml:3:8: TOML syntax error: "},
  };
  for (const auto& c : cases) {
    auto config = parse_config(c.toml, "herald.toml", no_env());
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_EQ(config.error().kind, ErrorKind::invalid) << c.name;
    EXPECT_EQ(config.error().code, "invalid_config") << c.name;
    if (c.name == "syntax error") {
      EXPECT_EQ(config.error().message.rfind(c.message, 0), 0u)
          << c.name << ": " << config.error().message;
    } else {
      EXPECT_EQ(config.error().message, c.message) << c.name;
    }
  }
}

TEST(ConfigTest, AuditRetention) {
  auto defaults = parse_config("", "herald.toml", no_env());
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->audit.retain_bodies);  // kept forever unless asked
  EXPECT_EQ(defaults->audit.prune_interval, 1h);
  auto set = parse_config("[audit]\nretain_bodies = \"90d\"\nprune_interval = \"15m\"\n",
                          "herald.toml", no_env());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->audit.retain_bodies, std::chrono::hours(24 * 90));
  EXPECT_EQ(set->audit.prune_interval, 15min);
  auto forever = parse_config("[audit]\nretain_bodies = \"forever\"\n", "herald.toml", no_env());
  ASSERT_TRUE(forever.ok());
  EXPECT_FALSE(forever->audit.retain_bodies);
}

TEST(ConfigTest, SeveralProblemsReportedInFileOrder) {
  auto config = parse_config("[log]\nlevel = \"x\"\n[server]\nlisten = \"y\"\nzzz = 1\n",
                             "herald.toml", no_env());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message,
            "herald.toml:2:9: log.level: expected one of trace, debug, info, warn, error, got "
            "\"x\"\n"
            "herald.toml:4:10: server.listen: expected \"host:port\", got \"y\"\n"
            "herald.toml:5:1: unknown key \"server.zzz\"");
}

TEST(ConfigTest, EnvironmentOverridesSecrets) {
  const std::string toml = kSmtp + "password = \"from-file\"\n" +
                           "[sms]\naccount_sid = \"AC1\"\nauth_token = \"file-token\"\n"
                           "from = \"+15550000000\"\n";
  auto plain = parse_config(toml, "h.toml", no_env());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->smtp->password, "from-file");
  EXPECT_EQ(plain->sms->auth_token, "file-token");

  auto overridden = parse_config(
      toml, "h.toml",
      env_of({{"HERALD_SMTP_PASSWORD", "env-pass"}, {"HERALD_SMS_AUTH_TOKEN", "env-token"}}));
  ASSERT_TRUE(overridden.ok()) << overridden.error().message;
  EXPECT_EQ(overridden->smtp->password, "env-pass");
  EXPECT_EQ(overridden->sms->auth_token, "env-token");
}

TEST(ConfigTest, EnvironmentSuppliesMissingAuthToken) {
  const std::string toml = "[sms]\naccount_sid = \"AC1\"\nfrom = \"+15550000000\"\n";
  auto missing = parse_config(toml, "h.toml", no_env());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "h.toml:1:1: sms.auth_token: required");

  auto supplied = parse_config(toml, "h.toml", env_of({{"HERALD_SMS_AUTH_TOKEN", "tok"}}));
  ASSERT_TRUE(supplied.ok()) << supplied.error().message;
  EXPECT_EQ(supplied->sms->auth_token, "tok");
}

TEST(ConfigTest, SecretsNeverInErrors) {
  const std::string secret = "hunter2-s3cr3t";
  const std::vector<std::string> configs = {
      // Other problems next to a valid secret.
      kSmtp + "password = \"" + secret + "\"\ntls = \"x\"\n",
      "[sms]\naccount_sid = \"AC1\"\nauth_token = \"" + secret + "\"\nfrom = \"1\"\n",
      // The secret's own line is broken.
      kSmtp + "password = \"" + secret + "\n",
      kSmtp + "password = " + secret + "\n",
      "[sms]\nauth_token = '" + secret + "\nfrom = \"+15550000000\"\n",
      // Credentials inside URLs.
      "[smtp]\nurl = \"ftp://user:" + secret + "@mail.example\"\nfrom = \"a@b.example\"\n",
      "[nats]\nurl = \"http://user:" + secret + "@nats.example\"\n",
      // A token pasted where its hash belongs.
      "[[tokens]]\nname = \"a\"\nsha256 = \"" + secret + "\"\nscopes = [\"admin\"]\n",
  };
  for (const auto& toml : configs) {
    auto config = parse_config(toml, "herald.toml", env_of({{"HERALD_SMTP_PASSWORD", secret}}));
    ASSERT_FALSE(config.ok()) << toml;
    EXPECT_EQ(config.error().message.find("s3cr3t"), std::string::npos) << config.error().message;
    EXPECT_EQ(config.error().message.find("hunter"), std::string::npos) << config.error().message;
  }
}

TEST(ConfigTest, MissingFile) {
  auto config = load_config_file("/nonexistent/herald.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, "invalid_config");
  EXPECT_NE(config.error().message.find("/nonexistent/herald.toml"), std::string::npos);
}

}  // namespace
}  // namespace herald::config
