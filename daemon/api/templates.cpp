// Templates through the API: stored per client (or for every client), compiled on save, kept
// in versions, audited, and previewed with a given or a sample context.
#include <fmt/format.h>

#include <regex>

#include "daemon/api/context.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/render/shipped_templates.hpp"

namespace herald::api {
namespace {

constexpr size_t kMaxTemplateBytes = 64 * 1024;

Error unprocessable(std::string code, std::string field, std::string message) {
  return make_error(ErrorKind::unprocessable, std::move(code), std::move(message),
                    std::move(field));
}

json client_or_null(const std::string& client_id) {
  return client_id.empty() ? json(nullptr) : json(client_id);
}

json version_json(const store::TemplateVersion& t, bool with_body) {
  json j{{"name", t.name},
         {"client", client_or_null(t.client_id)},
         {"version", t.version},
         {"deleted", !t.body.has_value()},
         {"updated_at", format_rfc3339(t.at)},
         {"actor", t.actor}};
  if (with_body) {
    j["body"] = t.body ? json(*t.body) : json(nullptr);
  }
  return j;
}

std::optional<std::string> shipped_body(std::string_view name) {
  for (const auto& t : render::shipped_templates()) {
    if (t.name == name) {
      return std::string(t.body);
    }
  }
  return std::nullopt;
}

// "line 3, column 1: unclosed section" → 3, 1: the 422 names them as fields as well.
http::Response template_error_response(const Error& e) {
  auto r = error_response(e);
  static const std::regex kWhere(R"(line (\d+), column (\d+): )");
  std::smatch m;
  if (std::regex_search(e.message, m, kWhere)) {
    json body = json::parse(r.body);
    body["error"]["line"] = std::stoi(m[1]);
    body["error"]["column"] = std::stoi(m[2]);
    r = json_response(r.status, body);
  }
  return r;
}

// The client's (or everyone's, for '') stored partials by short name, stored ones first.
std::map<std::string, std::string> stored_partials(const std::vector<store::TemplateVersion>& all,
                                                   const std::string& client_id) {
  std::map<std::string, std::string> out;
  for (const std::string& owner : {client_id, std::string()}) {
    for (const auto& t : all) {
      auto parsed = render::parse_template_name(t.name);
      if (t.client_id == owner && parsed && !parsed->partial.empty() && parsed->locale.empty() &&
          t.body) {
        out.emplace(parsed->partial, *t.body);
      }
    }
  }
  return out;
}

std::vector<std::string> keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) {
    out.push_back(k);
  }
  return out;
}

// "?client=" names a client's override; absent or empty, the template every client shares.
std::string client_param(const Call& c) {
  return c.request.query_param("client").value_or("");
}

Status require_client(store::Repo& repo, const std::string& id) {
  if (id.empty()) {
    return {};
  }
  auto client = repo.client(id);
  if (!client) {
    return client.error();
  }
  if (!client->has_value()) {
    return make_error(ErrorKind::not_found, "not_found", fmt::format("unknown client \"{}\"", id));
  }
  return {};
}

Status audit_template(store::Repo& repo, Services& s, const std::string& actor,
                      std::string_view kind, const std::string& client_id, const std::string& name,
                      const std::optional<store::TemplateVersion>& before, const json& after) {
  json data{{"before", before && before->body ? version_json(*before, true) : json(nullptr)},
            {"after", after}};
  return repo.audit(kind, actor, client_id, name, data.dump(), s.clock.now());
}

}  // namespace

void put_template(Services& s, const Call& c, const http::Responder& respond) {
  const auto& name = c.param("name");
  auto parsed = render::parse_template_name(name);
  if (!parsed) {
    respond(error_response(parsed.error()));
    return;
  }
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  if (!body->is_object()) {
    respond(error_response(
        make_error(ErrorKind::unprocessable, "invalid_body", "the body must be a JSON object")));
    return;
  }
  for (const auto& [key, _] : body->items()) {
    if (key != "client" && key != "body" && key != "name") {
      respond(error_response(
          unprocessable("unknown_field", key, fmt::format("unknown field \"{}\"", key))));
      return;
    }
  }
  std::string client_id;
  if (body->contains("client") && !(*body)["client"].is_null()) {
    if (!(*body)["client"].is_string()) {
      respond(error_response(
          unprocessable("invalid_field", "client", "client must be a client id or null")));
      return;
    }
    client_id = (*body)["client"].get<std::string>();
  }
  if (!body->contains("body") || !(*body)["body"].is_string()) {
    respond(error_response(
        unprocessable("missing_field", "body", "body (the template source) is required")));
    return;
  }
  std::string source = (*body)["body"].get<std::string>();
  if (source.size() > kMaxTemplateBytes) {
    respond(error_response(unprocessable(
        "invalid_field", "body", fmt::format("body must be at most {} bytes", kMaxTemplateBytes))));
    return;
  }
  if (auto compiled = render::check_template(source); !compiled) {
    Error e = compiled.error();
    e.field = "body";
    respond(template_error_response(e));
    return;
  }

  auto result = std::make_shared<json>();
  auto created = std::make_shared<bool>(false);
  s.store.write(
      [&s, actor = c.actor, client_id, name, source, parsed = *parsed, result,
       created](store::Repo& repo) -> Status {
        if (auto ok = require_client(repo, client_id); !ok) {
          return ok;
        }
        auto all = repo.current_templates(client_id.empty() ? "" : client_id);
        if (!all) {
          return all.error();
        }
        auto partials = stored_partials(*all, client_id);
        if (!parsed.partial.empty() && parsed.locale.empty()) {
          partials[parsed.partial] = source;
          // A partial that includes itself would never finish rendering.
          auto probe = render::render_string(source, "email.text", json::object(), partials);
          if (!probe && probe.error().message.find("includes itself") != std::string::npos) {
            Error e = probe.error();
            e.field = "body";
            return e;
          }
        }
        auto before = repo.template_version(client_id, name, 0);
        if (!before) {
          return before.error();
        }
        auto version = repo.put_template(client_id, name, source, actor, s.clock.now());
        if (!version) {
          return version.error();
        }
        *created = !*before || !(*before)->body;
        store::TemplateVersion now{client_id, name, *version, source, s.clock.now(), actor};
        *result = version_json(now, true);
        (*result)["warnings"] = render::template_warnings(source, keys(partials));
        return audit_template(repo, s, actor, "template.put", client_id, name, *before,
                              version_json(now, true));
      },
      [respond, result, created](Status st) {
        respond(st ? json_response(*created ? 201 : 200, *result)
                   : template_error_response(st.error()));
      });
}

void list_templates(Services& s, const Call& c, const http::Responder& respond) {
  auto filter = c.request.query_param("client");
  auto r = s.store.read<std::vector<store::TemplateVersion>>(
      [](store::Repo& repo) { return repo.current_templates("*"); });
  if (!r) {
    respond(error_response(r.error()));
    return;
  }
  json items = json::array();
  for (const auto& t : *r) {
    if (filter && !filter->empty() && t.client_id != *filter && !t.client_id.empty()) {
      continue;
    }
    items.push_back(version_json(t, false));
  }
  json shipped = json::array();
  for (const auto& t : render::shipped_templates()) {
    shipped.push_back(std::string(t.name));
  }
  std::sort(shipped.begin(), shipped.end());
  respond(json_response(200, json{{"items", items}, {"shipped", shipped}}));
}

void get_template(Services& s, const Call& c, const http::Responder& respond) {
  const auto& name = c.param("name");
  if (auto parsed = render::parse_template_name(name); !parsed) {
    respond(error_response(parsed.error()));
    return;
  }
  std::string client_id = client_param(c);
  int64_t version = 0;
  if (auto v = c.request.query_param("version"); v && !v->empty()) {
    try {
      version = std::stoll(*v);
    } catch (const std::exception&) {
      version = -1;
    }
    if (version <= 0) {
      respond(error_response(make_error(ErrorKind::invalid, "invalid_query",
                                        "version must be a positive integer", "version")));
      return;
    }
  }
  auto r = s.store.read<std::optional<store::TemplateVersion>>(
      [&](store::Repo& repo) { return repo.template_version(client_id, name, version); });
  if (!r) {
    respond(error_response(r.error()));
    return;
  }
  if (*r && ((*r)->body || version > 0)) {
    json j = version_json(**r, true);
    j["source"] = "stored";
    respond(json_response(200, j));
    return;
  }
  if (version == 0) {
    if (auto shipped = shipped_body(name)) {
      respond(json_response(
          200,
          json{{"name", name}, {"client", nullptr}, {"source", "shipped"}, {"body", *shipped}}));
      return;
    }
  }
  respond(error_response(make_error(
      ErrorKind::not_found, "not_found",
      version > 0 ? fmt::format("template {} has no version {}{}", name, version,
                                client_id.empty() ? "" : " for client " + client_id)
                  : fmt::format("no template {}{}", name,
                                client_id.empty() ? "" : " stored for client " + client_id))));
}

void template_history(Services& s, const Call& c, const http::Responder& respond) {
  const auto& name = c.param("name");
  std::string client_id = client_param(c);
  auto r = s.store.read<std::vector<store::TemplateVersion>>(
      [&](store::Repo& repo) { return repo.template_history(client_id, name); });
  if (!r) {
    respond(error_response(r.error()));
    return;
  }
  json items = json::array();
  for (const auto& t : *r) {
    items.push_back(version_json(t, true));
  }
  respond(json_response(200, json{{"items", items}}));
}

void delete_template(Services& s, const Call& c, const http::Responder& respond) {
  const auto& name = c.param("name");
  std::string client_id = client_param(c);
  s.store.write(
      [&s, actor = c.actor, client_id, name](store::Repo& repo) -> Status {
        auto before = repo.template_version(client_id, name, 0);
        if (!before) {
          return before.error();
        }
        if (!*before || !(*before)->body) {
          return make_error(
              ErrorKind::not_found, "not_found",
              fmt::format("no template {}{}", name,
                          client_id.empty() ? "" : " stored for client " + client_id));
        }
        auto version = repo.put_template(client_id, name, std::nullopt, actor, s.clock.now());
        if (!version) {
          return version.error();
        }
        return audit_template(repo, s, actor, "template.delete", client_id, name, *before, nullptr);
      },
      [respond](Status st) {
        respond(st ? http::Response{204, "", {}, ""} : error_response(st.error()));
      });
}

void render_template(Services& s, const Call& c, const http::Responder& respond) {
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  if (!body->is_object() || !body->contains("template") || !(*body)["template"].is_string()) {
    respond(error_response(
        unprocessable("missing_field", "template", "template (the source to render) is required")));
    return;
  }
  std::string channel = "email.text";
  if (body->contains("channel")) {
    if (!(*body)["channel"].is_string()) {
      respond(error_response(unprocessable("invalid_field", "channel",
                                           "channel must be CHANNEL.PART, e.g. email.html")));
      return;
    }
    channel = (*body)["channel"].get<std::string>();
  }
  json context;
  if (body->contains("context") && !(*body)["context"].is_null()) {
    if (!(*body)["context"].is_object()) {
      respond(error_response(
          unprocessable("invalid_field", "context", "context must be a JSON object")));
      return;
    }
    context = (*body)["context"];
  } else {
    Phase phase = Phase::containment;
    if (body->contains("phase") && (*body)["phase"].is_string()) {
      phase = parse_phase((*body)["phase"].get<std::string>()).value_or(phase);
    }
    bool drill = false;
    if (body->contains("drill") && !(*body)["drill"].is_null()) {
      if (!(*body)["drill"].is_boolean()) {
        respond(
            error_response(unprocessable("invalid_field", "drill", "drill must be true or false")));
        return;
      }
      drill = (*body)["drill"].get<bool>();
    }
    context = render::context_json(render::sample_context(phase, drill));
  }
  std::string client_id;
  if (body->contains("client") && (*body)["client"].is_string()) {
    client_id = (*body)["client"].get<std::string>();
  }
  std::map<std::string, std::string> partials;
  auto stored = s.store.read<std::vector<store::TemplateVersion>>(
      [&](store::Repo& repo) { return repo.current_templates(client_id); });
  if (stored) {
    partials = stored_partials(*stored, client_id);
  }
  std::string source = (*body)["template"].get<std::string>();
  if (source.size() > kMaxTemplateBytes) {
    respond(error_response(
        unprocessable("invalid_field", "template",
                      fmt::format("template must be at most {} bytes", kMaxTemplateBytes))));
    return;
  }
  auto rendered = render::render_string(source, channel, context, partials);
  if (!rendered) {
    Error e = rendered.error();
    if (e.field.empty() || e.field == "template") {
      e.field = e.code == "invalid_channel" ? "channel" : "template";
    }
    respond(template_error_response(e));
    return;
  }
  json out{{"rendered", *rendered},
           {"warnings", render::template_warnings(source, keys(partials))}};
  if (channel == "sms.text") {
    auto length = render::sms_length(*rendered);
    out["sms"] = {{"encoding", length.gsm7 ? "GSM-7" : "UCS-2"},
                  {"units", length.units},
                  {"segments", length.segments}};
  }
  respond(json_response(200, out));
}

}  // namespace herald::api
