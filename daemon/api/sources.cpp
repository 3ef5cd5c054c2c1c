// Bus sources: the messages a subscription could not turn into events, and why.
#include <fmt/format.h>

#include "daemon/api/context.hpp"

namespace herald::api {
namespace {

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;

// A non-negative decimal no larger than `max`, or nullopt.
std::optional<int64_t> decimal(const std::string& text, int64_t max) {
  if (text.empty() || text.size() > 18) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') {
      return std::nullopt;
    }
    value = value * 10 + (ch - '0');
  }
  return value <= max ? std::optional<int64_t>(value) : std::nullopt;
}

}  // namespace

void list_source_rejections(Services& s, const Call& c, const http::Responder& respond) {
  const std::string& source = c.param("source");
  if (source != "nats") {
    respond(error_response(make_error(ErrorKind::not_found, "unknown_source",
                                      fmt::format("no bus source \"{}\" (there is: nats)", source),
                                      "source")));
    return;
  }
  int limit = kDefaultLimit;
  if (auto text = c.request.query_param("limit"); text && !text->empty()) {
    auto v = decimal(*text, kMaxLimit);
    if (!v || *v < 1) {
      respond(error_response(make_error(ErrorKind::invalid, "invalid_parameter",
                                        fmt::format("limit must be 1 to {}", kMaxLimit), "limit")));
      return;
    }
    limit = static_cast<int>(*v);
  }
  int64_t after = 0;
  if (auto text = c.request.query_param("cursor"); text && !text->empty()) {
    auto v = decimal(*text, int64_t{1} << 50);
    if (!v) {
      respond(error_response(make_error(ErrorKind::invalid, "invalid_parameter",
                                        "cursor is not one this server gave out", "cursor")));
      return;
    }
    after = *v;
  }
  auto rows = s.store.read<std::vector<store::SourceRejection>>(
      [&](store::Repo& r) { return r.source_rejections(source, after, limit + 1); });
  if (!rows) {
    respond(error_response(rows.error()));
    return;
  }
  json items = json::array();
  int64_t next = 0;
  for (size_t i = 0; i < rows->size() && static_cast<int>(i) < limit; ++i) {
    const auto& r = (*rows)[i];
    items.push_back(json{{"id", r.id},
                         {"source", r.source},
                         {"ref", r.ref},
                         {"subject", r.subject},
                         {"received_at", format_rfc3339(r.received_at)},
                         {"code", r.code},
                         {"field", r.field.empty() ? json(nullptr) : json(r.field)},
                         {"message", r.message},
                         {"payload", r.payload},
                         {"size", r.size}});
    next = r.id;
  }
  if (static_cast<int>(rows->size()) <= limit) {
    next = 0;
  }
  respond(json_response(
      200, json{{"items", items},
                {"next_cursor", next > 0 ? json(std::to_string(next)) : json(nullptr)}}));
}

}  // namespace herald::api
