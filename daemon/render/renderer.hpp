// The renderer: turns an incident event into the text of one message with mustache templates
// (a client's override, else the shipped default), escaping values for where they land.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/domain.hpp"
#include "daemon/core/result.hpp"

namespace herald::render {

// What a template sees (CONTRACT.md "Templates"); context_json() is its exact JSON shape.
struct TemplateContext {
  std::string client_id, client_name;
  std::string incident_id, incident_title;
  Severity severity = Severity::low;
  Phase phase = Phase::preparation;
  std::optional<Phase> previous_phase;
  std::string event_id;
  std::string summary;
  Timestamp occurred_at{};
  std::string details_json = "{}";
  std::string contact_name, contact_role;  // empty for endpoints
  std::string ack_url;                     // people only
  int update_number = 1;
  bool drill = false;
  std::string locale;  // the client's ("de", "de-AT"): NAME.de is preferred when it exists
  // A notification-deadline reminder or overdue notice (docs/drills.md): written by the
  // obligation.CHANNEL.PART templates, which see `obligation.*`.
  struct Obligation {
    std::string id, description;
    std::string kind;  // "reminder" or "overdue"
    Phase starts = Phase::identification;
    Timestamp started_at{}, due_at{};
    Millis within{0};
    Timestamp now{};  // when it is written: `obligation.remaining` counts from here
  };
  std::optional<Obligation> obligation;
};

// A template stored through the API: a client's override, or everyone's when client_id is
// empty (it then sits between the clients' own and the shipped defaults).
struct StoredTemplate {
  std::string client_id;
  std::string name;  // "containment.email.subject", "partial.footer", "any.sms.text.de"
  std::string body;
  int64_t version = 0;
};
using TemplateSet = std::vector<StoredTemplate>;

// The parts a channel uses: email fills subject, text and html; sms and chat fill text;
// webhook fills payload_json only.
struct RenderedMessage {
  std::string subject, text, html, payload_json;
  // The template of each part, as "NAME@shipped" or "NAME@CLIENT:vN" ("@*:vN" for a template
  // stored for every client), in part order: what the message was written with.
  std::vector<std::string> templates;
  int sms_segments = 0;  // sms only: the segments the text takes
};

// Client overrides live in the store; the renderer asks this for them. Returns the template
// body stored under an exact name ("containment.email.subject") for the client, or nullopt.
// Called concurrently when render() is.
using OverrideLookup =
    std::function<std::optional<std::string>(std::string_view client_id, std::string_view name)>;

// What the messages of one event have in common, prepared once for all of them: the
// template data but for the person (contact, ack_url), and the webhook payload. render() uses
// it for a message whose context matches it in everything else, and builds its own otherwise.
class SharedContext {
 public:
  explicit SharedContext(const TemplateContext& ctx);
  ~SharedContext();
  SharedContext(const SharedContext&) = delete;
  SharedContext& operator=(const SharedContext&) = delete;
  // Whether CTX differs from the one this was made of in nothing but the person.
  bool matches(const TemplateContext& ctx) const;

 private:
  friend class Renderer;
  struct Data;
  TemplateContext ctx_;
  std::unique_ptr<Data> data_;
};

class Renderer {
 public:
  // Compiles every shipped template (embedded in the binary at build time); an error names
  // the template and line.
  static Result<Renderer> load_shipped(OverrideLookup overrides = {});

  // channel: "email" (subject, text, html), "sms" (text), "chat" (text; endpoint_type picks
  // the chat escaping: slack and mattermost escape & < >, other services none, empty means
  // slack's rules), "webhook" (payload_json only: webhook_payload()).
  // Template lookup per part: client's PHASE → client's any → shipped PHASE → shipped any.
  // Errors: invalid "invalid_channel" for an unknown channel; unprocessable
  // "invalid_template" when a client's override does not compile or fails to render.
  // Thread-safe: compiled templates are shared read-only, each render works on its own copy.
  // OVERRIDES, when given, are the client's and everyone's stored templates (the store's
  // current_templates()) and replace the OverrideLookup. Partials ({{> footer}} is
  // "partial.footer") and locale variants (NAME.LOCALE before NAME) follow the same order.
  // SHARED, when given and matching CTX, saves building what the messages of one event share.
  Result<RenderedMessage> render(const TemplateContext& ctx, std::string_view channel,
                                 std::string_view endpoint_type = {},
                                 const TemplateSet* overrides = nullptr,
                                 const SharedContext* shared = nullptr) const;

  // Every shipped template name, sorted ("any.email.html", "closed.email.subject", ...).
  std::vector<std::string> shipped_names() const;

  // The source of a shipped template, or nullopt.
  std::optional<std::string> shipped_source(std::string_view name) const;

 private:
  struct Shipped;
  Renderer(std::shared_ptr<const Shipped> shipped, OverrideLookup overrides);

  std::shared_ptr<const Shipped> shipped_;
  OverrideLookup overrides_;
};

// Renders one template source as it would be for CHANNEL.PART: "email.html" → HTML escaping;
// "email.subject", "email.text", "sms.text" → none; "chat.text" → slack's chat escaping
// (the chat channel JSON-encodes the whole text later). CONTEXT is any JSON object: numbers
// become strings, null and "" are false in sections. Errors: invalid "invalid_channel" for an
// unknown CHANNEL.PART; unprocessable "invalid_template" naming the line when the source does
// not compile.
// PARTIALS maps a partial's short name ("footer") to its source; the shipped ones are used
// for names it lacks.
Result<std::string> render_string(std::string_view source, std::string_view channel_part,
                                  const nlohmann::json& context,
                                  const std::map<std::string, std::string>& partials = {});

// Compiles only: unprocessable "invalid_template" with the line, as render_string.
Result<void> check_template(std::string_view source);

// What a valid template name says. Names are PHASE.CHANNEL.PART or partial.NAME, either with
// an optional .LOCALE ("containment.email.subject.de", "partial.footer.de-AT").
struct TemplateName {
  std::string phase;         // a phase id or "any"; empty for a partial
  std::string channel_part;  // "email.subject"; empty for a partial
  std::string partial;       // "footer" for partial.footer
  std::string locale;        // "" when none
};
// Errors: invalid "invalid_template_name" saying what a name looks like.
Result<TemplateName> parse_template_name(std::string_view name);

// Warnings for a source that compiles: variables the context does not have (with a
// suggestion: `line 1, column 3: unknown variable "incident.titel" (did you mean
// "incident.title"?)`) and partials that do not exist. KNOWN_PARTIALS are the short names
// available beyond the shipped ones. Names under event.details and inside sections over
// lists are not checked: their keys depend on the event.
std::vector<std::string> template_warnings(std::string_view source,
                                           const std::vector<std::string>& known_partials = {});

// A fixed, realistic context for previews, the CLI and golden tests.
TemplateContext sample_context(Phase phase = Phase::containment, bool drill = false);

// SMS length: GSM-7 when every character is in the GSM 03.38 alphabet (extension characters
// such as € [ ] { } count two septets), else UCS-2 (UTF-16 units). One segment holds 160
// septets or 70 units; a longer text is split into segments of 153 or 67.
struct SmsLength {
  bool gsm7 = true;
  int units = 0;  // septets or UTF-16 code units
  int segments = 0;
};
SmsLength sms_length(std::string_view utf8);

// The longest SMS body Herald sends, in characters (ten segments of GSM-7).
constexpr size_t kMaxSmsChars = 1600;
// Cuts TEXT to MAX_CHARS characters at a word boundary, marking the cut with "..."; KEEP (the
// acknowledgement link), when it occurs in TEXT, is never cut: it moves whole to the end.
std::string fit_sms(std::string_view text, std::string_view keep, size_t max_chars = kMaxSmsChars);

// HTML escaping of text for element content and attribute values: & < > " '.
std::string escape_html(std::string_view s);

// The JSON body of a generic webhook (CONTRACT.md "What arrives at receivers").
std::string webhook_payload(const TemplateContext& ctx);

// The context as templates see it: strings everywhere (numbers included), `drill` and the
// `phase.is_PHASE` flags boolean, `event.details` objects kept with scalars as strings.
nlohmann::json context_json(const TemplateContext& ctx);

}  // namespace herald::render
