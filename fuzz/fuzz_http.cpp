// Fuzz target "http": raw bytes of one HTTP/1.1 connection through http::serve_bytes (the
// server's own parser, limits, error answers and response writing, without a socket) into
// api::Api::handle (the daemon's router, token and scope checks, and every handler) over a real
// store: an SQLite database in a temporary directory (under /dev/shm when there is one), set up
// once with a client, contacts, endpoints and a plan, so that events plan real messages.
// The token "fuzz-token" has every scope; the seeds use it.
//
// Checked: no handler answers 5xx (an exception or a failure inside it) or throws, every
// handler answers (one that does not is libFuzzer's -timeout), and the server's output starts
// with a status line. The database keeps what earlier inputs stored (a fresh one per input
// would cost more than the input), so a crash may need the inputs before it: libFuzzer's crash
// file is then the last one only.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "daemon/api/api.hpp"
#include "daemon/core/crypto.hpp"
#include "daemon/core/metrics.hpp"
#include "daemon/core/time.hpp"
#include "daemon/http/server.hpp"
#include "daemon/ingest/ingest.hpp"
#include "daemon/store/store.hpp"
#include "fuzz/fuzz_support.hpp"

#include <spdlog/spdlog.h>

namespace {

using namespace herald;

std::string& database_dir() {
  static std::string dir;
  return dir;
}

// A new directory for the database, removed when the fuzzer exits normally (libFuzzer calls
// exit() at the end of a run; after a crash it stays, with the crash's database in it).
std::string temp_dir() {
  std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string pattern = base + "/herald-fuzz-http-XXXXXX";
  FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr);
  database_dir() = pattern;
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(database_dir(), ignored);
  });
  return pattern;
}

std::string request(std::string_view method, std::string_view target, std::string_view body) {
  return std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer fuzz-token\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

struct Fixture {
  Fixture()
      : dir(temp_dir()),
        store(store::Store::open(dir + "/herald.db").value()),
        clock(parse_rfc3339("2026-12-04T10:00:00Z").value()),
        ingestor(*store, clock, [] {}),
        api(options(), *store, ingestor, clock, metrics, [] {}) {
    FUZZ_CHECK(api.load_stored_tokens());
    // A handler that never answers is libFuzzer's timeout (-timeout in run.sh), not a 503.
    http_options.handler_timeout = Millis{3'600'000};
    // Every answer the API gives is looked at before the server writes it: a 5xx is an
    // exception or a failure inside a handler; an exception escaping the API would be too.
    handler = [this](http::Request&& r, http::Responder respond) {
      const std::string what = r.method + " " + r.target;
      try {
        api.handle(std::move(r), [respond, what](http::Response response) {
          if (response.status >= 500) {
            std::fprintf(stderr, "fuzz_http: %s answered %d: %s\n", what.c_str(), response.status,
                         response.body.c_str());
            std::abort();
          }
          respond(std::move(response));
        });
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_http: %s threw: %s\n", what.c_str(), e.what());
        std::abort();
      }
    };
    const std::pair<std::string, std::string> kSetup[] = {
        {"/v1/clients/acme", R"({"name": "Acme Corp", "timezone": "Europe/Berlin"})"},
        {"/v1/clients/acme/contacts/dana",
         R"({"name": "Dana Lee", "roles": ["legal", "executive"], "email": "dana@acme.example",
             "phone": "+15551234567", "timezone": "America/New_York",
             "quiet_hours": {"start": "22:00", "end": "07:00"}, "channels": ["email", "sms"]})"},
        {"/v1/clients/acme/contacts/tim",
         R"({"name": "Tim Okafor", "roles": ["technician"], "email": "tim@msp.example",
             "timezone": "Europe/Berlin", "channels": ["email"]})"},
        {"/v1/clients/acme/endpoints/soc-slack",
         R"({"type": "slack", "url": "https://hooks.slack.example/T000/B000/XXXX"})"},
        {"/v1/clients/acme/endpoints/siem",
         R"({"type": "webhook", "url": "https://siem.acme.example/hooks",
             "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})"},
        {"/v1/clients/acme/plan",
         R"({"rules": [
             {"id": "techs", "phases": ["identification", "containment", "recovery"],
              "min_severity": "low", "roles": ["technician"], "channels": ["email"],
              "repeat": "30m", "escalate": {"after": "15m", "to_roles": ["executive"]}},
             {"id": "execs", "phases": ["containment"], "min_severity": "high",
              "roles": ["executive", "legal"], "channels": ["email", "sms"]},
             {"id": "room", "phases": ["identification", "containment"], "min_severity": "low",
              "endpoints": ["soc-slack", "siem"], "delay": "0s"}]})"},
    };
    for (const auto& [target, body] : kSetup) {
      const std::string answer =
          http::serve_bytes(http_options, request("PUT", target, body), handler);
      if (answer.rfind("HTTP/1.1 2", 0) != 0) {
        std::fprintf(stderr, "fuzz_http: setting up %s failed:\n%s\n", target.c_str(),
                     answer.c_str());
        std::abort();
      }
    }
  }

  static api::ApiOptions options() {
    api::ApiOptions o;
    api::Token token;
    token.name = "fuzz";
    token.sha256 = sha256_hex("fuzz-token");
    token.scopes = {"admin", "audit", "ingest"};
    o.tokens.push_back(std::move(token));
    o.public_url = "http://127.0.0.1:8080";
    o.version = "fuzz";
    o.ack_key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    return o;
  }

  std::string dir;
  std::unique_ptr<store::Store> store;
  ManualClock clock;
  Metrics metrics;
  ingest::Ingestor ingestor;
  api::Api api;
  http::ServerOptions http_options;
  http::Handler handler;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: the store's threads outlive the fuzzing loop; reachable, so no leak.
  static Fixture* fixture = new Fixture();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string output = http::serve_bytes(fixture->http_options, input, fixture->handler);

  FUZZ_CHECK(output.empty() || output.rfind("HTTP/1.", 0) == 0);
  return 0;
}
