// Fuzz target "template": a template source compiled and rendered as the daemon does it, in
// every escape mode. The input is up to three parts separated by NUL bytes:
//   SOURCE \0 PARTIAL \0 CONTEXT
// SOURCE is the template (as PUT /v1/templates/{name} stores it), PARTIAL is stored as
// partial.footer, CONTEXT is the JSON context of POST /v1/templates/render (the sample context
// when absent or not an object).
// Covered: check_template (what a save compiles), template_warnings, render_string (the preview)
// and Renderer::render with the source stored as a client's override of every part (what a
// delivery renders: email, sms with its length fitting, chat for each service's escaping),
// partial cycles included. Rendering is the costly part, so each input renders in one preview
// mode and on one delivery channel, both chosen by the input's length (so every mutation that
// adds or removes a byte moves to another): HTML, none or chat escaping, and email, sms, or
// chat for slack/mattermost (escaped) or teams/discord/googlechat (not).
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/render/renderer.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

using namespace herald;

constexpr size_t kMaxTemplateBytes = 64 * 1024;  // as daemon/api/templates.cpp

std::vector<std::string_view> split(std::string_view input, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t nul = input.find('\0');
    if (nul == std::string_view::npos) {
      break;
    }
    parts.push_back(input.substr(0, nul));
    input.remove_prefix(nul + 1);
  }
  parts.push_back(input);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  static const render::Renderer renderer = render::Renderer::load_shipped().value();
  const auto parts = split({reinterpret_cast<const char*>(data), size}, 3);
  const std::string source(parts[0]);
  if (source.size() > kMaxTemplateBytes) {
    return 0;  // refused before compiling
  }
  const std::string partial = parts.size() > 1 ? std::string(parts[1]) : std::string();
  json context = render::context_json(render::sample_context());
  if (parts.size() > 2) {
    auto given = json::parse(parts[2], nullptr, false);
    if (given.is_object()) {
      context = std::move(given);
    }
  }

  if (!render::check_template(source)) {
    return 0;  // a save is refused; nothing renders it
  }
  (void)render::template_warnings(source, {"footer"});

  std::map<std::string, std::string> partials;
  if (parts.size() > 1) {
    partials["footer"] = partial;
  }
  constexpr std::string_view kParts[] = {"email.html", "email.text", "chat.text", "sms.text",
                                         "email.subject"};
  auto rendered =
      render::render_string(source, kParts[size % std::size(kParts)], context, partials);
  if (!rendered) {
    FUZZ_CHECK(rendered.error().kind == ErrorKind::unprocessable);
  }

  // The source as a client's override of every part, PARTIAL as its partial.footer.
  render::TemplateSet overrides;
  for (const char* name :
       {"any.email.subject", "any.email.text", "any.email.html", "any.sms.text", "any.chat.text"}) {
    overrides.push_back({"acme", name, source, 1});
  }
  if (parts.size() > 1 && render::check_template(partial)) {
    overrides.push_back({"acme", "partial.footer", partial, 1});
  }
  render::TemplateContext ctx = render::sample_context(Phase::containment);
  ctx.ack_url = "https://herald.example/ack/abc";
  constexpr std::pair<std::string_view, std::string_view> kChannels[] = {
      {"email", ""},       {"sms", ""},   {"chat", "slack"},      {"chat", "teams"},
      {"chat", "discord"}, {"email", ""}, {"chat", "mattermost"}, {"chat", "googlechat"}};
  const auto& [channel, endpoint_type] = kChannels[size % std::size(kChannels)];
  auto message = renderer.render(ctx, channel, endpoint_type, &overrides);
  if (!message) {
    FUZZ_CHECK(message.error().kind == ErrorKind::unprocessable);
  } else if (channel == "sms") {
    FUZZ_CHECK(message->text.size() <= 4 * render::kMaxSmsChars);
  }
  return 0;
}
