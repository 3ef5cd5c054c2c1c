// The audit trail: filtered pages, a streamed export (CSV or JSON lines) and the chain check.
#include <fmt/format.h>

#include <memory>

#include "daemon/api/context.hpp"

namespace herald::api {
namespace {

// Records per database read while exporting: one piece of the streamed body.
constexpr int kExportPage = 500;

const char* const kCsvHeader = "seq,at,kind,actor,client,subject,data,prev_hash,hash\r\n";

json audit_item(const store::AuditRecord& a, bool with_prev_hash) {
  json item{{"seq", a.seq},
            {"at", format_rfc3339(a.at)},
            {"kind", a.kind},
            {"actor", a.actor},
            {"client", a.client_id},
            {"subject", a.subject},
            {"data", json::parse(a.data, nullptr, false)},
            {"hash", a.hash}};
  if (with_prev_hash) {
    item["prev_hash"] = a.prev_hash;
  }
  return item;
}

// RFC 4180: a field holding a comma, a quote, CR or LF is quoted, its quotes doubled.
void append_csv_field(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += text;
    return;
  }
  out += '"';
  for (char ch : text) {
    if (ch == '"') {
      out += '"';
    }
    out += ch;
  }
  out += '"';
}

void append_csv(std::string& out, const store::AuditRecord& a) {
  const std::string seq = std::to_string(a.seq);
  const std::string at = format_rfc3339(a.at);
  const std::string_view fields[] = {seq,       at,     a.kind,      a.actor, a.client_id,
                                     a.subject, a.data, a.prev_hash, a.hash};
  bool first = true;
  for (auto field : fields) {
    if (!first) {
      out += ',';
    }
    append_csv_field(out, field);
    first = false;
  }
  out += "\r\n";
}

// The filters /v1/audit and /v1/audit/export share: since, until, kind, client, actor.
Result<store::AuditFilter> audit_filter(const http::Request& r) {
  store::AuditFilter f;
  auto since = time_param(r, "since");
  if (!since) {
    return since.error();
  }
  auto until = time_param(r, "until");
  if (!until) {
    return until.error();
  }
  if (*since && *until && **until <= **since) {
    return bad_parameter("until", "until must be later than since");
  }
  f.since = *since;
  f.until = *until;
  f.kind = r.query_param("kind").value_or("");
  f.client_id = r.query_param("client").value_or("");
  f.actor = r.query_param("actor").value_or("");
  return f;
}

// What a streamed export remembers between pieces: where the last page ended.
struct ExportCursor {
  store::AuditFilter filter;
  bool csv = false;
  bool header_sent = false;
  bool done = false;
};

}  // namespace

void list_audit(Services& s, const Call& c, const http::Responder& respond) {
  auto filter = audit_filter(c.request);
  auto limit = limit_param(c.request);
  auto cursor = cursor_param(c.request);
  if (!filter || !limit || !cursor) {
    respond(error_response(!filter ? filter.error() : !limit ? limit.error() : cursor.error()));
    return;
  }
  store::AuditFilter f = std::move(*filter);
  f.after_seq = *cursor;
  f.limit = *limit + 1;
  auto records = s.store.read<std::vector<store::AuditRecord>>(
      [&f](store::Repo& r) { return r.audit_records(f); });
  if (!records) {
    respond(error_response(records.error()));
    return;
  }
  json items = json::array();
  // The last seq of this page, when more records follow (0: none).
  int64_t next = 0;
  for (size_t i = 0; i < records->size() && static_cast<int>(i) < *limit; ++i) {
    items.push_back(audit_item((*records)[i], false));
    next = (*records)[i].seq;
  }
  if (static_cast<int>(records->size()) <= *limit) {
    next = 0;
  }
  respond(json_response(
      200, json{{"items", items},
                {"next_cursor", next > 0 ? json(std::to_string(next)) : json(nullptr)}}));
}

void export_audit(Services& s, const Call& c, const http::Responder& respond) {
  auto format = c.request.query_param("format").value_or("");
  if (format != "csv" && format != "jsonl") {
    respond(error_response(bad_parameter(
        "format", format.empty() ? "format is required: csv or jsonl"
                                 : fmt::format("unknown format \"{}\" (csv or jsonl)", format))));
    return;
  }
  auto filter = audit_filter(c.request);
  if (!filter) {
    respond(error_response(filter.error()));
    return;
  }
  // The export is a snapshot: records appended while it runs wait for the next one.
  auto last = s.store.read<int64_t>([](store::Repo& r) { return r.last_audit_seq(); });
  if (!last) {
    respond(error_response(last.error()));
    return;
  }
  auto cursor = std::make_shared<ExportCursor>();
  cursor->filter = std::move(*filter);
  cursor->filter.up_to_seq = *last;
  cursor->filter.limit = kExportPage;
  cursor->csv = format == "csv";

  http::Response response;
  response.content_type =
      cursor->csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
  response.headers.emplace_back(
      "Content-Disposition",
      fmt::format("attachment; filename=\"herald-audit.{}\"", cursor->csv ? "csv" : "jsonl"));
  // Each piece is one keyset page read on its own snapshot: no read transaction stays open
  // for the length of the download, and memory holds one page however long the trail is.
  response.stream = [&store = s.store, cursor]() -> Result<std::optional<std::string>> {
    if (cursor->done) {
      return std::optional<std::string>{};
    }
    std::string out;
    if (cursor->csv && !cursor->header_sent) {
      out += kCsvHeader;
      cursor->header_sent = true;
    }
    auto page = store.read<std::vector<store::AuditRecord>>(
        [&](store::Repo& r) { return r.audit_records(cursor->filter); });
    if (!page) {
      return page.error();
    }
    for (const auto& a : *page) {
      if (cursor->csv) {
        append_csv(out, a);
      } else {
        out += audit_item(a, true).dump(-1, ' ', false, json::error_handler_t::replace);
        out += '\n';
      }
      cursor->filter.after_seq = a.seq;
    }
    if (static_cast<int>(page->size()) < cursor->filter.limit) {
      cursor->done = true;
    }
    return std::optional<std::string>(std::move(out));
  };
  respond(std::move(response));
}

void verify_audit(Services& s, const Call&, const http::Responder& respond) {
  auto v = s.store.read<store::AuditVerification>([](store::Repo& r) { return r.verify_audit(); });
  if (!v) {
    respond(error_response(v.error()));
    return;
  }
  json j{{"ok", v->ok}, {"records", v->records}};
  if (!v->ok) {
    j["first_bad"] = *v->first_bad;
    j["reason"] = v->reason;
  }
  respond(json_response(200, j));
}

}  // namespace herald::api
