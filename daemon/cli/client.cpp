#include "daemon/cli/client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

namespace herald::cli {
namespace {

using nlohmann::json;

constexpr long kConnectTimeoutMs = 10'000;
constexpr long kTotalTimeoutMs = 120'000;
constexpr size_t kMaxReplyBytes = 64 * 1024 * 1024;
constexpr size_t kErrorExcerpt = 200;

Error usage_error(std::string message) {
  return make_error(ErrorKind::invalid, std::string(kUsageError), std::move(message));
}

size_t append_body(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  size_t n = size * count;
  if (out->size() + n > kMaxReplyBytes) {
    return 0;  // aborts the transfer: no API answer is this large
  }
  out->append(data, n);
  return n;
}

// Bytes in the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) {
    return 4;
  }
  if (lead >= 0xE0) {
    return 3;
  }
  if (lead >= 0xC0) {
    return 2;
  }
  return 1;
}

size_t display_width(std::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size(); i += utf8_length(static_cast<unsigned char>(text[i]))) {
    ++width;
  }
  return width;
}

}  // namespace

int exit_code_for(const Error& e) {
  if (e.code == kUsageError) {
    return kExitUsage;
  }
  if (e.code == kUnreachableError) {
    return kExitUnreachable;
  }
  return kExitApiError;
}

Result<ClientConfig> client_config_from_env() {
  ClientConfig c;
  const char* url = std::getenv("HERALD_URL");
  c.url = url && *url ? url : "http://127.0.0.1:8080";
  while (!c.url.empty() && c.url.back() == '/') {
    c.url.pop_back();
  }
  if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0) {
    return usage_error(
        fmt::format("HERALD_URL must start with http:// or https:// (it is \"{}\")", c.url));
  }
  const char* token = std::getenv("HERALD_TOKEN");
  if (!token || !*token) {
    return usage_error(
        "HERALD_TOKEN is not set: export the API token the daemon's [[tokens]] lists, e.g. "
        "export HERALD_TOKEN=...");
  }
  c.token = token;
  return c;
}

std::string describe_api_error(const ApiReply& reply) {
  const json& b = reply.body;
  if (b.is_object() && b.contains("error") && b["error"].is_object()) {
    const json& e = b["error"];
    std::string out = fmt::format("{} {}: {}", reply.status, cell(e, "code"), cell(e, "message"));
    if (e.contains("field") && e["field"].is_string() && !e["field"].get<std::string>().empty()) {
      out += fmt::format(" (field {})", e["field"].get<std::string>());
    }
    return out;
  }
  std::string excerpt = truncate_cell(reply.text, kErrorExcerpt);
  return excerpt.empty() ? fmt::format("HTTP {}", reply.status)
                         : fmt::format("HTTP {}: {}", reply.status, excerpt);
}

struct ApiClient::Impl {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
};

ApiClient::ApiClient(ClientConfig config) : config_(std::move(config)), impl_(new Impl) {
  // The daemon calls it in serve; a client process calls it here, once, before any handle.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
  impl_->headers = curl_slist_append(impl_->headers, "Accept: application/json");
  impl_->headers = curl_slist_append(impl_->headers, "Content-Type: application/json");
  if (!config_.token.empty()) {
    impl_->headers = curl_slist_append(
        impl_->headers, fmt::format("Authorization: Bearer {}", config_.token).c_str());
  }
}

ApiClient::~ApiClient() {
  if (impl_->curl) {
    curl_easy_cleanup(impl_->curl);
  }
  curl_slist_free_all(impl_->headers);
}

Result<ApiReply> ApiClient::request(std::string_view method, const std::string& path,
                                    const json* body) {
  CURL* h = impl_->curl;
  if (!h) {
    return make_error(ErrorKind::internal, "curl", "cannot create a libcurl handle");
  }
  // Reset keeps the open connection, so paging through a list reuses it.
  curl_easy_reset(h);
  std::string url = config_.url + path;
  std::string payload = body ? dump_json(*body) : std::string();
  std::string method_text(method);
  ApiReply reply;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, impl_->headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "herald-cli/" HERALD_VERSION);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, kTotalTimeoutMs);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.text);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method_text.c_str());
  if (body || method == "POST" || method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    return make_error(ErrorKind::unavailable, std::string(kUnreachableError),
                      fmt::format("cannot connect to {} (is the daemon running? HERALD_URL "
                                  "names it): {}",
                                  config_.url, errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  if (!reply.text.empty()) {
    reply.body = json::parse(reply.text, nullptr, /*allow_exceptions=*/false);
    if (reply.body.is_discarded()) {
      reply.body = nullptr;
    }
  }
  return reply;
}

namespace {

struct StreamSink {
  const std::function<bool(std::string_view)>* on_data = nullptr;
  long status = 0;
  CURL* handle = nullptr;
  std::string error_text;  // the body of a non-2xx answer
  bool refused = false;    // on_data said stop
};

size_t stream_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<StreamSink*>(user);
  size_t n = size * count;
  if (sink->status == 0) {
    curl_easy_getinfo(sink->handle, CURLINFO_RESPONSE_CODE, &sink->status);
  }
  if (sink->status < 200 || sink->status >= 300) {
    if (sink->error_text.size() + n > kMaxReplyBytes) {
      return 0;
    }
    sink->error_text.append(data, n);
    return n;
  }
  if (!(*sink->on_data)(std::string_view(data, n))) {
    sink->refused = true;
    return 0;
  }
  return n;
}

}  // namespace

Status ApiClient::stream(const std::string& path,
                         const std::function<bool(std::string_view)>& on_data) {
  CURL* h = impl_->curl;
  if (!h) {
    return make_error(ErrorKind::internal, "curl", "cannot create a libcurl handle");
  }
  curl_easy_reset(h);
  std::string url = config_.url + path;
  StreamSink sink;
  sink.on_data = &on_data;
  sink.handle = h;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, impl_->headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "herald-cli/" HERALD_VERSION);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  // However long the whole takes, but never a minute without a byte.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &sink.status);
  if (sink.refused) {
    return make_error(ErrorKind::internal, "io", "stopped: the output cannot be written");
  }
  if (sink.status != 0 && (sink.status < 200 || sink.status >= 300)) {
    ApiReply reply;
    reply.status = sink.status;
    reply.text = std::move(sink.error_text);
    reply.body = json::parse(reply.text, nullptr, /*allow_exceptions=*/false);
    if (reply.body.is_discarded()) {
      reply.body = nullptr;
    }
    return make_error(ErrorKind::unprocessable, "api", describe_api_error(reply));
  }
  if (rc != CURLE_OK) {
    if (sink.status != 0) {
      return make_error(ErrorKind::unavailable, "api",
                        fmt::format("the answer from {} was cut short: {}", config_.url,
                                    errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    return make_error(ErrorKind::unavailable, std::string(kUnreachableError),
                      fmt::format("cannot connect to {} (is the daemon running? HERALD_URL "
                                  "names it): {}",
                                  config_.url, errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  return {};
}

Result<ApiReply> ApiClient::call(std::string_view method, const std::string& path,
                                 const json* body) {
  auto reply = request(method, path, body);
  if (!reply) {
    return reply.error();
  }
  if (!reply->ok()) {
    return make_error(ErrorKind::unprocessable, "api", describe_api_error(*reply));
  }
  return reply;
}

std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 0xF];
    }
  }
  return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (value.empty()) {
      continue;
    }
    out += out.empty() ? '?' : '&';
    out += key + "=" + url_escape(value);
  }
  return out;
}

std::string dump_json(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string cell(const json& value) {
  if (value.is_null()) {
    return "-";
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    return s.empty() ? "-" : s;
  }
  if (value.is_array() &&
      std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_string(); })) {
    std::string out;
    for (const auto& v : value) {
      out += (out.empty() ? "" : ",") + v.get<std::string>();
    }
    return out.empty() ? "-" : out;
  }
  return dump_json(value);
}

std::string cell(const json& object, const char* key) {
  if (!object.is_object()) {
    return "-";
  }
  auto it = object.find(key);
  return it == object.end() ? "-" : cell(*it);
}

std::string truncate_cell(std::string_view text, size_t max_width) {
  std::string out;
  size_t width = 0;
  size_t total = display_width(text);
  for (size_t i = 0; i < text.size();) {
    size_t n = std::min(utf8_length(static_cast<unsigned char>(text[i])), text.size() - i);
    if (total > max_width && width + 1 >= max_width) {
      out += "…";
      break;
    }
    unsigned char ch = static_cast<unsigned char>(text[i]);
    if (n == 1 && (ch < 0x20 || ch == 0x7F)) {
      out += ' ';
    } else {
      out.append(text.substr(i, n));
    }
    ++width;
    i += n;
  }
  return out;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') {
      out += '"';
    }
    out += ch;
  }
  out += '"';
  return out;
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::add(std::vector<std::string> row) {
  row.resize(columns_.size());
  for (size_t i = 0; i < row.size(); ++i) {
    row[i] = truncate_cell(row[i], columns_[i].max_width);
  }
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& c : columns_) {
    widths.push_back(display_width(c.name));
  }
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      text += cells[i];
      if (i + 1 < cells.size()) {
        text.append(widths[i] - display_width(cells[i]) + 2, ' ');
      }
    }
    out << text << "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : columns_) {
    header.push_back(c.name);
  }
  line(header);
  for (const auto& row : rows_) {
    line(row);
  }
}

void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& f : fields) {
    width = std::max(width, f.first.size());
  }
  for (const auto& [key, value] : fields) {
    out << key << ":" << std::string(width - key.size() + 1, ' ') << value << "\n";
  }
}

}  // namespace herald::cli
