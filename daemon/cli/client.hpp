// The client side of the HTTP API for the `herald` client subcommands: one small libcurl
// wrapper (HERALD_URL, HERALD_TOKEN), error wording, exit codes, and plain-text tables.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/result.hpp"

namespace herald::cli {

// Exit codes of every client subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitApiError = 1;     // the API answered with an error (or said "not ok")
inline constexpr int kExitUsage = 2;        // bad arguments, missing HERALD_TOKEN, unreadable file
inline constexpr int kExitUnreachable = 3;  // no answer from HERALD_URL

// Error codes the client produces itself (API errors keep the API's own code).
inline constexpr std::string_view kUsageError = "usage";
inline constexpr std::string_view kUnreachableError = "unreachable";

// The exit code for an error returned by the functions below.
int exit_code_for(const Error& e);

struct ClientConfig {
  std::string url;    // no trailing slash
  std::string token;  // empty only when the command needs none
};

// Reads HERALD_URL (default http://127.0.0.1:8080) and HERALD_TOKEN; a usage error when the
// token is missing or the URL is not http(s).
Result<ClientConfig> client_config_from_env();

struct ApiReply {
  long status = 0;
  std::string text;     // the body as received
  nlohmann::json body;  // the body parsed; null when empty or not JSON
  bool ok() const { return status >= 200 && status < 300; }
};

// "422 invalid_phase: unknown phase \"x\" (field phase)", from the API's error object, or the
// status and the start of the body when the answer is not one.
std::string describe_api_error(const ApiReply& reply);

// One connection to the daemon, reused across requests (keep-alive). Not thread-safe.
class ApiClient {
 public:
  explicit ApiClient(ClientConfig config);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends METHOD url+path with the bearer token and, when given, the JSON body. Any HTTP status
  // is a reply; the error (code kUnreachableError, naming the URL) is for no answer at all.
  Result<ApiReply> request(std::string_view method, const std::string& path,
                           const nlohmann::json* body = nullptr);
  // The same, with a non-2xx status turned into an error worded by describe_api_error.
  Result<ApiReply> call(std::string_view method, const std::string& path,
                        const nlohmann::json* body = nullptr);

  // GET url+path, handing the body to on_data piece by piece as it arrives (nothing is held
  // whole): for streamed answers of any length. No overall time limit, but an answer that stalls
  // for a minute is cut off. A non-2xx status is an error worded by describe_api_error (that
  // body is kept, up to a bound); so is a transfer cut short (the daemon failed mid-way) or
  // on_data returning false (the reader gave up, e.g. a full disk).
  Status stream(const std::string& path, const std::function<bool(std::string_view)>& on_data);

  const std::string& url() const { return config_.url; }

 private:
  struct Impl;
  ClientConfig config_;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes one path segment or query value.
std::string url_escape(std::string_view text);
// "?a=1&b=x" from the pairs whose value is not empty; "" when none is.
std::string query_string(const std::vector<std::pair<std::string, std::string>>& params);

// A JSON value as a table cell: strings as they are, null or absent as "-", arrays of strings
// joined with ",", anything else as compact JSON.
std::string cell(const nlohmann::json& value);
std::string cell(const nlohmann::json& object, const char* key);
// Compact JSON that never throws on invalid UTF-8 (replaced).
std::string dump_json(const nlohmann::json& value, int indent = -1);

// Cuts text to at most max_width characters (UTF-8 code points), ending in "…" when cut;
// control characters become spaces so that a cell stays on its line.
std::string truncate_cell(std::string_view text, size_t max_width);

// RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled.
std::string csv_field(std::string_view text);

// Aligned columns separated by two spaces, a header line, no colours.
class Table {
 public:
  struct Column {
    std::string name;
    size_t max_width = 40;
  };
  explicit Table(std::vector<Column> columns);
  void add(std::vector<std::string> row);
  size_t rows() const { return rows_.size(); }
  void print(std::ostream& out) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "key: value" lines with the keys aligned.
void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace herald::cli
