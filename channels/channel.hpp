// The channel interface: turn one rendered message into a transport request, and classify the
// transport's response. Channels never retry, rate-limit, touch the store or know of plans:
// the dispatcher does all of that (ARCHITECTURE.md, STYLE.md).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/core/time.hpp"

namespace herald::channels {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  Headers headers;
  std::string body;
  std::string username;  // HTTP basic auth when not empty
  std::string password;
  // Refuse loopback/private/link-local/CGNAT/multicast destinations unless allowed by config.
  // True for the client-supplied chat and webhook URLs; false for operator-configured providers.
  bool guard_destination = true;
  bool follow_redirects = false;
  Millis timeout{
      0};  // the whole attempt; 0: the transport's total_timeout (the dispatcher sets it)
};

enum class SmtpTls { opportunistic, required };

struct SmtpRequest {
  std::string url;  // smtp://host:port or smtps://host:port
  SmtpTls tls = SmtpTls::opportunistic;
  std::string username;  // AUTH when not empty
  std::string password;
  std::string mail_from;  // bare address for MAIL FROM
  std::vector<std::string> recipients;
  std::string payload;  // the complete RFC 5322 message, CRLF line endings
  Millis timeout{0};    // the whole conversation; 0: the transport's total_timeout
};

using Request = std::variant<HttpRequest, SmtpRequest>;

// What came back from one transport attempt.
struct Response {
  int transport_error = 0;  // 0 when a response arrived (CURLcode otherwise)
  std::string transport_message;
  // The outbound guard refused the resolved address: a policy decision, not a passing fault.
  bool destination_refused = false;
  long status_code = 0;  // HTTP status or the last SMTP reply code
  Headers headers;       // names lower-cased
  std::string body;      // truncated to a sensible size by the transport
  Millis duration{0};
};

enum class Verdict { delivered, retryable, permanent };

struct Outcome {
  Verdict verdict = Verdict::delivered;
  std::string detail;  // why, for people and the audit log; never contains secrets
  std::optional<Millis> retry_after;
  long status_code = 0;
};

// A message ready to go: rendered text and where it goes.
struct Outgoing {
  std::string message_id;     // the idempotency key, identical on every retry
  std::string channel;        // email, sms, chat, webhook
  std::string endpoint_type;  // for chat: slack, teams, mattermost, discord, googlechat
  std::string subject;        // email
  std::string text;           // email text part, SMS body, chat text
  std::string html;           // email HTML part
  std::string payload_json;   // webhook body
  std::string address;        // email address or E.164 phone number
  std::string recipient_name;
  std::string url;                   // chat or webhook endpoint URL
  std::vector<std::string> secrets;  // webhook signing secrets ("whsec_...")
  std::string thread_key;            // the same for every message of one incident (email threading)
  Timestamp now{};
};

class Channel {
 public:
  virtual ~Channel() = default;
  // Build the request. An error here is permanent (bad address, unusable secret).
  virtual Result<Request> build(const Outgoing& message) const = 0;
  // Classify a response: transport errors, 429 and 5xx are retryable; other 4xx permanent.
  virtual Outcome interpret(const Response& response) const = 0;
};

}  // namespace herald::channels
