#include "daemon/render/renderer.hpp"

#include <algorithm>
#include <kainjow/mustache.hpp>
#include <map>
#include <mutex>

#include "daemon/render/shipped_templates.hpp"

namespace herald::render {
namespace {

namespace mstch = kainjow::mustache;
using Escape = std::function<std::string(const std::string&)>;

std::string escape_none(const std::string& s) {
  return s;
}

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Slack's and Mattermost's message formatting: only these three are control characters.
std::string escape_chat_markup(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Escape chat_escape(std::string_view endpoint_type) {
  if (endpoint_type.empty() || endpoint_type == "slack" || endpoint_type == "mattermost") {
    return escape_chat_markup;
  }
  return escape_none;
}

// The escaping for CHANNEL.PART, or nullopt for a part that has no template.
std::optional<Escape> escape_for(std::string_view channel_part) {
  if (channel_part == "email.html") {
    return Escape(escape_html);
  }
  if (channel_part == "email.subject" || channel_part == "email.text" ||
      channel_part == "sms.text") {
    return Escape(escape_none);
  }
  if (channel_part == "chat.text") {
    return chat_escape({});
  }
  return std::nullopt;
}

// Mustache sections treat every string as true; "" and null become false so that
// `{{#ack_url}}...{{/ack_url}}` disappears when there is no link. Numbers become strings
// (kainjow would turn them into booleans).
mstch::data to_data(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      mstch::data out{mstch::data::type::object};
      for (const auto& [key, item] : value.items()) {
        out.set(key, to_data(item));
      }
      return out;
    }
    case nlohmann::json::value_t::array: {
      mstch::data out{mstch::data::type::list};
      for (const auto& item : value) {
        out.push_back(to_data(item));
      }
      return out;
    }
    case nlohmann::json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      return s.empty() ? mstch::data(false) : mstch::data(s);
    }
    case nlohmann::json::value_t::boolean:
      return mstch::data(value.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return mstch::data(value.dump());
    default:
      return mstch::data(false);
  }
}

// kainjow reports "... at OFFSET"; people want a line and column.
std::string describe_template_error(std::string_view source, const std::string& message) {
  auto at = message.rfind(" at ");
  if (at == std::string::npos || at + 4 >= message.size() ||
      !std::all_of(message.begin() + static_cast<long>(at) + 4, message.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return message;
  }
  size_t offset = std::min<size_t>(std::stoul(message.substr(at + 4)), source.size());
  std::string_view before = source.substr(0, offset);
  size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  size_t newline = before.rfind('\n');
  size_t column = newline == std::string_view::npos ? offset + 1 : offset - newline;
  std::string what = message.substr(0, at);
  if (!what.empty()) {
    what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + what;
}

Error template_error(std::string message) {
  return make_error(ErrorKind::unprocessable, "invalid_template", std::move(message), "template");
}

Result<std::shared_ptr<const mstch::mustache>> compile(std::string_view source) {
  auto tmpl = std::make_shared<mstch::mustache>(std::string(source));
  if (!tmpl->is_valid()) {
    return template_error(describe_template_error(source, tmpl->error_message()));
  }
  return std::shared_ptr<const mstch::mustache>(std::move(tmpl));
}

Result<std::string> render_once(mstch::mustache& tmpl, const mstch::data& data,
                                const Escape& escape) {
  tmpl.set_custom_escape(escape);
  std::string out = tmpl.render(data);
  if (!tmpl.is_valid()) {
    return template_error("render failed: " + tmpl.error_message());
  }
  return out;
}

// kainjow's render() mutates the template and a render error leaves it unusable for good, so
// a shared template is never rendered itself: each render borrows a private copy from a small
// pool (copying the parsed tree costs about as much as rendering) and returns it if it is
// still valid.
class TemplatePool {
 public:
  explicit TemplatePool(std::shared_ptr<const mstch::mustache> prototype)
      : prototype_(std::move(prototype)) {}

  Result<std::string> render(const mstch::data& data, const Escape& escape) const {
    std::unique_ptr<mstch::mustache> tmpl;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        tmpl = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!tmpl) {
      tmpl = std::make_unique<mstch::mustache>(*prototype_);
    }
    auto out = render_once(*tmpl, data, escape);
    if (out.ok()) {
      std::lock_guard lock(mutex_);
      if (free_.size() < kMaxFree) {
        free_.push_back(std::move(tmpl));
      }
    }
    return out;
  }

 private:
  static constexpr size_t kMaxFree = 16;
  std::shared_ptr<const mstch::mustache> prototype_;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<mstch::mustache>> free_;
};

// No header injection: a subject is one line.
std::string clean_subject(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool in_break = false;
  for (char c : s) {
    if (c == '\r' || c == '\n') {
      if (!in_break) {
        out += ' ';
      }
      in_break = true;
    } else {
      out += c;
      in_break = false;
    }
  }
  auto first = out.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return {};
  }
  auto last = out.find_last_not_of(" \t");
  return out.substr(first, last - first + 1);
}

std::string trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

// kainjow drops a line holding only a section tag when the section renders, but leaves it as
// an empty line when the section is skipped; plain text collapses runs of blank lines so that
// templates can put section tags on their own lines.
std::string collapse_blank_lines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool previous_blank = false;
  while (!s.empty()) {
    size_t end = s.find('\n');
    std::string_view line = s.substr(0, end);
    s.remove_prefix(end == std::string_view::npos ? s.size() : end + 1);
    auto last = line.find_last_not_of(" \t\r");
    line = last == std::string_view::npos ? std::string_view{} : line.substr(0, last + 1);
    if (line.empty() && previous_blank) {
      continue;
    }
    previous_blank = line.empty();
    out.append(line);
    out += '\n';
  }
  return out;
}

// The finishing every part gets, in render() and render_string() alike.
std::string finish(std::string_view channel_part, std::string_view rendered) {
  if (channel_part == "email.subject") {
    return clean_subject(rendered);
  }
  if (channel_part == "email.html") {
    return std::string(rendered);
  }
  std::string text = trim(collapse_blank_lines(rendered));
  if (channel_part == "email.text" && !text.empty()) {
    text += '\n';
  }
  return text;
}

nlohmann::json parse_details(const std::string& details_json) {
  auto details = nlohmann::json::parse(details_json, nullptr, false);
  if (details.is_discarded() || !details.is_object()) {
    return nlohmann::json::object();
  }
  return details;
}

// Templates see nested objects and lists as they are, every scalar as a string.
nlohmann::json stringify_scalars(const nlohmann::json& value) {
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : value.items()) {
      out[key] = stringify_scalars(item);
    }
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : value) {
      out.push_back(stringify_scalars(item));
    }
    return out;
  }
  if (value.is_string()) {
    return value;
  }
  if (value.is_null()) {
    return "";
  }
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool valid_name(std::string_view name) {
  auto first = name.find('.');
  if (first == std::string_view::npos) {
    return false;
  }
  std::string_view phase = name.substr(0, first);
  std::string_view rest = name.substr(first + 1);
  bool phase_ok = phase == "any" || parse_phase(phase).has_value();
  return phase_ok && escape_for(rest).has_value();
}

}  // namespace

struct Renderer::Shipped {
  std::map<std::string, std::unique_ptr<TemplatePool>, std::less<>> compiled;
  std::map<std::string, std::string, std::less<>> sources;
};

Renderer::Renderer(std::shared_ptr<const Shipped> shipped, OverrideLookup overrides)
    : shipped_(std::move(shipped)), overrides_(std::move(overrides)) {}

Result<Renderer> Renderer::load_shipped(OverrideLookup overrides) {
  auto shipped = std::make_shared<Shipped>();
  for (const ShippedTemplate& t : shipped_templates()) {
    if (!valid_name(t.name)) {
      return make_error(
          ErrorKind::internal, "invalid_template",
          "shipped template " + std::string(t.name) + ": the name is not PHASE.CHANNEL.PART");
    }
    auto compiled = compile(t.body);
    if (!compiled.ok()) {
      return make_error(
          ErrorKind::internal, "invalid_template",
          "shipped template " + std::string(t.name) + ": " + compiled.error().message);
    }
    shipped->compiled.emplace(std::string(t.name),
                              std::make_unique<TemplatePool>(std::move(compiled.value())));
    shipped->sources.emplace(std::string(t.name), std::string(t.body));
  }
  return Renderer(std::move(shipped), std::move(overrides));
}

std::vector<std::string> Renderer::shipped_names() const {
  std::vector<std::string> names;
  for (const auto& [name, tmpl] : shipped_->compiled) {
    names.push_back(name);
  }
  return names;
}

std::optional<std::string> Renderer::shipped_source(std::string_view name) const {
  auto it = shipped_->sources.find(name);
  if (it == shipped_->sources.end()) {
    return std::nullopt;
  }
  return it->second;
}

Result<RenderedMessage> Renderer::render(const TemplateContext& ctx, std::string_view channel,
                                         std::string_view endpoint_type) const {
  RenderedMessage message;
  if (channel == kChannelWebhook) {
    message.payload_json = webhook_payload(ctx);
    return message;
  }
  std::vector<std::string_view> parts;
  if (channel == kChannelEmail) {
    parts = {"subject", "text", "html"};
  } else if (channel == kChannelSms || channel == kChannelChat) {
    parts = {"text"};
  } else {
    return make_error(ErrorKind::invalid, "invalid_channel",
                      "unknown channel \"" + std::string(channel) + "\"", "channel");
  }

  const mstch::data data = to_data(context_json(ctx));
  const std::string phase(to_string(ctx.phase));
  for (std::string_view part : parts) {
    const std::string suffix = std::string(channel) + "." + std::string(part);
    Escape escape = channel == kChannelChat ? chat_escape(endpoint_type) : *escape_for(suffix);

    // Client's PHASE → client's any → shipped PHASE → shipped any.
    std::optional<Result<std::string>> rendered;
    for (const std::string& name : {phase + "." + suffix, "any." + suffix}) {
      if (!overrides_) {
        break;
      }
      if (auto body = overrides_(ctx.client_id, name)) {
        mstch::mustache tmpl(*body);
        if (!tmpl.is_valid()) {
          return template_error("template " + name + " of client " + ctx.client_id + ": " +
                                describe_template_error(*body, tmpl.error_message()));
        }
        rendered = render_once(tmpl, data, escape);
        break;
      }
    }
    for (const std::string& name : {phase + "." + suffix, "any." + suffix}) {
      if (rendered) {
        break;
      }
      if (auto it = shipped_->compiled.find(name); it != shipped_->compiled.end()) {
        rendered = it->second->render(data, escape);
      }
    }
    if (!rendered) {
      return make_error(ErrorKind::internal, "missing_template",
                        "no template for " + phase + "." + suffix);
    }
    if (!rendered->ok()) {
      return rendered->error();
    }
    std::string text = finish(suffix, rendered->value());
    if (part == "subject") {
      message.subject = std::move(text);
    } else if (part == "html") {
      message.html = std::move(text);
    } else {
      message.text = std::move(text);
    }
  }
  return message;
}

Result<std::string> render_string(std::string_view source, std::string_view channel_part,
                                  const nlohmann::json& context) {
  auto escape = escape_for(channel_part);
  if (!escape) {
    return make_error(ErrorKind::invalid, "invalid_channel",
                      "unknown channel \"" + std::string(channel_part) +
                          "\" (expected email.subject, email.text, email.html, sms.text or "
                          "chat.text)",
                      "channel");
  }
  mstch::mustache tmpl{std::string(source)};
  if (!tmpl.is_valid()) {
    return template_error(describe_template_error(source, tmpl.error_message()));
  }
  auto rendered = render_once(tmpl, to_data(context), *escape);
  if (!rendered.ok()) {
    return rendered.error();
  }
  return finish(channel_part, rendered.value());
}

Result<void> check_template(std::string_view source) {
  auto compiled = compile(source);
  if (!compiled.ok()) {
    return compiled.error();
  }
  return {};
}

std::string webhook_payload(const TemplateContext& ctx) {
  nlohmann::ordered_json payload;
  payload["type"] = "incident.phase_changed";
  payload["event_id"] = ctx.event_id;
  payload["client"] = ctx.client_id;
  payload["incident"] = {{"id", ctx.incident_id},
                         {"title", ctx.incident_title},
                         {"severity", to_string(ctx.severity)}};
  payload["phase"] = to_string(ctx.phase);
  payload["previous_phase"] =
      ctx.previous_phase ? nlohmann::ordered_json(to_string(*ctx.previous_phase)) : nullptr;
  payload["occurred_at"] = format_rfc3339(ctx.occurred_at);
  payload["summary"] = ctx.summary;
  payload["details"] = parse_details(ctx.details_json);
  payload["drill"] = ctx.drill;
  return payload.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::json context_json(const TemplateContext& ctx) {
  nlohmann::json phase = {{"id", to_string(ctx.phase)},
                          {"label", phase_label(ctx.phase)},
                          {"number", std::to_string(phase_number(ctx.phase))}};
  for (Phase p : kAllPhases) {
    phase["is_" + std::string(to_string(p))] = p == ctx.phase;
  }
  nlohmann::json previous = {{"id", ""}, {"label", ""}};
  if (ctx.previous_phase) {
    previous = {{"id", to_string(*ctx.previous_phase)},
                {"label", phase_label(*ctx.previous_phase)}};
  }
  return {
      {"client", {{"id", ctx.client_id}, {"name", ctx.client_name}}},
      {"incident",
       {{"id", ctx.incident_id},
        {"title", ctx.incident_title},
        {"severity", to_string(ctx.severity)}}},
      {"phase", phase},
      {"previous_phase", previous},
      {"event",
       {{"id", ctx.event_id},
        {"summary", ctx.summary},
        {"occurred_at", format_rfc3339(ctx.occurred_at)},
        {"details", stringify_scalars(parse_details(ctx.details_json))}}},
      {"contact", {{"name", ctx.contact_name}, {"role", ctx.contact_role}}},
      {"ack_url", ctx.ack_url},
      {"update", {{"number", std::to_string(ctx.update_number)}}},
      {"drill", ctx.drill},
  };
}

}  // namespace herald::render
