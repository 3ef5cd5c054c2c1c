// Fuzz target "config": TOML text through config::parse_config, the loader behind
// `herald serve` and `herald check-config` (load_config_file only adds reading the file).
// Checked: a refusal names the file and position ("fuzz.toml:LINE:COLUMN: ..."), and never
// quotes the SMTP password or SMS auth token, whether from the file or the environment.
#include <toml++/toml.h>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config/config.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

constexpr std::string_view kEnvPassword = "env-smtp-password-0xC0FFEE";
constexpr std::string_view kEnvToken = "env-sms-token-0xBADC0DE";

std::optional<std::string> getenv_stub(const std::string& name) {
  if (name == "HERALD_SMTP_PASSWORD") {
    return std::string(kEnvPassword);
  }
  if (name == "HERALD_SMS_AUTH_TOKEN") {
    return std::string(kEnvToken);
  }
  return std::nullopt;
}

// The secret the file itself holds at TABLE.KEY, when the file is TOML at all.
std::string secret_in(const toml::table& root, std::string_view table, std::string_view key) {
  if (auto value = root[table][key].value<std::string>()) {
    return *value;
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = herald::config::parse_config(text, "fuzz.toml", getenv_stub);
  if (config) {
    FUZZ_CHECK(config->server.public_url.empty() || config->server.public_url.back() != '/');
    if (config->smtp) {
      FUZZ_CHECK(config->smtp->password == kEnvPassword);
    }
    return 0;
  }
  const std::string& message = config.error().message;
  FUZZ_CHECK(message.rfind("fuzz.toml:", 0) == 0);
  for (std::string_view secret : {kEnvPassword, kEnvToken}) {
    // (The file may spell the same bytes itself: the fuzzer learns them from this check.)
    FUZZ_CHECK(message.find(secret) == std::string::npos || text.find(secret) != text.npos);
  }
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error&) {
    return 0;
  }
  // The file's own secrets: each is replaced in the text by a marker, and the refusal of that
  // file must not quote the marker. (Looking for the secret itself in the message would flag a
  // secret that merely resembles the message, "fuzz.toml:1:1" say.)
  constexpr std::string_view kMarker = "Qz7-secret-marker-7zQ";
  const std::pair<const char*, const char*> kSecrets[] = {{"smtp", "password"},
                                                          {"sms", "auth_token"}};
  for (const auto& [table, key] : kSecrets) {
    const std::string secret = secret_in(root, table, key);
    if (secret.empty() || text.find(kMarker) != text.npos) {
      continue;
    }
    // The value as written: quoted, with nothing to unescape, once.
    std::string marked(text);
    bool replaced = false;
    for (const char quote : {'"', '\''}) {
      const std::string written = quote + secret + quote;
      const size_t at = text.find(written);
      if (at != text.npos && text.find(written, at + 1) == text.npos) {
        marked.replace(at + 1, secret.size(), kMarker);
        replaced = true;
        break;
      }
    }
    try {
      if (!replaced || secret_in(toml::parse(marked), table, key) != kMarker) {
        continue;  // not where we thought: no conclusion
      }
    } catch (const toml::parse_error&) {
      continue;
    }
    auto again = herald::config::parse_config(marked, "fuzz.toml", getenv_stub);
    FUZZ_CHECK(again || again.error().message.find(kMarker) == std::string::npos);
  }
  return 0;
}
