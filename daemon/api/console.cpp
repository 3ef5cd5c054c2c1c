// The web console: the files of web/, embedded into the binary at build time, served under
// /ui/ without a token (the console's API calls carry the token the user signs in with).
#include <fmt/format.h>

#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/api/context.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::web {
// Generated from web/ by cmake/EmbedScript.cmake (daemon/api/CMakeLists.txt).
const std::vector<std::pair<std::string_view, std::string_view>>& console_files();
}  // namespace herald::web

namespace herald::api {
namespace {

// Self only: no inline script or style, no other origin, no framing of the console.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

struct Asset {
  std::string_view body;
  std::string content_type;
  std::string etag;
};

std::string content_type_of(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? std::string_view{} : name.substr(dot);
  if (ext == ".html") {
    return "text/html; charset=utf-8";
  }
  if (ext == ".js" || ext == ".mjs") {
    return "text/javascript; charset=utf-8";
  }
  if (ext == ".css") {
    return "text/css; charset=utf-8";
  }
  if (ext == ".svg") {
    return "image/svg+xml";
  }
  if (ext == ".json" || ext == ".webmanifest") {
    return "application/json";
  }
  if (ext == ".png") {
    return "image/png";
  }
  if (ext == ".ico") {
    return "image/x-icon";
  }
  return "application/octet-stream";
}

const std::map<std::string, Asset, std::less<>>& assets() {
  static const auto* table = [] {
    auto* out = new std::map<std::string, Asset, std::less<>>();
    for (const auto& [name, body] : web::console_files()) {
      // The content's hash: a browser revalidates (no-cache) and gets a 304 while unchanged.
      (*out)[std::string(name)] =
          Asset{body, content_type_of(name), "\"" + sha256_hex(body).substr(0, 32) + "\""};
    }
    return out;
  }();
  return *table;
}

void add_security_headers(http::Response& r) {
  r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
}

http::Response text_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  add_security_headers(r);
  return r;
}

}  // namespace

bool is_console_path(std::string_view path) {
  return path == "/ui" || path.rfind("/ui/", 0) == 0;
}

http::Response console_response(const http::Request& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    auto r = text_response(
        405, fmt::format("{} is not allowed on {}: use GET\n", request.method, request.path));
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (request.path == "/ui") {
    auto r = text_response(308, "the console is at /ui/\n");
    // Relative, so that a reverse proxy may serve Herald under a path prefix.
    r.headers.emplace_back("Location", "ui/");
    return r;
  }
  std::string_view name = std::string_view(request.path).substr(4);
  if (name.empty()) {
    name = "index.html";
  }
  const auto& table = assets();
  auto found = table.find(name);
  // Only the embedded files themselves: no directories, no index of them.
  if (found == table.end() || name.find('/') != std::string_view::npos) {
    return text_response(404, fmt::format("no such file in the console: {}\n", request.path));
  }
  const Asset& asset = found->second;
  http::Response r;
  r.content_type = asset.content_type;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", asset.etag);
  add_security_headers(r);
  auto if_none_match = request.header("if-none-match");
  if (if_none_match && *if_none_match == asset.etag) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.status = 200;
  r.body = std::string(asset.body);
  return r;
}

}  // namespace herald::api
