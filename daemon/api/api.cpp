#include "daemon/api/api.hpp"

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/api/context.hpp"
#include "daemon/core/crypto.hpp"
#include "daemon/core/json_depth.hpp"
#include "daemon/ingest/ingest.hpp"

namespace herald::api {

int status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid:
      return 400;
    case ErrorKind::unauthorized:
      return 401;
    case ErrorKind::forbidden:
      return 403;
    case ErrorKind::not_found:
      return 404;
    case ErrorKind::conflict:
      return 409;
    case ErrorKind::too_large:
      return 413;
    case ErrorKind::unprocessable:
      return 422;
    case ErrorKind::unavailable:
      return 503;
    case ErrorKind::internal:
      return 500;
  }
  return 500;
}

http::Response json_response(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

http::Response error_response(const Error& e) {
  json err{{"code", e.code.empty() ? "error" : e.code}, {"message", e.message}};
  if (!e.field.empty()) {
    err["field"] = e.field;
  }
  auto r = json_response(status_of(e.kind), json{{"error", err}});
  if (e.kind == ErrorKind::unavailable) {
    r.headers.emplace_back("Retry-After", "1");
  }
  if (e.kind == ErrorKind::unauthorized) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"herald\"");
  }
  return r;
}

Result<json> parse_body(const http::Request& request) {
  if (request.body.empty()) {
    return make_error(ErrorKind::invalid, "malformed_json", "the request body is empty: send JSON");
  }
  if (!json_depth_within(request.body)) {
    return make_error(
        ErrorKind::invalid, "malformed_json",
        fmt::format("the body nests arrays and objects more than {} levels deep", kMaxJsonDepth));
  }
  try {
    return json::parse(request.body);
  } catch (const json::parse_error& e) {
    return make_error(
        ErrorKind::invalid, "malformed_json",
        fmt::format("the body is not valid JSON (byte {}): {}", e.byte,
                    std::string(e.what()).substr(std::string(e.what()).find(':') + 2)));
  } catch (const json::exception& e) {
    // A number too large for a double ("1e999") is out_of_range, not a parse_error.
    const std::string what = e.what();
    return make_error(ErrorKind::invalid, "malformed_json",
                      "the body is not valid JSON: " + what.substr(what.find("] ") + 2));
  }
}

json time_json(const std::optional<Timestamp>& t) {
  return t ? json(format_rfc3339(*t)) : json(nullptr);
}

namespace {

enum class Scope { none, any, ingest, admin, admin_read, audit };

using Handler = void (*)(Services&, const Call&, const http::Responder&);

struct Route {
  std::string method;
  std::vector<std::string> segments;  // "{name}" captures
  Scope scope;
  Handler handler;
  std::string metric_label;  // route="/v1/...", escaped: labels herald_http_requests_total
};

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    out.emplace_back(path.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

Route route(std::string method, std::string_view pattern, Scope scope, Handler handler) {
  auto segments = split_path(pattern);
  auto label =
      fmt::format("route=\"/{}\"", Metrics::label(fmt::format("{}", fmt::join(segments, "/"))));
  return Route{std::move(method), std::move(segments), scope, handler, std::move(label)};
}

bool match(const Route& r, const std::vector<std::string>& segments,
           std::unordered_map<std::string, std::string>& params) {
  if (r.segments.size() != segments.size()) {
    return false;
  }
  params.clear();
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& want = r.segments[i];
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      params[want.substr(1, want.size() - 2)] = segments[i];
    } else if (want != segments[i]) {
      return false;
    }
  }
  return true;
}

bool has_scope(const Token& token, std::string_view scope) {
  return std::find(token.scopes.begin(), token.scopes.end(), scope) != token.scopes.end();
}

bool allows(const Token& token, Scope scope) {
  switch (scope) {
    case Scope::none:
    case Scope::any:
      return true;
    case Scope::ingest:
      return has_scope(token, "ingest");
    case Scope::admin:
      return has_scope(token, "admin");
    case Scope::admin_read:
      return has_scope(token, "admin") || has_scope(token, "audit");
    case Scope::audit:
      return has_scope(token, "audit");
  }
  return false;
}

std::string_view scope_name(Scope scope) {
  switch (scope) {
    case Scope::ingest:
      return "ingest";
    case Scope::admin:
      return "admin";
    case Scope::admin_read:
      return "admin or audit";
    case Scope::audit:
      return "audit";
    case Scope::any:
      return "any";
    case Scope::none:
      break;
  }
  return "none";
}

void healthz(Services&, const Call&, const http::Responder& respond) {
  respond(json_response(200, json{{"status", "ok"}}));
}

void readyz(Services& s, const Call&, const http::Responder& respond) {
  // Ready means an event could be accepted now: a real write through the writer, committed.
  auto now = s.clock.now();
  Status written = s.store.write_sync(
      [now](store::Repo& repo) { return repo.set_meta("ready_check_at", format_rfc3339(now)); });
  if (!written) {
    respond(
        json_response(503, json{{"status", "unavailable"},
                                {"reason", "database not writable: " + written.error().message}}));
    return;
  }
  json body{{"status", "ready"}};
  // A bus that is away does not make Herald unready: POST /v1/events still works, and the
  // subscription catches up by itself. Its state is reported for operators to see.
  if (s.sources) {
    json sources = json::object();
    for (const auto& source : s.sources()) {
      json j{{"state", source.state},
             {"pending", source.pending < 0 ? json(nullptr) : json(source.pending)},
             {"ack_pending", source.ack_pending < 0 ? json(nullptr) : json(source.ack_pending)}};
      if (!source.error.empty()) {
        j["error"] = source.error;
      }
      sources[source.name] = j;
    }
    body["sources"] = sources;
  }
  respond(json_response(200, body));
}

void metrics(Services& s, const Call&, const http::Responder& respond) {
  http::Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = render_metrics(s);
  respond(std::move(r));
}

void version(Services& s, const Call&, const http::Responder& respond) {
  respond(json_response(200, json{{"name", "herald"}, {"version", s.version}}));
}

// Who the token is: the console asks, to offer only what the scopes allow.
void whoami(Services&, const Call& c, const http::Responder& respond) {
  respond(json_response(200, json{{"name", c.actor}, {"scopes", c.scopes}}));
}

}  // namespace

std::string render_metrics(Services& s) {
  auto now = s.clock.now();
  auto counts = s.store.read<std::vector<store::StatusCount>>(
      [](store::Repo& r) { return r.message_counts(); });
  auto due = s.store.read<store::DueQueue>([now](store::Repo& r) { return r.due_queue(now); });
  s.metrics.reset("herald_messages");
  if (counts) {
    for (const auto& c : *counts) {
      s.metrics.set("herald_messages",
                    fmt::format("channel=\"{}\",status=\"{}\"", Metrics::label(c.channel),
                                Metrics::label(c.status)),
                    static_cast<double>(c.count));
    }
  }
  if (due) {
    s.metrics.set("herald_queue_depth", "", static_cast<double>(due->scheduled + due->retrying));
    s.metrics.set("herald_queue_due", "status=\"scheduled\"", static_cast<double>(due->scheduled));
    s.metrics.set("herald_queue_due", "status=\"retrying\"", static_cast<double>(due->retrying));
    double age = due->oldest ? std::chrono::duration<double>(now - *due->oldest).count() : 0.0;
    s.metrics.set("herald_oldest_due_seconds", "", std::max(age, 0.0));
  }
  s.metrics.set("herald_store_commits_total", "", static_cast<double>(s.store.commits()));
  s.metrics.set("herald_store_committed_writes_total", "",
                static_cast<double>(s.store.committed_writes()));
  s.metrics.set("herald_store_write_seconds_total", "", s.store.write_seconds());
  s.metrics.set("herald_store_commit_seconds_total", "", s.store.commit_seconds());
  s.metrics.set("herald_sqlite_memory_bytes", "",
                static_cast<double>(store::Store::sqlite_memory()));
  struct mallinfo2 heap = mallinfo2();
  s.metrics.set("herald_heap_in_use_bytes", "", static_cast<double>(heap.uordblks + heap.hblkhd));
  s.metrics.set("herald_heap_free_bytes", "", static_cast<double>(heap.fordblks));
  return s.metrics.render();
}

struct Api::Impl {
  Impl(ApiOptions o, store::Store& store, ingest::Ingestor& ingestor, const Clock& clock,
       Metrics& metrics, std::function<void()> wake)
      : options(std::move(o)), services{store,           ingestor,        clock,
                                        metrics,         std::move(wake), options.public_url,
                                        options.version, options.ack_key, options.sources,
                                        tokens} {}
  ApiOptions options;
  TokenRegistry tokens;
  Services services;
  std::vector<Route> routes;
};

Api::Api(ApiOptions options, store::Store& store, ingest::Ingestor& ingestor, const Clock& clock,
         Metrics& metrics_registry, std::function<void()> wake_dispatcher)
    : impl_(std::make_unique<Impl>(std::move(options), store, ingestor, clock, metrics_registry,
                                   std::move(wake_dispatcher))) {
  (void)impl_->tokens.set_config(impl_->options.tokens);  // no stored tokens yet: cannot clash
  auto& m = metrics_registry;
  m.describe("herald_http_requests_total", "counter", "HTTP requests by route and status.");
  m.describe("herald_http_auth_failures_total", "counter",
             "Requests refused for a missing or unknown token (401) or a missing scope (403).");
  m.describe("herald_events_total", "counter", "Events received, by outcome.");
  m.describe("herald_messages", "gauge", "Messages by channel and status.");
  m.describe("herald_queue_depth", "gauge", "Messages due now and not yet sent.");
  m.describe("herald_queue_due", "gauge",
             "Messages due now and not yet sent, by status: scheduled (never tried) or retrying.");
  m.describe("herald_oldest_due_seconds", "gauge",
             "How long the longest-waiting due message has been due; 0 when none is.");
  m.describe("herald_store_commits_total", "counter", "Database commits (group commits).");
  m.describe("herald_sqlite_memory_bytes", "gauge",
             "Memory SQLite holds: page caches, prepared statements, sorters (all connections).");
  m.describe("herald_heap_in_use_bytes", "gauge",
             "Heap memory allocated and not freed (malloc's own count; SQLite's included).");
  m.describe("herald_heap_free_bytes", "gauge",
             "Heap memory freed but kept by malloc for reuse (part of the resident memory).");
  m.describe("herald_store_committed_writes_total", "counter",
             "Writes committed; divided by commits, the group-commit batch size.");
  m.describe("herald_store_write_seconds_total", "counter",
             "Time the database writer spent running writes, before their commit.");
  m.describe("herald_store_commit_seconds_total", "counter",
             "Time the database writer spent committing (writing the WAL and waiting for its "
             "fsync).");

  impl_->routes = {
      route("GET", "/healthz", Scope::none, healthz),
      route("GET", "/readyz", Scope::none, readyz),
      route("GET", "/metrics", Scope::none, metrics),
      route("GET", "/v1/version", Scope::none, version),
      route("GET", "/v1/whoami", Scope::any, whoami),
      route("GET", "/ack/{id}", Scope::none, get_ack),
      route("POST", "/ack/{id}", Scope::none, post_ack),
      route("POST", "/v1/events", Scope::ingest, post_event),
      route("POST", "/v1/sources/alertmanager", Scope::ingest, post_alertmanager),
      route("GET", "/v1/sources/{source}/rejections", Scope::audit, list_source_rejections),
      route("GET", "/v1/clients", Scope::admin_read, get_clients),
      route("PUT", "/v1/clients/{client}", Scope::admin, put_client),
      route("GET", "/v1/clients/{client}", Scope::admin_read, get_client),
      route("DELETE", "/v1/clients/{client}", Scope::admin, delete_client),
      route("GET", "/v1/clients/{client}/contacts", Scope::admin_read, get_contacts),
      route("PUT", "/v1/clients/{client}/contacts/{contact}", Scope::admin, put_contact),
      route("GET", "/v1/clients/{client}/contacts/{contact}", Scope::admin_read, get_contact),
      route("DELETE", "/v1/clients/{client}/contacts/{contact}", Scope::admin, delete_contact),
      route("GET", "/v1/clients/{client}/endpoints", Scope::admin_read, get_endpoints),
      route("PUT", "/v1/clients/{client}/endpoints/{endpoint}", Scope::admin, put_endpoint),
      route("GET", "/v1/clients/{client}/endpoints/{endpoint}", Scope::admin_read, get_endpoint),
      route("DELETE", "/v1/clients/{client}/endpoints/{endpoint}", Scope::admin, delete_endpoint),
      route("PUT", "/v1/clients/{client}/plan", Scope::admin, put_plan),
      route("GET", "/v1/clients/{client}/plan", Scope::admin_read, get_plan),
      route("POST", "/v1/clients/{client}/plan/preview", Scope::admin_read, preview_plan),
      route("GET", "/v1/templates", Scope::admin_read, list_templates),
      route("POST", "/v1/templates/render", Scope::admin_read, render_template),
      route("PUT", "/v1/templates/{name}", Scope::admin, put_template),
      route("GET", "/v1/templates/{name}", Scope::admin_read, get_template),
      route("DELETE", "/v1/templates/{name}", Scope::admin, delete_template),
      route("GET", "/v1/templates/{name}/versions", Scope::admin_read, template_history),
      route("GET", "/v1/deliveries", Scope::audit, list_deliveries),
      route("GET", "/v1/deliveries/{id}", Scope::audit, get_delivery),
      route("POST", "/v1/deliveries/{id}/retry", Scope::admin, retry_delivery),
      route("GET", "/v1/incidents/{incident}", Scope::audit, get_incident),
      route("GET", "/v1/audit", Scope::audit, list_audit),
      route("GET", "/v1/audit/export", Scope::audit, export_audit),
      route("GET", "/v1/audit/verify", Scope::audit, verify_audit),
      // Drills and reports (daemon/api/drills.cpp, daemon/api/reports.cpp)
      route("POST", "/v1/clients/{client}/drills", Scope::admin, post_drill),
      route("GET", "/v1/clients/{client}/drills", Scope::admin_read, list_client_drills),
      route("GET", "/v1/drills/{drill}", Scope::audit, get_drill),
      route("GET", "/v1/clients/{client}/gaps", Scope::admin_read, get_gaps),
      route("PUT", "/v1/clients/{client}/drill-schedule", Scope::admin, put_drill_schedule),
      route("GET", "/v1/clients/{client}/drill-schedule", Scope::admin_read, get_drill_schedule),
      route("DELETE", "/v1/clients/{client}/drill-schedule", Scope::admin, delete_drill_schedule),
      route("PUT", "/v1/clients/{client}/obligations", Scope::admin, put_obligations),
      route("GET", "/v1/clients/{client}/obligations", Scope::admin_read, get_obligations),
      route("POST", "/v1/incidents/{incident}/obligations/{obligation}/met", Scope::admin,
            post_obligation_met),
      route("GET", "/v1/incidents/{incident}/report", Scope::audit, get_incident_report),
      route("GET", "/v1/reports/effectiveness", Scope::audit, get_effectiveness),
      route("POST", "/v1/tokens", Scope::admin, post_token),
      route("GET", "/v1/tokens", Scope::admin, list_tokens),
      route("DELETE", "/v1/tokens/{name}", Scope::admin, delete_token),
  };
}

Api::~Api() = default;

Status Api::load_stored_tokens() {
  auto rows = impl_->services.store.read<std::vector<store::ApiToken>>(
      [](store::Repo& r) { return r.api_tokens(); });
  if (!rows) {
    return rows.error();
  }
  std::vector<Token> tokens;
  for (auto& row : *rows) {
    tokens.push_back(Token{row.name, row.sha256, row.scopes, true, row.created_at, row.created_by,
                           row.expires_at});
  }
  return impl_->tokens.set_stored(std::move(tokens));
}

Status Api::set_config_tokens(std::vector<Token> tokens) {
  return impl_->tokens.set_config(std::move(tokens));
}

void Api::handle(http::Request&& request, http::Responder respond) {
  auto& s = impl_->services;
  if (is_console_path(request.path)) {
    auto r = console_response(request);
    s.metrics.add("herald_http_requests_total", fmt::format("route=\"/ui\",code=\"{}\"", r.status));
    respond(std::move(r));
    return;
  }
  auto segments = split_path(request.path);
  std::unordered_map<std::string, std::string> params;
  const Route* found = nullptr;
  std::vector<std::string> allowed_methods;
  for (const auto& r : impl_->routes) {
    if (match(r, segments, params)) {
      std::string method = request.method == "HEAD" ? "GET" : request.method;
      if (r.method == method) {
        found = &r;
        break;
      }
      allowed_methods.push_back(r.method);
    }
  }
  // The route pattern, not the raw path, labels metrics: ids would explode the series count.
  static const std::string kUnmatched = "route=\"/unmatched\"";
  auto counted = [&s, respond,
                  &label = found ? found->metric_label : kUnmatched](http::Response r) {
    s.metrics.add("herald_http_requests_total", fmt::format("{},code=\"{}\"", label, r.status));
    respond(std::move(r));
  };
  if (!found) {
    if (!allowed_methods.empty()) {
      auto r =
          error_response(make_error(ErrorKind::invalid, "method_not_allowed",
                                    fmt::format("{} is not allowed on {}: use {}", request.method,
                                                request.path, fmt::join(allowed_methods, ", "))));
      r.status = 405;
      r.headers.emplace_back("Allow", fmt::format("{}", fmt::join(allowed_methods, ", ")));
      counted(std::move(r));
      return;
    }
    counted(error_response(make_error(ErrorKind::not_found, "not_found",
                                      fmt::format("no such endpoint: {}", request.path))));
    return;
  }

  Call call{request, std::move(params), {}, {}};
  if (found->scope != Scope::none) {
    auto auth = request.header("authorization");
    std::optional<Token> token;
    auto now = s.clock.now();
    if (auth && auth->size() > 7 &&
        (auth->rfind("Bearer ", 0) == 0 || auth->rfind("bearer ", 0) == 0)) {
      token = impl_->tokens.find(sha256_hex(auth->substr(7)), now);
    }
    bool expired = token && token->expires_at && *token->expires_at <= now;
    if (!token || expired) {
      s.metrics.add("herald_http_auth_failures_total", "code=\"401\"");
      counted(
          error_response(make_error(ErrorKind::unauthorized, "unauthorized",
                                    expired ? fmt::format("token \"{}\" expired at {}", token->name,
                                                          format_rfc3339(*token->expires_at))
                                    : auth  ? "unknown token"
                                            : "missing Authorization: Bearer TOKEN header")));
      return;
    }
    if (!allows(*token, found->scope)) {
      s.metrics.add("herald_http_auth_failures_total", "code=\"403\"");
      counted(error_response(make_error(ErrorKind::forbidden, "forbidden",
                                        fmt::format("token \"{}\" lacks the scope this needs: {}",
                                                    token->name, scope_name(found->scope)))));
      return;
    }
    call.actor = token->name;
    call.scopes = token->scopes;
  }
  found->handler(s, call, counted);
}

}  // namespace herald::api
