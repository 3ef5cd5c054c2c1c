#include "daemon/render/renderer.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
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

// The part of the context that is about the person a message goes to (context_json's
// `contact` and `ack_url`).
nlohmann::json person_json(const TemplateContext& ctx) {
  return {{"contact", {{"name", ctx.contact_name}, {"role", ctx.contact_role}}},
          {"ack_url", ctx.ack_url}};
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

// Sections may nest this deep. kainjow keeps each section's text, so its memory grows with the
// square of the nesting (a 64 KiB template of nested sections took 175 MB; a 1 MB one, more
// than 2 GB); Herald's own templates nest three deep.
constexpr size_t kMaxSectionDepth = 32;
Result<void> check_nesting(std::string_view source);

Result<std::shared_ptr<const mstch::mustache>> compile(std::string_view source) {
  if (auto nesting = check_nesting(source); !nesting) {
    return nesting.error();
  }
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

// The data a template sees: the person's (contact, ack_url, partials) over what the messages
// of one event share. A name is looked up in the first, then the second.
struct Layers {
  const mstch::data* shared;
  const mstch::data* person;
};

Result<std::string> render_once(mstch::mustache& tmpl, const Layers& layers, const Escape& escape) {
  if (layers.person == nullptr) {
    return render_once(tmpl, *layers.shared, escape);
  }
  tmpl.set_custom_escape(escape);
  mstch::context<std::string> context(layers.shared);
  context.push(layers.person);
  std::string out = tmpl.render(context);
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

  Result<std::string> render(const Layers& data, const Escape& escape) const {
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
  return parse_template_name(name).ok();
}

constexpr std::string_view kContextRoots[] = {"client", "incident",  "phase",   "previous_phase",
                                              "event",  "contact",   "ack_url", "update",
                                              "drill",  "obligation"};

bool is_locale(std::string_view s) {
  // [a-z]{2,3}(-[A-Za-z0-9]{2,8})*
  size_t i = 0;
  while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') {
    ++i;
  }
  if (i < 2 || i > 3) {
    return false;
  }
  while (i < s.size()) {
    if (s[i] != '-') {
      return false;
    }
    size_t start = ++i;
    while (i < s.size() && std::isalnum(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    if (i - start < 2 || i - start > 8) {
      return false;
    }
  }
  return true;
}

bool is_partial_name(std::string_view s) {
  if (s.empty() || s.size() > 40 || s[0] < 'a' || s[0] > 'z') {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return std::find(std::begin(kContextRoots), std::end(kContextRoots), s) ==
         std::end(kContextRoots);
}

// "de-AT" → {"de-AT", "de", ""}: the most specific variant first, the default last.
std::vector<std::string> locale_candidates(std::string_view locale) {
  std::vector<std::string> out;
  if (!locale.empty() && is_locale(locale)) {
    out.emplace_back(locale);
    auto dash = locale.find('-');
    if (dash != std::string_view::npos) {
      out.emplace_back(locale.substr(0, dash));
    }
  }
  out.emplace_back();
  return out;
}

// ---- tags, for warnings and partial cycles -------------------------------------------------

struct Tag {
  char kind;  // 'v' variable, '#', '^', '/', '>'
  std::string name;
  size_t line, column;
};

// kainjow's trim: every std::isspace character at both ends.
std::string trim_space(std::string_view s) {
  size_t first = 0;
  size_t last = s.size();
  while (first < last && std::isspace(static_cast<unsigned char>(s[first]))) {
    ++first;
  }
  while (last > first && std::isspace(static_cast<unsigned char>(s[last - 1]))) {
    --last;
  }
  return std::string(s.substr(first, last - first));
}

// The tags of a source exactly as kainjow mustache 4.1 reads them (its parser() in
// mustache.hpp): the open and close delimiters as set by {{=<% %>=}}, "{{{...}}}" under the
// default ones, the contents trimmed, the kind from their first character. The partial cycle
// check relies on seeing every {{> partial}} the engine will expand: a tag it missed could make
// a partial include itself and recurse until the stack overflows. Scanning stops where the
// engine's parse fails (an unclosed tag, an invalid delimiter change): it renders nothing then.
std::vector<Tag> scan_tags(std::string_view s) {
  std::vector<Tag> tags;
  std::string open = "{{";
  std::string close = "}}";
  size_t pos = 0, line = 1, line_start = 0;
  auto advance_to = [&](size_t to) {
    for (; pos < to && pos < s.size(); ++pos) {
      if (s[pos] == '\n') {
        ++line;
        line_start = pos + 1;
      }
    }
  };
  while (true) {
    const size_t start = s.find(open, pos);
    if (start == std::string_view::npos) {
      break;
    }
    advance_to(start);
    const size_t column = start - line_start + 1;
    size_t inner = start + open.size();
    const bool braces = open == "{{" && close == "}}";
    const bool unescaped = braces && inner < s.size() && s[inner] == '{';
    const std::string_view end_delimiter = unescaped ? std::string_view("}}}") : close;
    if (unescaped) {
      ++inner;
    }
    const size_t end = s.find(end_delimiter, inner);
    if (end == std::string_view::npos) {
      break;
    }
    const std::string contents = trim_space(s.substr(inner, end - inner));
    advance_to(end + end_delimiter.size());
    if (!contents.empty() && contents[0] == '=') {
      // "=OPEN CLOSE=": two delimiters with neither whitespace nor '=' in them.
      if (contents.size() < 5 || contents.back() != '=') {
        break;
      }
      const std::string inside =
          trim_space(std::string_view(contents).substr(1, contents.size() - 2));
      const size_t space = inside.find(' ');
      if (space == std::string::npos) {
        break;
      }
      std::string new_open = inside.substr(0, space);
      std::string new_close = inside.substr(inside.find_first_not_of(' ', space + 1));
      const auto valid = [](const std::string& d) {
        return std::none_of(d.begin(), d.end(), [](char c) {
          return c == '=' || std::isspace(static_cast<unsigned char>(c));
        });
      };
      if (!valid(new_open) || !valid(new_close)) {
        break;
      }
      open = std::move(new_open);
      close = std::move(new_close);
      continue;
    }
    char kind = 'v';
    std::string name = contents;
    if (!unescaped && !contents.empty()) {
      switch (contents[0]) {
        case '#':
        case '^':
        case '/':
        case '>':
          kind = contents[0];
          name = trim_space(std::string_view(contents).substr(1));
          break;
        case '&':
          name = trim_space(std::string_view(contents).substr(1));
          break;
        case '!':
          kind = '!';
          break;
        default:
          break;
      }
    }
    if (kind != '!') {
      tags.push_back(Tag{kind, std::move(name), line, column});
    }
  }
  return tags;
}

Result<void> check_nesting(std::string_view source) {
  size_t depth = 0;
  for (const auto& tag : scan_tags(source)) {
    if (tag.kind == '#' || tag.kind == '^') {
      if (++depth > kMaxSectionDepth) {
        return template_error("line " + std::to_string(tag.line) + ", column " +
                              std::to_string(tag.column) + ": sections nest more than " +
                              std::to_string(kMaxSectionDepth) + " levels deep");
      }
    } else if (tag.kind == '/' && depth > 0) {
      --depth;
    }
  }
  return {};
}

std::vector<std::string> partial_refs(std::string_view source) {
  std::vector<std::string> out;
  for (const auto& tag : scan_tags(source)) {
    if (tag.kind == '>') {
      out.push_back(tag.name);
    }
  }
  return out;
}

// The source with every partial tag replaced by the partial's own source (recursively), so that
// rendering it parses nothing: kainjow parses a partial's source again at each use, which is
// most of the cost of rendering an email. kainjow renders a partial into the same line buffer
// and context as the tag it replaces, so the output is the same, provided that (checked here,
// nullopt otherwise) no source changes the delimiters (a partial is parsed with the default
// ones) and every partial tag stands outside any section (inside one, kainjow looks the
// partial's name up through the section's data first). A partial not in PARTIALS renders
// nothing, as in kainjow.
std::optional<std::string> inline_partials(std::string_view s,
                                           const std::map<std::string, std::string>& partials,
                                           int nesting = 0) {
  if (nesting > 16) {
    return std::nullopt;  // deeper than any sane template: a cycle, leave it to kainjow
  }
  std::string out;
  size_t pos = 0;
  int depth = 0;
  while (true) {
    size_t open = s.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(s.substr(pos));
      return out;
    }
    size_t inner = open + 2;
    std::string_view close = "}}";
    bool triple = inner < s.size() && s[inner] == '{';
    if (triple) {
      close = "}}}";
      ++inner;
    }
    size_t end = s.find(close, inner);
    if (end == std::string_view::npos) {
      return std::nullopt;  // kainjow reports it; nothing to gain here
    }
    std::string contents = triple ? std::string() : trim_space(s.substr(inner, end - inner));
    char kind = contents.empty() ? 'v' : contents[0];
    if (kind == '=') {
      return std::nullopt;
    }
    if (kind == '#' || kind == '^') {
      ++depth;
    } else if (kind == '/') {
      --depth;
    }
    if (kind == '>') {
      if (depth != 0) {
        return std::nullopt;
      }
      out.append(s.substr(pos, open - pos));
      auto it = partials.find(trim_space(std::string_view(contents).substr(1)));
      if (it != partials.end()) {
        auto body = inline_partials(it->second, partials, nesting + 1);
        if (!body) {
          return std::nullopt;
        }
        out += *body;
      }
    } else {
      out.append(s.substr(pos, end + close.size() - pos));
    }
    pos = end + close.size();
  }
}

// A partial that includes itself, directly or not, would recurse without end.
std::optional<std::string> find_partial_cycle(const std::map<std::string, std::string>& partials) {
  std::map<std::string, int> state;  // 1 visiting, 2 done
  std::function<std::optional<std::string>(const std::string&)> visit =
      [&](const std::string& name) -> std::optional<std::string> {
    auto it = partials.find(name);
    if (it == partials.end() || state[name] == 2) {
      return std::nullopt;
    }
    if (state[name] == 1) {
      return name;
    }
    state[name] = 1;
    for (const auto& ref : partial_refs(it->second)) {
      if (auto cycle = visit(ref)) {
        return cycle;
      }
    }
    state[name] = 2;
    return std::nullopt;
  };
  for (const auto& [name, body] : partials) {
    if (auto cycle = visit(name)) {
      return cycle;
    }
  }
  return std::nullopt;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

void flatten_keys(const nlohmann::json& value, const std::string& prefix,
                  std::vector<std::string>& out) {
  for (const auto& [key, item] : value.items()) {
    std::string path = prefix.empty() ? key : prefix + "." + key;
    out.push_back(path);
    if (item.is_object() && path != "event.details") {
      flatten_keys(item, path, out);
    }
  }
}

}  // namespace

std::string escape_html(std::string_view s) {
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

struct Renderer::Shipped {
  std::map<std::string, std::unique_ptr<TemplatePool>, std::less<>> compiled;
  std::map<std::string, std::string, std::less<>> sources;
  // The templates that use partials, compiled with the shipped partials inlined: used when
  // every partial a render sees is the shipped one (no stored override, no locale variant).
  std::map<std::string, std::unique_ptr<TemplatePool>, std::less<>> inlined;
};

namespace {

// The shipped sources, for functions that have no Renderer (render_string, warnings).
const std::map<std::string, std::string, std::less<>>& shipped_sources() {
  static const auto* sources = [] {
    auto* m = new std::map<std::string, std::string, std::less<>>();
    for (const ShippedTemplate& t : shipped_templates()) {
      m->emplace(std::string(t.name), std::string(t.body));
    }
    return m;
  }();
  return *sources;
}

std::vector<std::string> shipped_partial_names() {
  std::vector<std::string> out;
  for (const auto& [name, body] : shipped_sources()) {
    if (name.rfind("partial.", 0) == 0 && name.find('.', 8) == std::string::npos) {
      out.push_back(name.substr(8));
    }
  }
  return out;
}

// Adds the partials to a template's data; a cycle is an error.
// CHECKED: the caller knows these partials are free of cycles (the shipped ones are checked
// at load).
Result<void> add_partials(mstch::data& data, const std::map<std::string, std::string>& partials,
                          bool checked = false) {
  if (auto cycle = checked ? std::nullopt : find_partial_cycle(partials)) {
    return template_error("partial \"" + *cycle + "\" includes itself");
  }
  for (const auto& [name, body] : partials) {
    data.set(name, mstch::data(mstch::partial([body = body] { return body; })));
  }
  return {};
}

}  // namespace

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
  std::map<std::string, std::string> partials;
  for (const auto& name : shipped_partial_names()) {
    partials[name] = shipped->sources.find("partial." + name)->second;
  }
  if (auto cycle = find_partial_cycle(partials)) {
    return make_error(ErrorKind::internal, "invalid_template",
                      "shipped template partial." + *cycle + " includes itself");
  }
  for (const auto& [name, source] : shipped->sources) {
    if (name.rfind("partial.", 0) == 0 || partial_refs(source).empty()) {
      continue;
    }
    if (auto inlined = inline_partials(source, partials)) {
      if (auto compiled = compile(*inlined); compiled.ok()) {
        shipped->inlined.emplace(name, std::make_unique<TemplatePool>(std::move(compiled.value())));
      }
    }
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

struct SharedContext::Data {
  mstch::data data;  // the whole context but the person's part
  std::string webhook_payload;
};

SharedContext::SharedContext(const TemplateContext& ctx) : ctx_(ctx) {
  ctx_.contact_name.clear();
  ctx_.contact_role.clear();
  ctx_.ack_url.clear();
  data_ = std::make_unique<Data>(Data{to_data(context_json(ctx_)), webhook_payload(ctx_)});
}

SharedContext::~SharedContext() = default;

bool SharedContext::matches(const TemplateContext& c) const {
  // Every field of TemplateContext but the person's (contact_name, contact_role, ack_url).
  // Deadline notices count `obligation.remaining` from their own `now`: never shared.
  return !c.obligation && !ctx_.obligation && c.client_id == ctx_.client_id &&
         c.client_name == ctx_.client_name && c.incident_id == ctx_.incident_id &&
         c.incident_title == ctx_.incident_title && c.severity == ctx_.severity &&
         c.phase == ctx_.phase && c.previous_phase == ctx_.previous_phase &&
         c.event_id == ctx_.event_id && c.summary == ctx_.summary &&
         c.occurred_at == ctx_.occurred_at && c.details_json == ctx_.details_json &&
         c.update_number == ctx_.update_number && c.drill == ctx_.drill && c.locale == ctx_.locale;
}

Result<RenderedMessage> Renderer::render(const TemplateContext& ctx, std::string_view channel,
                                         std::string_view endpoint_type,
                                         const TemplateSet* overrides,
                                         const SharedContext* shared) const {
  RenderedMessage message;
  if (shared != nullptr && !shared->matches(ctx)) {
    shared = nullptr;
  }
  if (channel == kChannelWebhook) {
    message.payload_json = shared ? shared->data_->webhook_payload : webhook_payload(ctx);
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

  // A stored template found for a name: its body and where it came from.
  struct Found {
    std::string body;
    std::string origin;  // "acme:v3", "*:v2", "shipped"
    const TemplatePool* pool = nullptr;
  };
  const auto locales = locale_candidates(ctx.locale);
  // Level 0: the client's own; 1: everyone's stored; 2: shipped.
  auto find_at = [&](int level, const std::string& name) -> std::optional<Found> {
    if (level == 2) {
      if (auto it = shipped_->compiled.find(name); it != shipped_->compiled.end()) {
        return Found{shipped_->sources.find(name)->second, "shipped", it->second.get()};
      }
      return std::nullopt;
    }
    std::string_view client = level == 0 ? std::string_view(ctx.client_id) : std::string_view();
    if (overrides) {
      for (const auto& t : *overrides) {
        if (t.client_id == client && t.name == name) {
          return Found{t.body, (client.empty() ? "*" : std::string(client)) + ":v" +
                                   std::to_string(t.version)};
        }
      }
    } else if (overrides_ && level == 0) {
      if (auto body = overrides_(ctx.client_id, name)) {
        return Found{*body, std::string(client)};
      }
    }
    return std::nullopt;
  };
  auto resolve =
      [&](const std::vector<std::string>& bases) -> std::optional<std::pair<std::string, Found>> {
    for (int level = 0; level < 3; ++level) {
      for (const auto& base : bases) {
        for (const auto& locale : locales) {
          std::string name = locale.empty() ? base : base + "." + locale;
          if (auto found = find_at(level, name)) {
            return std::make_pair(name, std::move(*found));
          }
        }
      }
    }
    return std::nullopt;
  };

  // The whole context, or the person's part over the shared one; partials go with the first.
  mstch::data own = to_data(shared ? person_json(ctx) : context_json(ctx));
  Layers data = shared ? Layers{&shared->data_->data, &own} : Layers{&own, nullptr};
  std::map<std::string, std::string> partials;
  std::vector<std::string> partial_names = shipped_partial_names();
  bool stored_partials = false;
  bool shipped_partials = true;  // every partial is the shipped one: inlined templates apply
  if (overrides) {
    for (const auto& t : *overrides) {
      auto parsed = parse_template_name(t.name);
      if (parsed && !parsed->partial.empty()) {
        partial_names.push_back(parsed->partial);
      }
    }
  }
  for (const auto& name : partial_names) {
    if (auto found = resolve({"partial." + name})) {
      partials[name] = found->second.body;
      stored_partials = stored_partials || !found->second.pool;
      shipped_partials =
          shipped_partials && found->second.pool && found->first == "partial." + name;
    }
  }
  if (auto added = add_partials(own, partials, !stored_partials); !added) {
    return template_error("client " + ctx.client_id + ": " + added.error().message);
  }

  // Deadline reminders have templates of their own, named like a phase: obligation.*.
  const std::string phase(ctx.obligation ? std::string("obligation")
                                         : std::string(to_string(ctx.phase)));
  for (std::string_view part : parts) {
    const std::string suffix = std::string(channel) + "." + std::string(part);
    Escape escape = channel == kChannelChat ? chat_escape(endpoint_type) : *escape_for(suffix);

    // Client's PHASE → client's any → (everyone's) → shipped PHASE → shipped any; NAME.LOCALE
    // before NAME at each step.
    auto found = resolve({phase + "." + suffix, "any." + suffix});
    if (!found) {
      return make_error(ErrorKind::internal, "missing_template",
                        "no template for " + phase + "." + suffix);
    }
    const auto& [name, source] = *found;
    Result<std::string> rendered = std::string();
    if (source.pool) {
      const TemplatePool* pool = source.pool;
      if (auto it = shipped_->inlined.find(name);
          shipped_partials && it != shipped_->inlined.end()) {
        pool = it->second.get();
      }
      rendered = pool->render(data, escape);  // partials live in the data
    } else {
      if (auto nesting = check_nesting(source.body); !nesting) {
        return template_error("template " + name + " of client " + ctx.client_id + ": " +
                              nesting.error().message);
      }
      mstch::mustache tmpl(source.body);
      if (!tmpl.is_valid()) {
        return template_error("template " + name + " of client " + ctx.client_id + ": " +
                              describe_template_error(source.body, tmpl.error_message()));
      }
      rendered = render_once(tmpl, data, escape);
    }
    if (!rendered.ok()) {
      return rendered.error();
    }
    message.templates.push_back(name + "@" + source.origin);
    std::string text = finish(suffix, rendered.value());
    if (part == "subject") {
      message.subject = std::move(text);
    } else if (part == "html") {
      message.html = std::move(text);
    } else {
      message.text = std::move(text);
    }
  }
  if (channel == kChannelSms) {
    message.text = fit_sms(message.text, ctx.ack_url);
    message.sms_segments = sms_length(message.text).segments;
  }
  return message;
}

Result<std::string> render_string(std::string_view source, std::string_view channel_part,
                                  const nlohmann::json& context,
                                  const std::map<std::string, std::string>& partials) {
  auto escape = escape_for(channel_part);
  if (!escape) {
    return make_error(ErrorKind::invalid, "invalid_channel",
                      "unknown channel \"" + std::string(channel_part) +
                          "\" (expected email.subject, email.text, email.html, sms.text or "
                          "chat.text)",
                      "channel");
  }
  if (auto nesting = check_nesting(source); !nesting) {
    return nesting.error();
  }
  mstch::mustache tmpl{std::string(source)};
  if (!tmpl.is_valid()) {
    return template_error(describe_template_error(source, tmpl.error_message()));
  }
  mstch::data data = to_data(context.is_object() ? context : nlohmann::json::object());
  std::map<std::string, std::string> all = partials;
  for (const auto& name : shipped_partial_names()) {
    all.emplace(name, shipped_sources().find("partial." + name)->second);
  }
  if (auto added = add_partials(data, all); !added) {
    return added.error();
  }
  auto rendered = render_once(tmpl, data, *escape);
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

Result<TemplateName> parse_template_name(std::string_view name) {
  auto invalid = [&] {
    return make_error(ErrorKind::invalid, "invalid_template_name",
                      "template name \"" + std::string(name) +
                          "\" must be PHASE.CHANNEL.PART (e.g. containment.email.subject, "
                          "any.sms.text) or partial.NAME, optionally followed by .LOCALE "
                          "(e.g. .de)",
                      "name");
  };
  std::vector<std::string> pieces;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    pieces.emplace_back(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  TemplateName out;
  if (pieces.size() >= 2 && pieces[0] == "partial") {
    if (pieces.size() > 3 || !is_partial_name(pieces[1]) ||
        (pieces.size() == 3 && !is_locale(pieces[2]))) {
      return invalid();
    }
    out.partial = pieces[1];
    out.locale = pieces.size() == 3 ? pieces[2] : "";
    return out;
  }
  if (pieces.size() < 3 || pieces.size() > 4) {
    return invalid();
  }
  if (pieces[0] != "any" && pieces[0] != "obligation" && !parse_phase(pieces[0]).has_value()) {
    return invalid();
  }
  std::string channel_part = pieces[1] + "." + pieces[2];
  if (!escape_for(channel_part).has_value()) {
    return invalid();
  }
  if (pieces.size() == 4 && !is_locale(pieces[3])) {
    return invalid();
  }
  out.phase = pieces[0];
  out.channel_part = channel_part;
  out.locale = pieces.size() == 4 ? pieces[3] : "";
  return out;
}

std::vector<std::string> template_warnings(std::string_view source,
                                           const std::vector<std::string>& known_partials) {
  static const std::vector<std::string> kKnown = [] {
    std::vector<std::string> keys;
    flatten_keys(context_json(sample_context()), "", keys);
    return keys;
  }();
  auto known = [](const std::string& path) {
    return path.rfind("event.details", 0) == 0 ||
           std::find(kKnown.begin(), kKnown.end(), path) != kKnown.end();
  };
  std::vector<std::string> partials = shipped_partial_names();
  partials.insert(partials.end(), known_partials.begin(), known_partials.end());

  std::vector<std::string> warnings;
  std::vector<std::string> sections;  // open section names, resolved to full paths
  bool unchecked = false;             // inside a section whose keys depend on the event
  auto where = [](const Tag& t) {
    return "line " + std::to_string(t.line) + ", column " + std::to_string(t.column) + ": ";
  };
  for (const auto& tag : scan_tags(source)) {
    if (tag.kind == '>') {
      if (std::find(partials.begin(), partials.end(), tag.name) == partials.end()) {
        warnings.push_back(where(tag) + "unknown partial \"" + tag.name +
                           "\" (store it as partial." + tag.name + ")");
      }
      continue;
    }
    if (tag.kind == '/') {
      if (!sections.empty()) {
        sections.pop_back();
      }
      unchecked = std::any_of(sections.begin(), sections.end(), [](const std::string& s) {
        return s.empty() || s.rfind("event.details", 0) == 0;
      });
      continue;
    }
    std::string resolved;
    if (tag.name == "." || unchecked) {
      resolved = tag.name == "." && !sections.empty() ? sections.back() : tag.name;
    } else {
      // Names resolve against the open sections, innermost first, then the root.
      for (auto it = sections.rbegin(); it != sections.rend() && resolved.empty(); ++it) {
        if (known(*it + "." + tag.name)) {
          resolved = *it + "." + tag.name;
        }
      }
      if (resolved.empty() && known(tag.name)) {
        resolved = tag.name;
      }
      if (resolved.empty()) {
        std::string suggestion;
        size_t best = 3;
        for (const auto& k : kKnown) {
          size_t d = edit_distance(tag.name, k);
          if (d < best) {
            best = d;
            suggestion = k;
          }
        }
        warnings.push_back(where(tag) + "unknown variable \"" + tag.name + "\"" +
                           (suggestion.empty() ? "" : " (did you mean \"" + suggestion + "\"?)"));
      }
    }
    if (tag.kind == '#' || tag.kind == '^') {
      sections.push_back(resolved);  // "" for an unknown name: what is inside is not checked
      if (resolved.empty() || resolved.rfind("event.details", 0) == 0) {
        unchecked = true;
      }
    }
  }
  return warnings;
}

TemplateContext sample_context(Phase phase, bool drill) {
  TemplateContext ctx;
  ctx.client_id = "acme";
  ctx.client_name = "Acme Corp";
  ctx.incident_id = "INC-42";
  ctx.incident_title = "Ransomware on FS01";
  ctx.severity = Severity::critical;
  ctx.phase = phase;
  int number = phase_number(phase);
  if (number > 1) {
    ctx.previous_phase = kAllPhases[static_cast<size_t>(number - 2)];
  }
  ctx.event_id = "evt-7f3a";
  ctx.summary = "Files on the file server FS01 were encrypted; FS01 is isolated from the network.";
  ctx.occurred_at = parse_rfc3339("2026-12-04T10:00:00Z").value_or(Timestamp{});
  ctx.details_json = R"({"host": "FS01", "ticket": "SOC-1234"})";
  ctx.contact_name = "Dana Lee";
  ctx.contact_role = "legal";
  ctx.ack_url = "https://herald.example.com/ack/msg-0001?sig=Zm9vYmFy";
  ctx.update_number = 1;
  ctx.drill = drill;
  ctx.locale = "en";
  return ctx;
}

namespace {

// Decodes UTF-8; an invalid byte counts as one U+FFFD.
std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    char32_t cp = c;
    if (c >= 0x80) {
      if ((c >> 5) == 0x6) {
        extra = 1;
        cp = c & 0x1F;
      } else if ((c >> 4) == 0xE) {
        extra = 2;
        cp = c & 0x0F;
      } else if ((c >> 3) == 0x1E) {
        extra = 3;
        cp = c & 0x07;
      } else {
        out.push_back(0xFFFD);
        ++i;
        continue;
      }
    }
    bool ok = i + extra < s.size();
    for (size_t k = 1; ok && k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

// Septets a character takes in GSM 03.38 (1, or 2 for the extension table), 0 when it has none.
int gsm_septets(char32_t c) {
  static const std::vector<char32_t> kBasic = code_points(
      "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
      "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
  static const std::vector<char32_t> kExtension = code_points("^{}\\[~]|€\f");
  if (c < 0x80 && c != '[' && c != ']' && c != '{' && c != '}' && c != '\\' && c != '^' &&
      c != '~' && c != '|' && c != '`' && c != 0x7F && (c >= 0x20 || c == '\n' || c == '\r')) {
    return 1;  // the common case: printable ASCII is in the basic table, but for these
  }
  if (std::find(kBasic.begin(), kBasic.end(), c) != kBasic.end()) {
    return 1;
  }
  if (std::find(kExtension.begin(), kExtension.end(), c) != kExtension.end()) {
    return 2;
  }
  return 0;
}

}  // namespace

SmsLength sms_length(std::string_view utf8) {
  auto cps = code_points(utf8);
  SmsLength out;
  std::vector<int> costs;
  for (char32_t c : cps) {
    if (gsm_septets(c) == 0) {
      out.gsm7 = false;
      break;
    }
  }
  for (char32_t c : cps) {
    costs.push_back(out.gsm7 ? gsm_septets(c) : (c > 0xFFFF ? 2 : 1));
  }
  for (int cost : costs) {
    out.units += cost;
  }
  const int single = out.gsm7 ? 160 : 70;
  const int multi = out.gsm7 ? 153 : 67;
  if (out.units == 0) {
    return out;
  }
  if (out.units <= single) {
    out.segments = 1;
    return out;
  }
  // A segment never splits an escape pair or a surrogate pair.
  int used = 0;
  out.segments = 1;
  for (int cost : costs) {
    if (used + cost > multi) {
      ++out.segments;
      used = 0;
    }
    used += cost;
  }
  return out;
}

std::string fit_sms(std::string_view text, std::string_view keep, size_t max_chars) {
  auto count = [](std::string_view s) {
    return static_cast<size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  if (count(text) <= max_chars) {
    return std::string(text);
  }
  std::string rest(text);
  std::string tail;
  if (!keep.empty() && count(keep) + 5 < max_chars) {
    if (auto at = rest.rfind(keep); at != std::string::npos) {
      rest.erase(at, keep.size());
      tail = std::string(keep);
    }
  }
  constexpr std::string_view kEllipsis = "...";
  size_t budget = max_chars - (tail.empty() ? 0 : count(tail) + 1);
  rest = trim(rest);
  std::string head;
  if (count(rest) <= budget) {
    head = rest;
  } else {
    budget -= kEllipsis.size();
    size_t cut = 0;
    for (size_t chars = 0; cut < rest.size(); ++cut) {
      if ((static_cast<unsigned char>(rest[cut]) & 0xC0) != 0x80) {
        if (chars == budget) {
          break;
        }
        ++chars;
      }
    }
    head = rest.substr(0, cut);
    if (cut < rest.size() && !std::isspace(static_cast<unsigned char>(rest[cut]))) {
      auto space = head.find_last_of(" \n\t");
      if (space != std::string::npos && space > head.size() / 2) {
        head.resize(space);
      }
    }
    while (!head.empty() &&
           std::string_view(" \n\t.,;:-").find(head.back()) != std::string_view::npos) {
      head.pop_back();
    }
    head += kEllipsis;
  }
  return tail.empty() ? head : head + "\n" + tail;
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

namespace {

nlohmann::json obligation_json(const TemplateContext& ctx) {
  if (!ctx.obligation) {
    return {{"id", ""},
            {"description", ""},
            {"kind", ""},
            {"is_reminder", false},
            {"is_overdue", false},
            {"starts", ""},
            {"started_at", ""},
            {"due_at", ""},
            {"within", ""},
            {"remaining", ""}};
  }
  const auto& o = *ctx.obligation;
  Millis left = std::max(Millis{0}, std::chrono::duration_cast<Millis>(o.due_at - o.now));
  // Whole minutes read better in a reminder than "3h59m59s999ms".
  left = std::chrono::duration_cast<Millis>(std::chrono::ceil<std::chrono::minutes>(left));
  return {{"id", o.id},
          {"description", o.description},
          {"kind", o.kind},
          {"is_reminder", o.kind == "reminder"},
          {"is_overdue", o.kind == "overdue"},
          {"starts", std::string(phase_label(o.starts))},
          {"started_at", format_rfc3339(o.started_at)},
          {"due_at", format_rfc3339(o.due_at)},
          {"within", format_duration(o.within)},
          {"remaining", format_duration(left)}};
}

}  // namespace

nlohmann::json context_json(const TemplateContext& ctx) {
  nlohmann::json person = person_json(ctx);
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
      {"contact", std::move(person["contact"])},
      {"ack_url", std::move(person["ack_url"])},
      {"update", {{"number", std::to_string(ctx.update_number)}}},
      {"drill", ctx.drill},
      {"obligation", obligation_json(ctx)},
  };
}

}  // namespace herald::render
