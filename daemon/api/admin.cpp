// Clients, contacts, endpoints and plans: validated on the way in, secrets redacted on the way
// out, every change audited with its before and after.
#include <fmt/format.h>

#include <regex>
#include <set>

#include "daemon/api/context.hpp"
#include "daemon/core/crypto.hpp"
#include "daemon/plan/plan_json.hpp"
#include "daemon/plan/planner.hpp"
#include "daemon/schedule/schedule.hpp"

namespace herald::api {
namespace {

Error unprocessable(std::string code, std::string field, std::string message) {
  return make_error(ErrorKind::unprocessable, std::move(code), std::move(message),
                    std::move(field));
}

Error not_found(std::string what) {
  return make_error(ErrorKind::not_found, "not_found", std::move(what));
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

Status check_id(std::string_view id, std::string_view what) {
  if (!valid_id(id)) {
    return make_error(
        ErrorKind::invalid, "invalid_id",
        fmt::format("{} id \"{}\" must be 1-64 letters, digits, '-', '_' or '.'", what, id),
        std::string(what));
  }
  return {};
}

bool valid_timezone(const std::string& zone) {
  return schedule::is_known_zone(zone);
}

bool valid_email(const std::string& email) {
  static const std::regex kEmail(R"([^@\s<>()\[\],;:"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)");
  return email.size() <= 254 && std::regex_match(email, kEmail);
}

bool valid_e164(const std::string& phone) {
  static const std::regex kE164(R"(\+[1-9][0-9]{7,14})");
  return std::regex_match(phone, kE164);
}

std::optional<int> parse_clock(const json& v) {
  if (!v.is_string()) {
    return std::nullopt;
  }
  auto s = v.get<std::string>();
  static const std::regex kClock(R"(([01][0-9]|2[0-3]):([0-5][0-9]))");
  std::smatch m;
  if (!std::regex_match(s, m, kClock)) {
    return std::nullopt;
  }
  return std::stoi(m[1]) * 60 + std::stoi(m[2]);
}

std::string format_clock(int minutes) {
  return fmt::format("{:02}:{:02}", minutes / 60, minutes % 60);
}

Status reject_unknown(const json& body, const std::set<std::string>& known) {
  if (!body.is_object()) {
    return make_error(ErrorKind::unprocessable, "invalid_body", "the body must be a JSON object");
  }
  for (const auto& [key, _] : body.items()) {
    if (!known.count(key)) {
      return unprocessable("unknown_field", key, fmt::format("unknown field \"{}\"", key));
    }
  }
  return {};
}

Result<std::string> string_field(const json& body, const std::string& key, bool required,
                                 size_t max_length = 500) {
  if (!body.contains(key) || body[key].is_null()) {
    if (required) {
      return unprocessable("missing_field", key, fmt::format("{} is required", key));
    }
    return std::string{};
  }
  if (!body[key].is_string()) {
    return unprocessable("invalid_field", key, fmt::format("{} must be a string", key));
  }
  auto v = body[key].get<std::string>();
  if ((required && v.empty()) || v.size() > max_length) {
    return unprocessable("invalid_field", key,
                         fmt::format("{} must be 1 to {} characters", key, max_length));
  }
  return v;
}

Result<std::vector<std::string>> string_list(const json& body, const std::string& key) {
  std::vector<std::string> out;
  if (!body.contains(key) || body[key].is_null()) {
    return out;
  }
  if (!body[key].is_array()) {
    return unprocessable("invalid_field", key, fmt::format("{} must be an array of strings", key));
  }
  for (size_t i = 0; i < body[key].size(); ++i) {
    const auto& v = body[key][i];
    if (!v.is_string() || v.get<std::string>().empty()) {
      return unprocessable("invalid_field", fmt::format("{}[{}]", key, i),
                           fmt::format("{}[{}] must be a non-empty string", key, i));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

json client_json(const Client& c) {
  return json{{"id", c.id}, {"name", c.name}, {"timezone", c.timezone}, {"locale", c.locale}};
}

json contact_json(const Contact& c) {
  json j{{"id", c.id},
         {"client", c.client_id},
         {"name", c.name},
         {"roles", c.roles},
         {"email", c.email},
         {"phone", c.phone},
         {"timezone", c.timezone},
         {"channels", c.channels}};
  if (!c.chat.empty()) {
    j["chat"] = c.chat;
  }
  j["quiet_hours"] = c.quiet_hours ? json{{"start", format_clock(c.quiet_hours->start_minute)},
                                          {"end", format_clock(c.quiet_hours->end_minute)}}
                                   : json(nullptr);
  return j;
}

// Chat webhook URLs carry their credential in the path: only scheme and host are shown.
std::string redact_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return "[redacted]";
  }
  auto host_end = url.find('/', scheme_end + 3);
  return url.substr(0, host_end == std::string::npos ? url.size() : host_end) + "/[redacted]";
}

json endpoint_json(const Endpoint& e) {
  json secrets = json::array();
  for (size_t i = 0; i < e.secrets.size(); ++i) {
    secrets.push_back("whsec_[redacted]");
  }
  json j{{"id", e.id},
         {"client", e.client_id},
         {"type", std::string(to_string(e.type))},
         {"url", redact_url(e.url)},
         {"enabled", e.enabled}};
  if (e.type == EndpointType::webhook) {
    j["secrets"] = secrets;
  }
  return j;
}

// Runs a write that also appends an audit record, and answers with `body` on commit.
void write_and_respond(Services& s, std::function<Status(store::Repo&)> fn,
                       std::function<http::Response()> on_success, const http::Responder& respond) {
  s.store.write(std::move(fn), [respond, on_success = std::move(on_success)](Status st) {
    respond(st ? on_success() : error_response(st.error()));
  });
}

Status audit_change(store::Repo& repo, Services& s, const std::string& actor, std::string_view kind,
                    std::string_view client, std::string_view subject, const json& before,
                    const json& after) {
  json data{{"before", before}, {"after", after}};
  return repo.audit(kind, actor, client, subject, data.dump(), s.clock.now());
}

// Loads the client or answers 404.
template <class T>
Result<T> require_client(store::Repo& repo, const std::string& id, T value) {
  auto client = repo.client(id);
  if (!client) {
    return client.error();
  }
  if (!client->has_value()) {
    return not_found(fmt::format("unknown client \"{}\"", id));
  }
  return value;
}

template <class T>
void respond_read(Services& s, const std::function<Result<T>(store::Repo&)>& fn,
                  const std::function<json(const T&)>& to_json, const http::Responder& respond) {
  auto r = s.store.read<T>(fn);
  respond(r ? json_response(200, to_json(*r)) : error_response(r.error()));
}

}  // namespace

// ---- clients -------------------------------------------------------------------------------

void put_client(Services& s, const Call& c, const http::Responder& respond) {
  const auto& id = c.param("client");
  if (auto st = check_id(id, "client"); !st) {
    respond(error_response(st.error()));
    return;
  }
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  if (auto st = reject_unknown(*body, {"name", "timezone", "locale", "id"}); !st) {
    respond(error_response(st.error()));
    return;
  }
  Client client;
  client.id = id;
  auto name = string_field(*body, "name", true);
  auto tz = string_field(*body, "timezone", false, 64);
  auto locale = string_field(*body, "locale", false, 35);
  for (auto* r : {&name, &tz, &locale}) {
    if (!*r) {
      respond(error_response(r->error()));
      return;
    }
  }
  client.name = *name;
  client.timezone = tz->empty() ? "UTC" : *tz;
  client.locale = locale->empty() ? "en" : *locale;
  if (!valid_timezone(client.timezone)) {
    respond(error_response(unprocessable(
        "invalid_timezone", "timezone",
        fmt::format("unknown time zone \"{}\": use an IANA name like \"Europe/Berlin\"",
                    client.timezone))));
    return;
  }
  static const std::regex kLocale(R"([a-z]{2,3}(-[A-Za-z0-9]{2,8})*)");
  if (!std::regex_match(client.locale, kLocale)) {
    respond(error_response(unprocessable(
        "invalid_locale", "locale", "locale must be a language tag like \"en\" or \"de-AT\"")));
    return;
  }
  auto created = std::make_shared<bool>(false);
  write_and_respond(
      s,
      [&s, actor = c.actor, client, created](store::Repo& repo) -> Status {
        auto before = repo.client(client.id);
        if (!before) {
          return before.error();
        }
        auto r = repo.put_client(client, s.clock.now());
        if (!r) {
          return r.error();
        }
        *created = *r;
        return audit_change(repo, s, actor, "client.put", client.id, client.id,
                            *before ? client_json(**before) : json(nullptr), client_json(client));
      },
      [client, created] { return json_response(*created ? 201 : 200, client_json(client)); },
      respond);
}

void get_clients(Services& s, const Call&, const http::Responder& respond) {
  respond_read<std::vector<Client>>(
      s, [](store::Repo& r) { return r.clients(); },
      [](const std::vector<Client>& clients) {
        json items = json::array();
        for (const auto& c : clients) {
          items.push_back(client_json(c));
        }
        return json{{"items", items}};
      },
      respond);
}

void get_client(Services& s, const Call& c, const http::Responder& respond) {
  const auto& id = c.param("client");
  respond_read<Client>(
      s,
      [&id](store::Repo& r) -> Result<Client> {
        auto client = r.client(id);
        if (!client) {
          return client.error();
        }
        if (!client->has_value()) {
          return not_found(fmt::format("unknown client \"{}\"", id));
        }
        return **client;
      },
      client_json, respond);
}

void delete_client(Services& s, const Call& c, const http::Responder& respond) {
  const auto& id = c.param("client");
  write_and_respond(
      s,
      [&s, actor = c.actor, id](store::Repo& repo) -> Status {
        auto before = repo.client(id);
        if (!before) {
          return before.error();
        }
        if (!before->has_value()) {
          return not_found(fmt::format("unknown client \"{}\"", id));
        }
        auto deleted = repo.delete_client(id, s.clock.now());
        if (!deleted) {
          return deleted.error();
        }
        auto cancelled = repo.cancel_client(id, "cancelled: the client was deleted");
        if (!cancelled) {
          return cancelled.error();
        }
        if (auto st = audit_change(repo, s, actor, "client.delete", id, id, client_json(**before),
                                   nullptr);
            !st) {
          return st;
        }
        return repo.audit_cancelled(actor, id, id, "the client was deleted", *cancelled,
                                    s.clock.now());
      },
      [] {
        return http::Response{204, "", {}, ""};
      },
      respond);
}

// ---- contacts ------------------------------------------------------------------------------

namespace {

Result<Contact> parse_contact(const json& body, const std::string& client_id,
                              const std::string& id) {
  if (auto st = reject_unknown(body, {"id", "name", "roles", "email", "phone", "chat", "timezone",
                                      "quiet_hours", "channels"});
      !st) {
    return st.error();
  }
  Contact c;
  c.client_id = client_id;
  c.id = id;
  auto name = string_field(body, "name", true);
  auto email = string_field(body, "email", false, 254);
  auto phone = string_field(body, "phone", false, 16);
  auto chat = string_field(body, "chat", false, 200);
  auto tz = string_field(body, "timezone", false, 64);
  for (auto* r : {&name, &email, &phone, &chat, &tz}) {
    if (!*r) {
      return r->error();
    }
  }
  c.name = *name;
  c.email = *email;
  c.phone = *phone;
  c.chat = *chat;
  c.timezone = tz->empty() ? "UTC" : *tz;
  auto roles = string_list(body, "roles");
  if (!roles) {
    return roles.error();
  }
  c.roles = *roles;
  auto channels = string_list(body, "channels");
  if (!channels) {
    return channels.error();
  }
  c.channels = *channels;
  if (!c.email.empty() && !valid_email(c.email)) {
    return unprocessable("invalid_email", "email",
                         fmt::format("\"{}\" is not an email address", c.email));
  }
  if (!c.phone.empty() && !valid_e164(c.phone)) {
    return unprocessable(
        "invalid_phone", "phone",
        fmt::format("\"{}\" is not an E.164 number like \"+15551234567\"", c.phone));
  }
  if (!valid_timezone(c.timezone)) {
    return unprocessable(
        "invalid_timezone", "timezone",
        fmt::format("unknown time zone \"{}\": use an IANA name like \"America/New_York\"",
                    c.timezone));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < c.channels.size(); ++i) {
    const auto& ch = c.channels[i];
    std::string field = fmt::format("channels[{}]", i);
    if (!is_person_channel(ch)) {
      return unprocessable("invalid_channel", field,
                           fmt::format("unknown channel \"{}\" (email or sms)", ch));
    }
    if (!seen.insert(ch).second) {
      return unprocessable("invalid_channel", field, fmt::format("\"{}\" is listed twice", ch));
    }
    if (!plan::has_address(c, ch)) {
      return unprocessable("missing_address", field,
                           fmt::format("channels lists \"{}\" but the contact has no {}", ch,
                                       ch == kChannelEmail ? "email" : "phone"));
    }
  }
  if (body.contains("quiet_hours") && !body["quiet_hours"].is_null()) {
    const auto& q = body["quiet_hours"];
    if (!q.is_object() || !q.contains("start") || !q.contains("end") || q.size() != 2) {
      return unprocessable("invalid_quiet_hours", "quiet_hours",
                           "quiet_hours must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}");
    }
    auto start = parse_clock(q["start"]);
    auto end = parse_clock(q["end"]);
    if (!start || !end) {
      return unprocessable("invalid_quiet_hours", start ? "quiet_hours.end" : "quiet_hours.start",
                           "quiet hours are 24-hour clock times like \"22:00\"");
    }
    if (*start == *end) {
      return unprocessable("invalid_quiet_hours", "quiet_hours",
                           "quiet_hours start and end are equal: omit quiet_hours instead");
    }
    c.quiet_hours = QuietHours{*start, *end};
  }
  return c;
}

}  // namespace

void put_contact(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  const auto& id = c.param("contact");
  if (auto st = check_id(id, "contact"); !st) {
    respond(error_response(st.error()));
    return;
  }
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto contact = parse_contact(*body, client_id, id);
  if (!contact) {
    respond(error_response(contact.error()));
    return;
  }
  auto created = std::make_shared<bool>(false);
  write_and_respond(
      s,
      [&s, actor = c.actor, contact = *contact, created](store::Repo& repo) -> Status {
        if (auto ok = require_client(repo, contact.client_id, true); !ok) {
          return ok.error();
        }
        auto before = repo.contact(contact.client_id, contact.id);
        if (!before) {
          return before.error();
        }
        auto r = repo.put_contact(contact, s.clock.now());
        if (!r) {
          return r.error();
        }
        *created = *r;
        return audit_change(repo, s, actor, "contact.put", contact.client_id, contact.id,
                            *before ? contact_json(**before) : json(nullptr),
                            contact_json(contact));
      },
      [contact = *contact, created] {
        return json_response(*created ? 201 : 200, contact_json(contact));
      },
      respond);
}

// ---- endpoints -----------------------------------------------------------------------------

namespace {

bool valid_secret(const std::string& secret) {
  if (secret.rfind("whsec_", 0) != 0) {
    return false;
  }
  std::string raw;
  return base64_decode(secret.substr(6), raw) && raw.size() >= 16 && raw.size() <= 128;
}

Result<Endpoint> parse_endpoint(const json& body, const std::string& client_id,
                                const std::string& id, bool& generated_secret) {
  if (auto st = reject_unknown(body, {"id", "type", "url", "secret", "secrets", "enabled"}); !st) {
    return st.error();
  }
  Endpoint e;
  e.client_id = client_id;
  e.id = id;
  auto type = string_field(body, "type", true, 20);
  if (!type) {
    return type.error();
  }
  auto parsed_type = parse_endpoint_type(*type);
  if (!parsed_type) {
    return unprocessable("invalid_type", "type",
                         fmt::format("unknown endpoint type \"{}\" (slack, teams, mattermost, "
                                     "discord, googlechat, webhook)",
                                     *type));
  }
  e.type = *parsed_type;
  auto url = string_field(body, "url", true, 2048);
  if (!url) {
    return url.error();
  }
  static const std::regex kUrl(R"(https?://[^\s/?#@]+(/[^\s]*)?)", std::regex::icase);
  if (!std::regex_match(*url, kUrl)) {
    return unprocessable("invalid_url", "url", "url must be an http:// or https:// URL");
  }
  e.url = *url;
  if (body.contains("enabled")) {
    if (!body["enabled"].is_boolean()) {
      return unprocessable("invalid_field", "enabled", "enabled must be true or false");
    }
    e.enabled = body["enabled"].get<bool>();
  }
  if (body.contains("secret") && !body["secret"].is_null()) {
    auto secret = string_field(body, "secret", true, 300);
    if (!secret) {
      return secret.error();
    }
    e.secrets.push_back(*secret);
  }
  if (body.contains("secrets")) {
    auto secrets = string_list(body, "secrets");
    if (!secrets) {
      return secrets.error();
    }
    e.secrets.insert(e.secrets.end(), secrets->begin(), secrets->end());
  }
  if (e.type != EndpointType::webhook && !e.secrets.empty()) {
    return unprocessable("invalid_field", "secret", "only webhook endpoints take a signing secret");
  }
  for (size_t i = 0; i < e.secrets.size(); ++i) {
    if (!valid_secret(e.secrets[i])) {
      return unprocessable("invalid_secret", "secret",
                           "a signing secret is \"whsec_\" followed by 16 to 128 base64 bytes");
    }
  }
  generated_secret = false;
  if (e.type == EndpointType::webhook && e.secrets.empty()) {
    e.secrets.push_back("whsec_" + base64_encode(random_bytes(32)));
    generated_secret = true;
  }
  return e;
}

}  // namespace

void put_endpoint(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  const auto& id = c.param("endpoint");
  if (auto st = check_id(id, "endpoint"); !st) {
    respond(error_response(st.error()));
    return;
  }
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto generated = std::make_shared<bool>(false);
  auto endpoint = parse_endpoint(*body, client_id, id, *generated);
  if (!endpoint) {
    respond(error_response(endpoint.error()));
    return;
  }
  auto created = std::make_shared<bool>(false);
  write_and_respond(
      s,
      [&s, actor = c.actor, endpoint = *endpoint, created, generated](store::Repo& repo) -> Status {
        if (auto ok = require_client(repo, endpoint.client_id, true); !ok) {
          return ok.error();
        }
        auto before = repo.endpoint(endpoint.client_id, endpoint.id);
        if (!before) {
          return before.error();
        }
        // A webhook updated without a secret keeps the one its receiver already checks.
        Endpoint stored = endpoint;
        if (*generated && *before && (*before)->type == EndpointType::webhook &&
            !(*before)->secrets.empty()) {
          stored.secrets = (*before)->secrets;
          *generated = false;
        }
        auto r = repo.put_endpoint(stored, s.clock.now());
        if (!r) {
          return r.error();
        }
        *created = *r;
        return audit_change(repo, s, actor, "endpoint.put", endpoint.client_id, endpoint.id,
                            *before ? endpoint_json(**before) : json(nullptr),
                            endpoint_json(stored));
      },
      [endpoint = *endpoint, created, generated] {
        json j = endpoint_json(endpoint);
        if (*generated) {
          // Shown once, now: Herald keeps it, but never shows it again.
          j["secret"] = endpoint.secrets.front();
        }
        return json_response(*created ? 201 : 200, j);
      },
      respond);
}

// ---- what contacts and endpoints have in common: a client's resources by id ----------------

namespace {

// The store operations and JSON form of one kind of a client's resources.
template <class T>
struct Resource;

template <>
struct Resource<Contact> {
  static constexpr std::string_view kName = "contact";
  static auto list(store::Repo& r, std::string_view client) { return r.contacts(client); }
  static auto get(store::Repo& r, std::string_view client, std::string_view id) {
    return r.contact(client, id);
  }
  static auto remove(store::Repo& r, std::string_view client, std::string_view id) {
    return r.delete_contact(client, id);
  }
  static json to_json(const Contact& c) { return contact_json(c); }
};

template <>
struct Resource<Endpoint> {
  static constexpr std::string_view kName = "endpoint";
  static auto list(store::Repo& r, std::string_view client) { return r.endpoints(client); }
  static auto get(store::Repo& r, std::string_view client, std::string_view id) {
    return r.endpoint(client, id);
  }
  static auto remove(store::Repo& r, std::string_view client, std::string_view id) {
    return r.delete_endpoint(client, id);
  }
  static json to_json(const Endpoint& e) { return endpoint_json(e); }
};

template <class T>
Error no_such(std::string_view client_id, std::string_view id) {
  return not_found(
      fmt::format("client \"{}\" has no {} \"{}\"", client_id, Resource<T>::kName, id));
}

template <class T>
void list_resources(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  respond_read<std::vector<T>>(
      s,
      [&client_id](store::Repo& r) -> Result<std::vector<T>> {
        if (auto ok = require_client(r, client_id, true); !ok) {
          return ok.error();
        }
        return Resource<T>::list(r, client_id);
      },
      [](const std::vector<T>& all) {
        json items = json::array();
        for (const auto& x : all) {
          items.push_back(Resource<T>::to_json(x));
        }
        return json{{"items", items}};
      },
      respond);
}

template <class T>
void get_resource(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  const auto& id = c.param(std::string(Resource<T>::kName));
  respond_read<T>(
      s,
      [&](store::Repo& r) -> Result<T> {
        auto found = Resource<T>::get(r, client_id, id);
        if (!found) {
          return found.error();
        }
        if (!found->has_value()) {
          return no_such<T>(client_id, id);
        }
        return **found;
      },
      Resource<T>::to_json, respond);
}

// Deletes and audits it as "KIND.delete" with what it was.
template <class T>
void delete_resource(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  const auto& id = c.param(std::string(Resource<T>::kName));
  write_and_respond(
      s,
      [&s, actor = c.actor, client_id, id](store::Repo& repo) -> Status {
        auto before = Resource<T>::get(repo, client_id, id);
        if (!before) {
          return before.error();
        }
        if (!before->has_value()) {
          return no_such<T>(client_id, id);
        }
        auto r = Resource<T>::remove(repo, client_id, id);
        if (!r) {
          return r.error();
        }
        return audit_change(repo, s, actor, fmt::format("{}.delete", Resource<T>::kName), client_id,
                            id, Resource<T>::to_json(**before), nullptr);
      },
      [] {
        return http::Response{204, "", {}, ""};
      },
      respond);
}

}  // namespace

void get_contacts(Services& s, const Call& c, const http::Responder& respond) {
  list_resources<Contact>(s, c, respond);
}
void get_contact(Services& s, const Call& c, const http::Responder& respond) {
  get_resource<Contact>(s, c, respond);
}
void delete_contact(Services& s, const Call& c, const http::Responder& respond) {
  delete_resource<Contact>(s, c, respond);
}
void get_endpoints(Services& s, const Call& c, const http::Responder& respond) {
  list_resources<Endpoint>(s, c, respond);
}
void get_endpoint(Services& s, const Call& c, const http::Responder& respond) {
  get_resource<Endpoint>(s, c, respond);
}
void delete_endpoint(Services& s, const Call& c, const http::Responder& respond) {
  delete_resource<Endpoint>(s, c, respond);
}

// ---- plans ---------------------------------------------------------------------------------

void put_plan(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  struct Outcome {
    json plan;
    int64_t version = 0;
    std::vector<std::string> warnings;
  };
  auto outcome = std::make_shared<Outcome>();
  // Validated inside the write, against the endpoints as they are at that moment.
  write_and_respond(
      s,
      [&s, actor = c.actor, client_id, body = *body, outcome](store::Repo& repo) -> Status {
        if (auto ok = require_client(repo, client_id, true); !ok) {
          return ok.error();
        }
        auto endpoints = repo.endpoints(client_id);
        if (!endpoints) {
          return endpoints.error();
        }
        std::set<std::string> ids;
        for (const auto& e : *endpoints) {
          ids.insert(e.id);
        }
        auto plan = plan::parse_plan(body, ids);
        if (!plan) {
          return plan.error();
        }
        auto contacts = repo.contacts(client_id);
        if (!contacts) {
          return contacts.error();
        }
        auto before = repo.plan(client_id);
        if (!before) {
          return before.error();
        }
        outcome->plan = plan::plan_to_json(*plan);
        outcome->warnings = plan::plan_warnings(*plan, *contacts);
        auto version = repo.put_plan(client_id, outcome->plan.dump(), s.clock.now());
        if (!version) {
          return version.error();
        }
        outcome->version = *version;
        return audit_change(repo, s, actor, "plan.put", client_id, client_id,
                            *before ? json::parse((*before)->body) : json(nullptr), outcome->plan);
      },
      [outcome] {
        json j = outcome->plan;
        j["version"] = outcome->version;
        j["warnings"] = outcome->warnings;
        return json_response(200, j);
      },
      respond);
}

void get_plan(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  respond_read<json>(
      s,
      [&client_id](store::Repo& r) -> Result<json> {
        if (auto ok = require_client(r, client_id, true); !ok) {
          return ok.error();
        }
        auto plan = r.plan(client_id);
        if (!plan) {
          return plan.error();
        }
        if (!plan->has_value()) {
          return json{{"rules", json::array()}, {"version", 0}, {"updated_at", nullptr}};
        }
        json j = json::parse((*plan)->body);
        j["version"] = (*plan)->version;
        j["updated_at"] = format_rfc3339((*plan)->updated_at);
        return j;
      },
      [](const json& j) { return j; }, respond);
}

void preview_plan(Services& s, const Call& c, const http::Responder& respond) {
  const auto& client_id = c.param("client");
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  if (auto st = reject_unknown(*body, {"phase", "severity", "at"}); !st) {
    respond(error_response(st.error()));
    return;
  }
  auto phase_text = string_field(*body, "phase", true, 40);
  auto severity_text = string_field(*body, "severity", true, 20);
  auto at_text = string_field(*body, "at", false, 40);
  for (auto* r : {&phase_text, &severity_text, &at_text}) {
    if (!*r) {
      respond(error_response(r->error()));
      return;
    }
  }
  auto phase = parse_phase(*phase_text);
  auto severity = parse_severity(*severity_text);
  if (!phase) {
    respond(error_response(
        unprocessable("invalid_phase", "phase", fmt::format("unknown phase \"{}\"", *phase_text))));
    return;
  }
  if (!severity) {
    respond(error_response(unprocessable("invalid_severity", "severity",
                                         fmt::format("unknown severity \"{}\"", *severity_text))));
    return;
  }
  Timestamp at = s.clock.now();
  if (!at_text->empty()) {
    auto t = parse_rfc3339(*at_text);
    if (!t) {
      respond(error_response(unprocessable("invalid_field", "at", "at must be an RFC 3339 time")));
      return;
    }
    at = *t;
  }
  respond_read<json>(
      s,
      [&](store::Repo& r) -> Result<json> {
        if (auto ok = require_client(r, client_id, true); !ok) {
          return ok.error();
        }
        auto stored = r.plan(client_id);
        auto contacts = r.contacts(client_id);
        auto endpoints = r.endpoints(client_id);
        if (!stored || !contacts || !endpoints) {
          return make_error(ErrorKind::internal, "storage_error", "cannot read the plan");
        }
        Plan plan;
        if (stored->has_value()) {
          std::set<std::string> ids;
          for (const auto& e : *endpoints) {
            ids.insert(e.id);
          }
          auto parsed = plan::parse_plan(json::parse((*stored)->body), ids);
          if (parsed) {
            plan = std::move(*parsed);
          }
        }
        auto find_contact = [&](const std::string& id) -> const Contact* {
          for (const auto& ct : *contacts) {
            if (ct.id == id) {
              return &ct;
            }
          }
          return nullptr;
        };
        // When a message planned for `due` would go out, quiet hours considered.
        auto when = [&](const plan::Intent& intent, Timestamp due) {
          const Contact* ct = find_contact(intent.contact_id);
          return ct ? schedule::send_time(due, *ct, intent.quiet_hours) : due;
        };
        constexpr int kRepeatsShown = 3;
        json messages = json::array();
        for (const auto& intent :
             plan::plan_messages(plan, *phase, *severity, *contacts, *endpoints)) {
          Timestamp due = at + intent.delay;
          Timestamp send_at = when(intent, due);
          json m{{"rule", intent.rule_id},
                 {"channel", intent.channel},
                 {"delay", format_duration(intent.delay)},
                 {"due_at", format_rfc3339(due)},
                 {"send_at", format_rfc3339(send_at)},
                 {"deferred_by_quiet_hours", send_at != due},
                 {"repeat", intent.repeat ? json(format_duration(*intent.repeat)) : json(nullptr)}};
          if (intent.repeat) {
            // As the scheduler does it: each update is planned on the cadence, at the first
            // slot after the previous one actually went out, then deferred by quiet hours.
            json next = json::array();
            Timestamp sent = send_at;
            for (int i = 1; i <= kRepeatsShown; ++i) {
              auto slots = (sent - due) / *intent.repeat + 1;
              sent = when(intent, due + *intent.repeat * slots);
              next.push_back(format_rfc3339(sent));
            }
            m["next_updates"] = next;
          }
          if (const Contact* ct = find_contact(intent.contact_id)) {
            m["contact"] = ct->id;
            m["role"] = intent.role;
            m["name"] = ct->name;
            m["address"] = intent.channel == kChannelEmail ? ct->email : ct->phone;
          } else {
            m["endpoint"] = intent.endpoint_id;
          }
          messages.push_back(std::move(m));
        }
        json escalations = json::array();
        for (const Rule* rule : plan::matching_rules(plan, *phase, *severity)) {
          if (!rule->escalate) {
            continue;
          }
          Timestamp due = at + rule->escalate->after;
          json reached = json::array();
          for (const auto& intent :
               plan::escalation_intents(rule->id, rule->escalate->to_roles, rule->channels,
                                        rule->quiet_hours, *contacts)) {
            reached.push_back(json{{"contact", intent.contact_id},
                                   {"role", intent.role},
                                   {"channel", intent.channel},
                                   {"send_at", format_rfc3339(when(intent, due))}});
          }
          escalations.push_back(json{{"rule", rule->id},
                                     {"after", format_duration(rule->escalate->after)},
                                     {"due_at", format_rfc3339(due)},
                                     {"to_roles", rule->escalate->to_roles},
                                     {"unless", "someone the rule reached acknowledges first"},
                                     {"messages", reached}});
        }
        return json{
            {"phase", to_string(*phase)}, {"severity", to_string(*severity)},
            {"at", format_rfc3339(at)},   {"messages", messages},
            {"escalations", escalations}, {"warnings", plan::plan_warnings(plan, *contacts)}};
      },
      [](const json& j) { return j; }, respond);
}

}  // namespace herald::api
