// Incident communications reports and effectiveness figures (docs/drills.md, docs/api.md).
#include <fmt/format.h>

#include "daemon/api/context.hpp"
#include "daemon/report/report.hpp"

namespace herald::api {
namespace {

Result<bool> html_format(const Call& c) {
  auto format = c.request.query_param("format").value_or("json");
  if (format != "json" && format != "html") {
    return make_error(ErrorKind::invalid, "invalid_parameter", "format must be json or html",
                      "format");
  }
  return format == "html";
}

http::Response html_response(std::string body) {
  http::Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  // The page is self-contained: nothing it shows may load or run anything.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

Result<std::optional<Timestamp>> time_param(const Call& c, const char* name) {
  auto text = c.request.query_param(name);
  if (!text || text->empty()) {
    return std::optional<Timestamp>{};
  }
  auto t = parse_rfc3339(*text);
  if (!t) {
    return make_error(ErrorKind::invalid, "invalid_parameter",
                      fmt::format("{} must be an RFC 3339 time like 2026-12-01T00:00:00Z", name),
                      name);
  }
  return std::optional<Timestamp>(*t);
}

}  // namespace

void get_incident_report(Services& s, const Call& c, const http::Responder& respond) {
  auto html = html_format(c);
  auto client = c.request.query_param("client");
  if (!html) {
    respond(error_response(html.error()));
    return;
  }
  if (!client || client->empty()) {
    respond(
        error_response(make_error(ErrorKind::invalid, "missing_parameter",
                                  "?client= is required: incident ids are per client", "client")));
    return;
  }
  const auto incident = c.param("incident");
  auto r = s.store.read<json>([&](store::Repo& repo) {
    return report::incident_report(repo, *client, incident, s.clock.now());
  });
  if (!r) {
    respond(error_response(r.error()));
    return;
  }
  respond(*html ? html_response(report::incident_report_html(*r)) : json_response(200, *r));
}

void get_effectiveness(Services& s, const Call& c, const http::Responder& respond) {
  auto html = html_format(c);
  auto since = time_param(c, "since");
  auto until = time_param(c, "until");
  if (!html || !since || !until) {
    respond(error_response(!html ? html.error() : !since ? since.error() : until.error()));
    return;
  }
  report::Period p;
  p.client_id = c.request.query_param("client").value_or("");
  p.since = *since;
  p.until = *until;
  auto r = s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    if (!p.client_id.empty()) {
      auto client = repo.client(p.client_id);
      if (!client) {
        return client.error();
      }
      if (!client->has_value()) {
        return make_error(ErrorKind::not_found, "not_found",
                          fmt::format("unknown client \"{}\"", p.client_id));
      }
    }
    return report::effectiveness(repo, p, s.clock.now());
  });
  if (!r) {
    respond(error_response(r.error()));
    return;
  }
  respond(*html ? html_response(report::effectiveness_html(*r)) : json_response(200, *r));
}

}  // namespace herald::api
