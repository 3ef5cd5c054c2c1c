// Acknowledgement links: a GET shows what is being acknowledged and a button; the POST the
// button sends records it. No token: the link's signature is the credential, and a GET alone
// never acknowledges (mail scanners and link previews open links).
#include <fmt/format.h>

#include "daemon/api/context.hpp"
#include "daemon/core/ack_link.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/schedule/scheduler.hpp"

namespace herald::api {
namespace {

http::Response page(int status, std::string_view title, std::string_view body_html) {
  http::Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.body = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{}</title></head>"
      "<body style=\"font-family:Arial,Helvetica,sans-serif;max-width:36em;margin:3em auto;"
      "padding:0 1em;color:#1f2933\"><h1 style=\"font-size:1.4em\">{}</h1>{}</body></html>\n",
      render::escape_html(title), render::escape_html(title), body_html);
  return r;
}

http::Response invalid_link() {
  return page(404, "This acknowledgement link is not valid",
              "<p>The link may be incomplete. Open it again from the message you received, or "
              "reply to your incident contact.</p>");
}

// The message behind a link, when the signature is right.
Result<std::optional<Message>> check_link(Services& s, const Call& c) {
  const auto& id = c.param("id");
  auto sig = c.request.query_param("sig").value_or("");
  if (!verify_ack_signature(s.ack_key, id, sig)) {
    return std::optional<Message>{};
  }
  return s.store.read<std::optional<Message>>([&id](store::Repo& r) { return r.message(id); });
}

}  // namespace

void get_ack(Services& s, const Call& c, const http::Responder& respond) {
  auto m = check_link(s, c);
  if (!m) {
    respond(error_response(m.error()));
    return;
  }
  if (!m->has_value() || (*m)->contact_id.empty()) {
    respond(invalid_link());
    return;
  }
  const Message& msg = **m;
  if (msg.acknowledged_at) {
    respond(page(200, "Already acknowledged",
                 fmt::format("<p>This update on incident <strong>{}</strong> ({}) was "
                             "acknowledged at {}. Thank you.</p>",
                             render::escape_html(msg.incident_id),
                             render::escape_html(phase_label(msg.phase)),
                             format_rfc3339(*msg.acknowledged_at))));
    return;
  }
  respond(page(
      200, "Acknowledge this incident update",
      fmt::format("<p>Incident <strong>{}</strong>, phase <strong>{}</strong>, update {}.</p>"
                  "<p>Confirm that you have received and read it. Your incident response team "
                  "will then stop repeating this update to you and will not escalate it.</p>"
                  "<form method=\"post\"><button type=\"submit\" style=\"font-size:1.1em;"
                  "padding:.6em 1.4em;background:#243b53;color:#fff;border:0;border-radius:4px\">"
                  "I have read it</button></form>",
                  render::escape_html(msg.incident_id), render::escape_html(phase_label(msg.phase)),
                  msg.update_number)));
}

void post_ack(Services& s, const Call& c, const http::Responder& respond) {
  auto m = check_link(s, c);
  if (!m) {
    respond(error_response(m.error()));
    return;
  }
  if (!m->has_value() || (*m)->contact_id.empty()) {
    respond(invalid_link());
    return;
  }
  auto outcome = std::make_shared<schedule::AckOutcome>();
  auto now = s.clock.now();
  s.store.write(
      [id = c.param("id"), remote = c.request.remote_address, now,
       outcome](store::Repo& r) -> Status {
        auto a = schedule::acknowledge(r, id, remote, now);
        if (!a) {
          return a.error();
        }
        *outcome = std::move(*a);
        return {};
      },
      [respond, outcome](Status st) {
        if (!st) {
          respond(page(503, "Please try again",
                       "<p>Your acknowledgement could not be recorded just now. Please press "
                       "the button again in a minute.</p>"));
          return;
        }
        const Message& msg = outcome->message;
        respond(page(200, "Thank you: acknowledged",
                     fmt::format("<p>Your acknowledgement of incident <strong>{}</strong> ({}) "
                                 "is recorded{}.</p>",
                                 render::escape_html(msg.incident_id),
                                 render::escape_html(phase_label(msg.phase)),
                                 outcome->first ? "" : " (it had been already)")));
      });
}

}  // namespace herald::api
