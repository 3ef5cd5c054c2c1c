#include "channels/email/email_channel.hpp"

#include <fmt/format.h>

#include <cctype>

#include "channels/email/mime.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::channels {
namespace {

// The characters a msg-id's left part may hold (dot-atom-text); anything else becomes '-',
// so ids from elsewhere still make a valid and stable Message-ID.
std::string msg_id_part(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    bool atext =
        std::isalnum(c) || std::string_view("!#$%&'*+-/=?^_`{|}~.").find(static_cast<char>(c)) !=
                               std::string_view::npos;
    out += atext ? static_cast<char>(c) : '-';
  }
  return out;
}

std::string mailbox_header(std::string_view name, const std::string& address) {
  if (name.empty()) {
    return address;
  }
  return email::display_name(name) + " <" + address + ">";
}

void add_part(std::string& out, const std::string& boundary, std::string_view subtype,
              std::string_view body) {
  out += "--" + boundary + "\r\n";
  out += fmt::format("Content-Type: text/{}; charset=UTF-8\r\n", subtype);
  out += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
  out += email::quoted_printable(body);
  out += "\r\n";
}

}  // namespace

EmailChannel::EmailChannel(SmtpSettings settings) : settings_(std::move(settings)) {}

Result<std::string> EmailChannel::compose(const Outgoing& m, const std::string& boundary) const {
  auto from = email::parse_mailbox(settings_.from);
  if (!from) {
    return make_error(ErrorKind::invalid, "invalid_from",
                      fmt::format("[smtp] from '{}' is not an email address", settings_.from),
                      "from");
  }
  if (!email::valid_address(m.address)) {
    return make_error(ErrorKind::invalid, "invalid_address",
                      fmt::format("'{}' is not a usable email address", m.address), "email");
  }
  std::string domain = from->address.substr(from->address.find('@') + 1);
  std::string out;
  out += "Date: " + email::rfc5322_date(m.now) + "\r\n";
  out += "From: " + mailbox_header(from->name, from->address) + "\r\n";
  out += "To: " + mailbox_header(m.recipient_name, m.address) + "\r\n";
  out += email::unstructured_header("Subject", m.subject) + "\r\n";
  out += fmt::format("Message-ID: <{}@{}>\r\n", msg_id_part(m.message_id), domain);
  if (!m.thread_key.empty()) {
    // Every message of an incident refers to the same (virtual) first message, so clients
    // thread them together even when the first one never arrived.
    std::string thread = fmt::format("<{}@{}>", msg_id_part(m.thread_key), domain);
    out += "In-Reply-To: " + thread + "\r\n";
    out += "References: " + thread + "\r\n";
  }
  out += "MIME-Version: 1.0\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  out += "X-Herald-Message-Id: " + msg_id_part(m.message_id) + "\r\n";
  out += fmt::format("Content-Type: multipart/alternative;\r\n boundary=\"{}\"\r\n", boundary);
  out += "\r\n";
  add_part(out, boundary, "plain", m.text);
  if (!m.html.empty()) {
    add_part(out, boundary, "html", m.html);
  }
  out += "--" + boundary + "--\r\n";
  return out;
}

Result<Request> EmailChannel::build(const Outgoing& m) const {
  // "=_" never occurs in quoted-printable output, so the boundary cannot collide with a body.
  std::string boundary = "=_herald_" + hex_encode(random_bytes(12));
  auto payload = compose(m, boundary);
  if (!payload) {
    return payload.error();
  }
  SmtpRequest request;
  request.url = settings_.url;
  request.tls = settings_.tls;
  request.username = settings_.username;
  request.password = settings_.password;
  request.mail_from = email::parse_mailbox(settings_.from)->address;
  request.recipients = {m.address};
  request.payload = std::move(payload).value();
  return Request(std::move(request));
}

Outcome EmailChannel::interpret(const Response& r) const {
  Outcome out;
  out.status_code = r.status_code;
  long s = r.status_code;
  if (s >= 500) {
    out.verdict = Verdict::permanent;
    out.detail = fmt::format("SMTP server refused with {}: {}", s, r.transport_message);
  } else if (s >= 400) {
    out.verdict = Verdict::retryable;
    out.detail = fmt::format("SMTP server deferred with {}: {}", s, r.transport_message);
  } else if (r.transport_error != 0) {
    out.verdict = Verdict::retryable;
    out.detail = "SMTP server not reached: " + r.transport_message;
  } else {
    out.verdict = Verdict::delivered;
    out.detail = fmt::format("accepted by the SMTP server ({})", s);
  }
  return out;
}

}  // namespace herald::channels
