// API tokens managed through the API (POST/GET/DELETE /v1/tokens, scope admin): a new token is
// shown once, in the answer that creates it; only its SHA-256 is stored, and neither the token
// nor its hash ever appears in a listing, the audit log or the log.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "daemon/api/context.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::api {

// ---- TokenRegistry -------------------------------------------------------------------------

std::optional<Token> TokenRegistry::find(std::string_view digest, Timestamp now) {
  std::lock_guard lock(mutex_);
  const Token* found = nullptr;
  // Every token is compared, in constant time, so timing tells nothing of which matched.
  for (const auto* list : {&config_, &stored_}) {
    for (const auto& t : *list) {
      if (constant_time_equal(digest, t.sha256)) {
        found = &t;
      }
    }
  }
  if (!found) {
    return std::nullopt;
  }
  auto it = last_used_.find(found->name);
  if (it == last_used_.end()) {
    last_used_.emplace(found->name, now);
  } else {
    it->second = std::max(it->second, now);
  }
  return *found;
}

std::vector<Token> TokenRegistry::all() const {
  std::lock_guard lock(mutex_);
  std::vector<Token> out = config_;
  out.insert(out.end(), stored_.begin(), stored_.end());
  std::sort(out.begin(), out.end(), [](const Token& a, const Token& b) { return a.name < b.name; });
  return out;
}

std::optional<Timestamp> TokenRegistry::last_used(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = last_used_.find(name);
  return it == last_used_.end() ? std::nullopt : std::optional<Timestamp>(it->second);
}

bool TokenRegistry::is_config(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return std::any_of(config_.begin(), config_.end(),
                     [&](const Token& t) { return t.name == name; });
}

namespace {

Status clash(const std::vector<Token>& config, const std::vector<Token>& stored) {
  for (const auto& c : config) {
    for (const auto& s : stored) {
      if (c.name == s.name) {
        return make_error(
            ErrorKind::conflict, "token_name_clash",
            fmt::format("token \"{}\" is both in the config file and made through the API: "
                        "rename the config file's, or delete the API's (herald tokens delete {})",
                        c.name, c.name));
      }
    }
  }
  return {};
}

}  // namespace

Status TokenRegistry::set_config(std::vector<Token> tokens) {
  std::lock_guard lock(mutex_);
  if (auto st = clash(tokens, stored_); !st) {
    return st;
  }
  config_ = std::move(tokens);
  return {};
}

Status TokenRegistry::set_stored(std::vector<Token> tokens) {
  std::lock_guard lock(mutex_);
  if (auto st = clash(config_, tokens); !st) {
    return st;
  }
  stored_ = std::move(tokens);
  return {};
}

void TokenRegistry::add_stored(Token token) {
  std::lock_guard lock(mutex_);
  stored_.push_back(std::move(token));
}

void TokenRegistry::remove_stored(std::string_view name) {
  std::lock_guard lock(mutex_);
  stored_.erase(std::remove_if(stored_.begin(), stored_.end(),
                               [&](const Token& t) { return t.name == name; }),
                stored_.end());
  last_used_.erase(std::string(name));
}

// ---- handlers ------------------------------------------------------------------------------

namespace {

constexpr std::string_view kTokenPrefix = "hrd_";
const std::set<std::string> kScopes = {"admin", "audit", "ingest"};

Error unprocessable(std::string code, std::string field, std::string message) {
  return make_error(ErrorKind::unprocessable, std::move(code), std::move(message),
                    std::move(field));
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// 256 random bits, base64url without padding, after a prefix that secret scanners can match.
std::string new_token() {
  std::string b64 = base64_encode(random_bytes(32));
  std::string out(kTokenPrefix);
  for (char c : b64) {
    if (c == '+') {
      out += '-';
    } else if (c == '/') {
      out += '_';
    } else if (c != '=') {
      out += c;
    }
  }
  return out;
}

// What a listing and the audit log may show of a token: never the token, never its hash.
json token_json(const Token& t, std::optional<Timestamp> last_used, Timestamp now) {
  json j{{"name", t.name},
         {"scopes", t.scopes},
         {"source", t.stored ? "api" : "config"},
         {"created_at", time_json(t.created_at)},
         {"created_by", t.stored ? json(t.created_by) : json(nullptr)},
         {"expires_at", time_json(t.expires_at)},
         {"expired", t.expires_at.has_value() && *t.expires_at <= now},
         {"last_used_at", time_json(last_used)}};
  return j;
}

json audit_json(const Token& t) {
  return json{{"name", t.name}, {"scopes", t.scopes}, {"expires_at", time_json(t.expires_at)}};
}

Result<Token> parse_new_token(const json& body, Timestamp now) {
  if (!body.is_object()) {
    return make_error(ErrorKind::unprocessable, "invalid_body", "the body must be a JSON object");
  }
  for (const auto& [key, _] : body.items()) {
    if (key != "name" && key != "scopes" && key != "expires_at") {
      return unprocessable("unknown_field", key, fmt::format("unknown field \"{}\"", key));
    }
  }
  Token t;
  t.stored = true;
  t.created_at = now;
  if (!body.contains("name") || !body["name"].is_string()) {
    return unprocessable("missing_field", "name", "name is required: a string");
  }
  t.name = body["name"].get<std::string>();
  if (!valid_name(t.name)) {
    return unprocessable("invalid_field", "name",
                         "name must be 1-64 letters, digits, '-', '_' or '.'");
  }
  if (!body.contains("scopes") || !body["scopes"].is_array() || body["scopes"].empty()) {
    return unprocessable("missing_field", "scopes",
                         "scopes is required: a non-empty array of \"admin\", \"audit\", "
                         "\"ingest\"");
  }
  for (size_t i = 0; i < body["scopes"].size(); ++i) {
    const auto& v = body["scopes"][i];
    if (!v.is_string() || !kScopes.count(v.get<std::string>())) {
      return unprocessable("invalid_scope", fmt::format("scopes[{}]", i),
                           fmt::format("scopes[{}] must be \"admin\", \"audit\" or \"ingest\"", i));
    }
    if (std::find(t.scopes.begin(), t.scopes.end(), v.get<std::string>()) == t.scopes.end()) {
      t.scopes.push_back(v.get<std::string>());
    }
  }
  if (body.contains("expires_at") && !body["expires_at"].is_null()) {
    const auto& v = body["expires_at"];
    auto at = v.is_string() ? parse_rfc3339(v.get<std::string>()) : std::nullopt;
    if (!at) {
      return unprocessable("invalid_field", "expires_at",
                           "expires_at must be an RFC 3339 time like \"2027-01-01T00:00:00Z\"");
    }
    if (*at <= now) {
      return unprocessable("invalid_field", "expires_at", "expires_at must be in the future");
    }
    t.expires_at = *at;
  }
  return t;
}

}  // namespace

void post_token(Services& s, const Call& c, const http::Responder& respond) {
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto now = s.clock.now();
  auto parsed = parse_new_token(*body, now);
  if (!parsed) {
    respond(error_response(parsed.error()));
    return;
  }
  Token token = std::move(*parsed);
  token.created_by = c.actor;
  std::string plaintext = new_token();
  token.sha256 = sha256_hex(plaintext);

  s.store.write(
      [&s, token, now](store::Repo& repo) -> Status {
        if (s.tokens.is_config(token.name)) {
          return make_error(ErrorKind::conflict, "token_exists",
                            fmt::format("token \"{}\" is defined in the config file", token.name),
                            "name");
        }
        store::ApiToken row{token.name, token.sha256,     token.scopes,
                            now,        token.created_by, token.expires_at};
        auto inserted = repo.insert_api_token(row);
        if (!inserted) {
          return inserted.error();
        }
        if (!*inserted) {
          return make_error(ErrorKind::conflict, "token_exists",
                            fmt::format("a token named \"{}\" exists already: delete it first, "
                                        "or choose another name",
                                        token.name),
                            "name");
        }
        json data{{"before", nullptr}, {"after", audit_json(token)}};
        return repo.audit("token.create", token.created_by, "", token.name, data.dump(), now);
      },
      [&s, respond, token, plaintext, now](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        s.tokens.add_stored(token);
        spdlog::info("token \"{}\" created by \"{}\" with scopes {}", token.name, token.created_by,
                     fmt::join(token.scopes, ","));
        json out = token_json(token, std::nullopt, now);
        out["token"] = plaintext;
        respond(json_response(201, out));
      });
}

void list_tokens(Services& s, const Call&, const http::Responder& respond) {
  auto now = s.clock.now();
  json items = json::array();
  for (const auto& t : s.tokens.all()) {
    items.push_back(token_json(t, s.tokens.last_used(t.name), now));
  }
  respond(json_response(200, json{{"items", items}}));
}

void delete_token(Services& s, const Call& c, const http::Responder& respond) {
  std::string name = c.param("name");
  if (s.tokens.is_config(name)) {
    respond(error_response(make_error(
        ErrorKind::conflict, "token_in_config",
        fmt::format("token \"{}\" is defined in the config file: remove it there and reload "
                    "(systemctl reload herald)",
                    name))));
    return;
  }
  auto before = std::make_shared<std::optional<Token>>();
  for (const auto& t : s.tokens.all()) {
    if (t.name == name) {
      *before = t;
    }
  }
  s.store.write(
      [&s, name, actor = c.actor, before](store::Repo& repo) -> Status {
        auto deleted = repo.delete_api_token(name);
        if (!deleted) {
          return deleted.error();
        }
        if (!*deleted) {
          return make_error(ErrorKind::not_found, "not_found",
                            fmt::format("unknown token \"{}\"", name));
        }
        json data{{"before", *before ? audit_json(**before) : json{{"name", name}}},
                  {"after", nullptr}};
        return repo.audit("token.delete", actor, "", name, data.dump(), s.clock.now());
      },
      [&s, respond, name, actor = c.actor](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        // Refused from now on: the registry changes before the answer goes out.
        s.tokens.remove_stored(name);
        spdlog::info("token \"{}\" revoked by \"{}\"", name, actor);
        respond(http::Response{204, "", {}, ""});
      });
}

}  // namespace herald::api
