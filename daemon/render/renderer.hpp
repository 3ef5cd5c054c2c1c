// The renderer: turns an incident event into the text of one message with mustache templates
// (a client's override, else the shipped default), escaping values for where they land.
#pragma once

#include <functional>
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
};

// The parts a channel uses: email fills subject, text and html; sms and chat fill text;
// webhook fills payload_json only.
struct RenderedMessage {
  std::string subject, text, html, payload_json;
};

// Client overrides live in the store; the renderer asks this for them. Returns the template
// body stored under an exact name ("containment.email.subject") for the client, or nullopt.
// Called concurrently when render() is.
using OverrideLookup =
    std::function<std::optional<std::string>(std::string_view client_id, std::string_view name)>;

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
  Result<RenderedMessage> render(const TemplateContext& ctx, std::string_view channel,
                                 std::string_view endpoint_type = {}) const;

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
Result<std::string> render_string(std::string_view source, std::string_view channel_part,
                                  const nlohmann::json& context);

// Compiles only: unprocessable "invalid_template" with the line, as render_string.
Result<void> check_template(std::string_view source);

// The JSON body of a generic webhook (CONTRACT.md "What arrives at receivers").
std::string webhook_payload(const TemplateContext& ctx);

// The context as templates see it: strings everywhere (numbers included), `drill` and the
// `phase.is_PHASE` flags boolean, `event.details` objects kept with scalars as strings.
nlohmann::json context_json(const TemplateContext& ctx);

}  // namespace herald::render
