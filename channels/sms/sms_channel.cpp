#include "channels/sms/sms_channel.hpp"

#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "channels/common.hpp"

namespace herald::channels {

bool valid_e164(std::string_view number) {
  if (number.size() < 9 || number.size() > 16 || number.front() != '+') {
    return false;
  }
  for (char c : number.substr(1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

SmsChannel::SmsChannel(SmsSettings settings) : settings_(std::move(settings)) {}

Result<Request> SmsChannel::build(const Outgoing& m) const {
  if (!valid_e164(m.address)) {
    return make_error(
        ErrorKind::invalid, "invalid_phone",
        fmt::format("'{}' is not an E.164 phone number (+ then 8 to 15 digits)", m.address),
        "phone");
  }
  if (!valid_e164(settings_.from)) {
    return make_error(ErrorKind::invalid, "invalid_from",
                      fmt::format("[sms] from '{}' is not an E.164 phone number", settings_.from),
                      "from");
  }
  std::string base = settings_.base_url;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  HttpRequest r;
  r.method = "POST";
  r.url = fmt::format("{}/2010-04-01/Accounts/{}/Messages.json", base,
                      path_encode(settings_.account_sid));
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
               {"Accept", "application/json"},
               {"I-Twilio-Idempotency-Token", m.message_id}};
  r.body = "To=" + form_encode(m.address) + "&From=" + form_encode(settings_.from) +
           "&Body=" + form_encode(utf8_truncate(m.text, kMaxBodyChars));
  r.username = settings_.account_sid;
  r.password = settings_.auth_token;
  r.guard_destination = false;  // the operator configured this provider
  return Request(std::move(r));
}

Outcome SmsChannel::interpret(const Response& r) const {
  Outcome out = classify_http(r, "Twilio");
  if (r.transport_error != 0) {
    return out;
  }
  auto json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return out;
  }
  if (out.verdict == Verdict::delivered) {
    if (auto sid = json.find("sid"); sid != json.end() && sid->is_string()) {
      out.detail = fmt::format("Twilio accepted the message ({}): sid {}", r.status_code,
                               sid->get<std::string>());
    }
    return out;
  }
  auto code = json.find("code");
  auto message = json.find("message");
  if (code != json.end() && code->is_number_integer()) {
    std::string text =
        message != json.end() && message->is_string() ? message->get<std::string>() : std::string();
    long long twilio_code = code->get<long long>();
    out.detail = fmt::format("Twilio answered {} with error {}: {}", r.status_code, twilio_code,
                             body_excerpt(text));
    // Errors that say "not now" rather than "never", whatever their HTTP status: 21611 (the
    // sender's queue is full) and 20429 (too many requests). Every other 4xx is permanent.
    if (out.verdict == Verdict::permanent && (twilio_code == 21611 || twilio_code == 20429)) {
      out.verdict = Verdict::retryable;
      out.retry_after = retry_after_of(r);
    }
  }
  return out;
}

}  // namespace herald::channels
