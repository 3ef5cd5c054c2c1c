#include "daemon/cli/client_commands.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "daemon/cli/client.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::cli {
namespace {

using nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr int kMaxPages = 1'000'000;  // a bound on cursor walks, far above any real trail

int report(const Error& e) {
  std::cerr << "herald: " << e.message << "\n";
  return exit_code_for(e);
}

int usage(const std::string& message) {
  return report(make_error(ErrorKind::invalid, std::string(kUsageError), message));
}

// An empty answer (204 to a DELETE) prints nothing: the exit code says it was done.
void print_raw(const ApiReply& r) {
  if (r.text.empty()) {
    return;
  }
  std::cout << r.text;
  if (r.text.back() != '\n') {
    std::cout << "\n";
  }
}

std::string plural(int64_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

int64_t int_of(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// "-" reads standard input.
Result<json> read_json_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return make_error(ErrorKind::invalid, std::string(kUsageError),
                        fmt::format("cannot read {}", path));
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(
        ErrorKind::invalid, std::string(kUsageError),
        fmt::format("{} is not a JSON object", path == "-" ? "standard input" : path));
  }
  return j;
}

std::string who(const json& item) {
  std::string contact = cell(item, "contact");
  return contact != "-" ? contact : cell(item, "endpoint");
}

void print_table(Table& t, const char* empty_note) {
  if (t.rows() == 0) {
    std::cout << empty_note << "\n";
    return;
  }
  t.print(std::cout);
}

// Walks a list endpoint page by page from `cursor`, following next_cursor while `all`; calls
// on_page with each page. Returns the next cursor left unfollowed ("" when none).
Result<std::string> walk_pages(ApiClient& client, const std::string& path,
                               std::vector<std::pair<std::string, std::string>> params,
                               std::string cursor, bool all,
                               const std::function<void(const ApiReply&)>& on_page) {
  for (int page = 0; page < kMaxPages; ++page) {
    auto q = params;
    q.emplace_back("cursor", cursor);
    auto r = client.call("GET", path + query_string(q));
    if (!r) {
      return r.error();
    }
    on_page(*r);
    const json& next = r->body.is_object() ? r->body.value("next_cursor", json(nullptr)) : json();
    std::string given = next.is_string() ? next.get<std::string>() : std::string();
    if (given.empty() || !all) {
      return given;
    }
    if (given == cursor) {
      return make_error(ErrorKind::internal, "api", "the API gave the same cursor twice");
    }
    cursor = std::move(given);
  }
  return make_error(ErrorKind::internal, "api", "too many pages");
}

std::string new_event_id() {
  return "evt-" + hex_encode(random_bytes(8));
}

}  // namespace

struct ClientCommands::Impl {
  using Handler = std::function<int(ApiClient&)>;
  struct Leaf {
    CLI::App* app;
    Handler run;
    std::function<bool()> applies;  // null: always
  };
  std::vector<Leaf> leaves;
  bool json_out = false;

  // Shared option storage: only one leaf runs per process.
  std::string client, id, file, cursor;
  // event send
  std::string incident, phase, severity, title, summary, occurred_at, event_id;
  std::vector<std::string> details;
  bool drill = false;
  // clients, contacts, endpoints
  std::string name, timezone, locale, email, phone, chat, quiet_hours, type, url, secret;
  std::vector<std::string> roles, channels;
  bool disabled = false;
  // plan preview
  std::string at;
  // deliveries, audit
  std::string status, channel, since, until, kind, format, output, actor;
  int limit = 0;
  bool all = false;
  // tokens
  std::vector<std::string> scopes;
  std::string expires_at;

  CLI::App* leaf(CLI::App& parent, const std::string& name, const std::string& description,
                 Handler handler, bool with_json = true) {
    auto* sub = parent.add_subcommand(name, description);
    if (with_json) {
      sub->add_flag("--json", json_out, "print the API's JSON answer as it is, for scripts");
    }
    leaves.push_back({sub, std::move(handler), nullptr});
    return sub;
  }

  CLI::App* group(CLI::App& app, const std::string& name, const std::string& description) {
    auto* g = app.add_subcommand(name, description);
    g->require_subcommand(1);
    return g;
  }

  void add_client_arg(CLI::App* sub) {
    sub->add_option("client", client, "the client id")->required();
  }

  void add_paging(CLI::App* sub, const char* what) {
    sub->add_option("--limit", limit, fmt::format("{} per page (1 to 500; API default 50)", what));
    sub->add_option("--cursor", cursor, "start at this cursor (the previous page's next_cursor)");
    sub->add_flag("--all", all, "follow the cursors to the end instead of one page");
  }

  void add_audit_filters(CLI::App* sub) {
    sub->add_option("--kind", kind, "only records of this kind, e.g. client.put");
    sub->add_option("--client", client, "only records about this client");
    sub->add_option("--actor", actor,
                    "only records by this actor (a token's name, dispatcher, ...)");
    sub->add_option("--since", since, "only records at or after this RFC 3339 time");
    sub->add_option("--until", until, "only records before this RFC 3339 time");
  }

  std::vector<std::pair<std::string, std::string>> limit_param() const {
    if (limit == 0) {
      return {};
    }
    return {{"limit", std::to_string(limit)}};
  }

  // ---- event ------------------------------------------------------------------------------

  int event_send(ApiClient& c) {
    json body;
    bool generated = false;
    if (!file.empty()) {
      for (const auto& [flag, value] : std::vector<std::pair<const char*, const std::string*>>{
               {"--client", &client},
               {"--incident", &incident},
               {"--phase", &phase},
               {"--severity", &severity},
               {"--title", &title},
               {"--summary", &summary},
               {"--occurred-at", &occurred_at}}) {
        if (!value->empty()) {
          return usage(fmt::format("--file cannot be combined with {}", flag));
        }
      }
      if (!details.empty() || drill) {
        return usage("--file cannot be combined with --detail or --drill");
      }
      auto loaded = read_json_file(file);
      if (!loaded) {
        return report(loaded.error());
      }
      body = std::move(*loaded);
      if (!event_id.empty()) {
        body["event_id"] = event_id;
      }
    } else {
      std::vector<std::string> missing;
      for (const auto& [flag, value] :
           std::vector<std::pair<const char*, const std::string*>>{{"--client", &client},
                                                                   {"--incident", &incident},
                                                                   {"--phase", &phase},
                                                                   {"--severity", &severity}}) {
        if (value->empty()) {
          missing.push_back(flag);
        }
      }
      if (!missing.empty()) {
        return usage(
            fmt::format("event send needs {} (or --file EVENT.json)", fmt::join(missing, ", ")));
      }
      json inc{{"id", incident}, {"severity", severity}};
      if (!title.empty()) {
        inc["title"] = title;
      }
      body = json{{"client", client}, {"incident", inc}, {"phase", phase}};
      if (!event_id.empty()) {
        body["event_id"] = event_id;
      }
      if (!summary.empty()) {
        body["summary"] = summary;
      }
      if (!occurred_at.empty()) {
        body["occurred_at"] = occurred_at;
      }
      if (!details.empty()) {
        json d = json::object();
        for (const auto& kv : details) {
          auto eq = kv.find('=');
          if (eq == std::string::npos || eq == 0) {
            return usage(fmt::format("--detail takes key=value, not \"{}\"", kv));
          }
          d[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        body["details"] = d;
      }
      if (drill) {
        body["drill"] = true;
      }
    }
    if (!body.contains("event_id")) {
      body["event_id"] = new_event_id();
      generated = true;
    }
    auto r = c.call("POST", "/v1/events", &body);
    if (!r) {
      if (generated) {
        std::cerr << "herald: event id was " << cell(body, "event_id") << "\n";
      }
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    const json& b = r->body;
    int64_t messages = int_of(b, "messages");
    if (b.value("duplicate", false)) {
      std::cout << fmt::format("duplicate {} ({}): already accepted with {}; nothing new sent\n",
                               cell(b, "event_id"), cell(b, "incident"),
                               plural(messages, "message"));
    } else {
      std::cout << fmt::format("accepted {} ({}): {}{}\n", cell(b, "event_id"), cell(b, "incident"),
                               plural(messages, "message"),
                               b.value("out_of_order", false)
                                   ? " (out of order: recorded, the phase did not change)"
                                   : "");
    }
    return kExitOk;
  }

  // ---- clients ----------------------------------------------------------------------------

  std::string client_path() const { return "/v1/clients/" + url_escape(client); }

  // PUT with "created"/"updated" wording from 201/200.
  int put_and_say(ApiClient& c, const std::string& path, const json& body, const std::string& what,
                  const std::function<std::string(const json&)>& extra) {
    auto r = c.call("PUT", path, &body);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    std::cout << fmt::format("{} {}{}\n", r->status == 201 ? "created" : "updated", what,
                             extra ? extra(r->body) : std::string());
    return kExitOk;
  }

  int delete_and_say(ApiClient& c, const std::string& path, const std::string& what) {
    auto r = c.call("DELETE", path);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    std::cout << "deleted " << what << "\n";
    return kExitOk;
  }

  // GET path; prints raw JSON with --json, else hands the body to `human`.
  int get_and_show(ApiClient& c, const std::string& path,
                   const std::function<void(const json&)>& human) {
    auto r = c.call("GET", path);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
    } else {
      human(r->body);
    }
    return kExitOk;
  }

  int clients_list(ApiClient& c) {
    return get_and_show(c, "/v1/clients", [](const json& b) {
      Table t({{"ID"}, {"NAME"}, {"TIMEZONE"}, {"LOCALE"}});
      for (const auto& i : b.value("items", json::array())) {
        t.add({cell(i, "id"), cell(i, "name"), cell(i, "timezone"), cell(i, "locale")});
      }
      print_table(t, "no clients");
    });
  }

  int clients_get(ApiClient& c) {
    return get_and_show(c, client_path(), [](const json& b) {
      print_fields(std::cout, {{"id", cell(b, "id")},
                               {"name", cell(b, "name")},
                               {"timezone", cell(b, "timezone")},
                               {"locale", cell(b, "locale")}});
    });
  }

  int clients_put(ApiClient& c) {
    json body{{"name", name}};
    if (!timezone.empty()) {
      body["timezone"] = timezone;
    }
    if (!locale.empty()) {
      body["locale"] = locale;
    }
    return put_and_say(c, client_path(), body, "client " + client, [](const json& b) {
      return fmt::format(" ({}, {}, {})", cell(b, "name"), cell(b, "timezone"), cell(b, "locale"));
    });
  }

  // ---- contacts ---------------------------------------------------------------------------

  std::string contact_path() const { return client_path() + "/contacts/" + url_escape(id); }

  static std::string quiet_hours_text(const json& contact) {
    const json& q = contact.value("quiet_hours", json(nullptr));
    return q.is_object() ? cell(q, "start") + "-" + cell(q, "end") : "-";
  }

  int contacts_list(ApiClient& c) {
    return get_and_show(c, client_path() + "/contacts", [](const json& b) {
      Table t({{"ID"},
               {"NAME"},
               {"ROLES"},
               {"EMAIL"},
               {"PHONE"},
               {"TIMEZONE"},
               {"QUIET_HOURS"},
               {"CHANNELS"}});
      for (const auto& i : b.value("items", json::array())) {
        t.add({cell(i, "id"), cell(i, "name"), cell(i, "roles"), cell(i, "email"), cell(i, "phone"),
               cell(i, "timezone"), quiet_hours_text(i), cell(i, "channels")});
      }
      print_table(t, "no contacts");
    });
  }

  int contacts_get(ApiClient& c) {
    return get_and_show(c, contact_path(), [](const json& b) {
      print_fields(std::cout, {{"id", cell(b, "id")},
                               {"client", cell(b, "client")},
                               {"name", cell(b, "name")},
                               {"roles", cell(b, "roles")},
                               {"email", cell(b, "email")},
                               {"phone", cell(b, "phone")},
                               {"chat", cell(b, "chat")},
                               {"timezone", cell(b, "timezone")},
                               {"quiet_hours", quiet_hours_text(b)},
                               {"channels", cell(b, "channels")}});
    });
  }

  int contacts_put(ApiClient& c) {
    json body = json::object();
    bool flags = !name.empty() || !roles.empty() || !email.empty() || !phone.empty() ||
                 !chat.empty() || !timezone.empty() || !quiet_hours.empty() || !channels.empty();
    if (!file.empty()) {
      if (flags) {
        return usage("--file cannot be combined with the contact's field flags");
      }
      auto loaded = read_json_file(file);
      if (!loaded) {
        return report(loaded.error());
      }
      body = std::move(*loaded);
    } else {
      if (name.empty()) {
        return usage("contacts put needs --name (or --file CONTACT.json)");
      }
      body["name"] = name;
      if (!roles.empty()) {
        body["roles"] = roles;
      }
      for (const auto& [key, value] :
           Fields{{"email", email}, {"phone", phone}, {"chat", chat}, {"timezone", timezone}}) {
        if (!value.empty()) {
          body[key] = value;
        }
      }
      if (quiet_hours == "none") {
        body["quiet_hours"] = nullptr;
      } else if (!quiet_hours.empty()) {
        auto dash = quiet_hours.find('-');
        if (dash == std::string::npos) {
          return usage(
              fmt::format("--quiet-hours takes START-END like 22:00-07:00 (or none), "
                          "not \"{}\"",
                          quiet_hours));
        }
        body["quiet_hours"] =
            json{{"start", quiet_hours.substr(0, dash)}, {"end", quiet_hours.substr(dash + 1)}};
      }
      if (!channels.empty()) {
        body["channels"] = channels;
      }
    }
    return put_and_say(c, contact_path(), body, fmt::format("contact {} of {}", id, client),
                       [](const json& b) { return fmt::format(" ({})", cell(b, "name")); });
  }

  // ---- endpoints --------------------------------------------------------------------------

  std::string endpoint_path() const { return client_path() + "/endpoints/" + url_escape(id); }

  int endpoints_list(ApiClient& c) {
    return get_and_show(c, client_path() + "/endpoints", [](const json& b) {
      Table t({{"ID"}, {"TYPE"}, {"URL", 60}, {"ENABLED"}});
      for (const auto& i : b.value("items", json::array())) {
        t.add({cell(i, "id"), cell(i, "type"), cell(i, "url"),
               i.value("enabled", true) ? "yes" : "no"});
      }
      print_table(t, "no endpoints");
    });
  }

  int endpoints_get(ApiClient& c) {
    return get_and_show(c, endpoint_path(), [](const json& b) {
      print_fields(std::cout, {{"id", cell(b, "id")},
                               {"client", cell(b, "client")},
                               {"type", cell(b, "type")},
                               {"url", cell(b, "url")},
                               {"enabled", b.value("enabled", true) ? "yes" : "no"}});
    });
  }

  int endpoints_put(ApiClient& c) {
    json body = json::object();
    if (!file.empty()) {
      if (!type.empty() || !url.empty() || !secret.empty() || disabled) {
        return usage("--file cannot be combined with --type, --url, --secret or --disabled");
      }
      auto loaded = read_json_file(file);
      if (!loaded) {
        return report(loaded.error());
      }
      body = std::move(*loaded);
    } else {
      if (type.empty() || url.empty()) {
        return usage("endpoints put needs --type and --url (or --file ENDPOINT.json)");
      }
      body = json{{"type", type}, {"url", url}};
      if (!secret.empty()) {
        body["secret"] = secret;
      }
      if (disabled) {
        body["enabled"] = false;
      }
    }
    return put_and_say(
        c, endpoint_path(), body, fmt::format("endpoint {} of {}", id, client), [](const json& b) {
          std::string out = fmt::format(" ({} {})", cell(b, "type"), cell(b, "url"));
          if (b.contains("secret")) {
            out += fmt::format("\nsecret (shown once; give it to the receiver now): {}",
                               cell(b, "secret"));
          }
          return out;
        });
  }

  // ---- plan -------------------------------------------------------------------------------

  int plan_get(ApiClient& c) {
    return get_and_show(c, client_path() + "/plan",
                        [](const json& b) { std::cout << dump_json(b, 2) << "\n"; });
  }

  int plan_put(ApiClient& c) {
    auto loaded = read_json_file(file);
    if (!loaded) {
      return report(loaded.error());
    }
    auto r = c.call("PUT", client_path() + "/plan", &*loaded);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    const json& b = r->body;
    std::cout << fmt::format("saved plan version {} for {} ({})\n", int_of(b, "version"), client,
                             plural(b.value("rules", json::array()).size(), "rule"));
    for (const auto& w : b.value("warnings", json::array())) {
      std::cout << "warning: " << cell(w) << "\n";
    }
    return kExitOk;
  }

  int plan_preview(ApiClient& c) {
    json body{{"phase", phase}, {"severity", severity}};
    if (!at.empty()) {
      body["at"] = at;
    }
    auto r = c.call("POST", client_path() + "/plan/preview", &body);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    const json& b = r->body;
    auto person = [](const json& m) {
      if (m.contains("contact")) {
        std::string n = cell(m, "name");
        return n == "-" ? cell(m, "contact") : fmt::format("{} ({})", cell(m, "contact"), n);
      }
      return fmt::format("{} (endpoint)", cell(m, "endpoint"));
    };
    std::cout << fmt::format("{}: {} at severity {}, phase change at {} (nothing is sent):\n",
                             client, cell(b, "phase"), cell(b, "severity"), cell(b, "at"));
    Table t({{"RULE"}, {"WHO"}, {"ROLE"}, {"CHANNEL"}, {"SEND_AT"}, {"DEFERRED"}, {"REPEAT"}});
    for (const auto& m : b.value("messages", json::array())) {
      t.add({cell(m, "rule"), person(m), cell(m, "role"), cell(m, "channel"), cell(m, "send_at"),
             m.value("deferred_by_quiet_hours", false) ? "yes" : "no", cell(m, "repeat")});
    }
    print_table(t, "no messages: no rule of the plan reaches anyone at this phase and severity");
    for (const auto& e : b.value("escalations", json::array())) {
      std::cout << fmt::format(
          "\nescalation of rule {} after {} (due {}) to {}, unless someone the rule reached "
          "acknowledges first:\n",
          cell(e, "rule"), cell(e, "after"), cell(e, "due_at"), cell(e, "to_roles"));
      Table et({{"WHO"}, {"ROLE"}, {"CHANNEL"}, {"SEND_AT"}});
      for (const auto& m : e.value("messages", json::array())) {
        et.add({cell(m, "contact"), cell(m, "role"), cell(m, "channel"), cell(m, "send_at")});
      }
      print_table(et, "nobody holds those roles");
    }
    const json& warnings = b.value("warnings", json::array());
    if (!warnings.empty()) {
      std::cout << "\n";
    }
    for (const auto& w : warnings) {
      std::cout << "warning: " << cell(w) << "\n";
    }
    return kExitOk;
  }

  // ---- deliveries -------------------------------------------------------------------------

  // A list endpoint with --json/--all/--cursor handling; `row` fills the table per item.
  int list_pages(ApiClient& c, const std::string& path,
                 std::vector<std::pair<std::string, std::string>> params, Table table,
                 const std::function<std::vector<std::string>(const json&)>& row,
                 const char* empty_note, const std::string& command) {
    json all_items = json::array();
    auto rest = walk_pages(c, path, std::move(params), cursor, all, [&](const ApiReply& page) {
      const json& items = page.body.value("items", json::array());
      for (const auto& i : items) {
        if (json_out) {
          if (all) {
            all_items.push_back(i);
          }
        } else {
          table.add(row(i));
        }
      }
      if (json_out && !all) {
        print_raw(page);
      }
    });
    if (!rest) {
      return report(rest.error());
    }
    if (json_out) {
      if (all) {
        std::cout << dump_json(json{{"items", all_items}, {"next_cursor", nullptr}}) << "\n";
      }
      return kExitOk;
    }
    print_table(table, empty_note);
    if (!rest->empty()) {
      std::cerr << fmt::format("more: {} --cursor {} (or --all)\n", command, *rest);
    }
    return kExitOk;
  }

  int deliveries_list(ApiClient& c) {
    auto params = limit_param();
    for (const auto& [key, value] : Fields{{"client", client},
                                           {"incident", incident},
                                           {"status", status},
                                           {"channel", channel},
                                           {"since", since},
                                           {"until", until}}) {
      params.emplace_back(key, value);
    }
    return list_pages(
        c, "/v1/deliveries", params,
        Table({{"ID"},
               {"CLIENT"},
               {"INCIDENT"},
               {"PHASE"},
               {"TO"},
               {"CHANNEL"},
               {"STATUS"},
               {"ATTEMPTS"},
               {"CREATED_AT"}}),
        [](const json& i) -> std::vector<std::string> {
          return {cell(i, "id"),
                  cell(i, "client"),
                  cell(i, "incident"),
                  cell(i, "phase"),
                  who(i),
                  cell(i, "channel"),
                  cell(i, "status"),
                  cell(i, "attempts"),
                  cell(i, "created_at")};
        },
        "no deliveries", "herald deliveries list");
  }

  int deliveries_show(ApiClient& c) {
    return get_and_show(c, "/v1/deliveries/" + url_escape(id), [](const json& b) {
      Fields fields;
      for (const char* key : {"id", "event_id", "client", "incident", "phase", "rule", "kind"}) {
        fields.emplace_back(key, cell(b, key));
      }
      fields.emplace_back(b.value("contact", json()).is_string() ? "contact" : "endpoint", who(b));
      for (const char* key : {"role", "channel", "status", "attempts", "update_number", "repeat",
                              "created_at", "planned_at", "send_at", "delivered_at",
                              "acknowledged_at", "fallback_of", "last_error"}) {
        fields.emplace_back(key, cell(b, key));
      }
      print_fields(std::cout, fields);
      std::cout << "\nattempts:\n";
      Table t({{"N"}, {"STARTED_AT"}, {"DURATION_MS"}, {"OUTCOME"}, {"STATUS"}, {"ERROR", 70}});
      for (const auto& a : b.value("attempts_log", json::array())) {
        t.add({cell(a, "number"), cell(a, "started_at"), cell(a, "duration_ms"), cell(a, "outcome"),
               cell(a, "status_code"), cell(a, "error")});
      }
      print_table(t, "none yet");
      if (b.contains("content") && b["content"].is_object()) {
        const json& content = b["content"];
        std::cout << "\ncontent:\n";
        print_fields(std::cout, {{"address", cell(content, "address")},
                                 {"subject", cell(content, "subject")},
                                 {"sha256", cell(content, "sha256")}});
        std::cout << "\n" << cell(content, "body") << "\n";
      }
    });
  }

  int deliveries_retry(ApiClient& c) {
    auto r = c.call("POST", "/v1/deliveries/" + url_escape(id) + "/retry");
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    std::cout << fmt::format("retrying {}: back in the queue (status {})\n", id,
                             cell(r->body, "status"));
    return kExitOk;
  }

  // ---- incidents --------------------------------------------------------------------------

  static std::string timeline_detail(const json& e) {
    std::string type = cell(e, "type");
    if (type == "event") {
      std::string out = fmt::format("{} ({}) {}: {}", cell(e, "phase"), cell(e, "severity"),
                                    cell(e, "event_id"), plural(int_of(e, "messages"), "message"));
      if (!e.value("applied", true)) {
        out += ", out of order: not applied";
      }
      std::string s = cell(e, "summary");
      return s == "-" ? out : out + " — " + s;
    }
    if (type.rfind("message.", 0) == 0) {
      return fmt::format("{} to {} ({})", cell(e, "channel"), who(e), cell(e, "message"));
    }
    if (type == "ack") {
      return fmt::format("{} acknowledged {} (rule {}, {})", cell(e, "contact"), cell(e, "message"),
                         cell(e, "rule"), cell(e, "phase"));
    }
    if (type == "escalation") {
      return fmt::format("{}: {}, rule {} ({})", cell(e, "status"), cell(e, "to_roles"),
                         cell(e, "rule"), cell(e, "phase"));
    }
    return dump_json(e);
  }

  int incidents_show(ApiClient& c) {
    std::string path = "/v1/incidents/" + url_escape(incident) + query_string({{"client", client}});
    return get_and_show(c, path, [](const json& b) {
      print_fields(std::cout,
                   {{"incident", cell(b, "id")},
                    {"client", cell(b, "client")},
                    {"title", cell(b, "title")},
                    {"severity", cell(b, "severity")},
                    {"phase", cell(b, "phase")},
                    {"previous_phase", cell(b, "previous_phase")},
                    {"drill", b.value("drill", false) ? "yes" : "no"},
                    {"opened_at", cell(b, "opened_at")},
                    {"phase_since", cell(b, "phase_since")},
                    {"updated_at", cell(b, "updated_at")},
                    {"messages", std::to_string(b.value("messages", json::array()).size())}});
      std::cout << "\ntimeline:\n";
      Table t({{"AT"}, {"TYPE"}, {"DETAIL", 90}});
      for (const auto& e : b.value("timeline", json::array())) {
        t.add({cell(e, "at"), cell(e, "type"), timeline_detail(e)});
      }
      print_table(t, "empty");
    });
  }

  // ---- audit ------------------------------------------------------------------------------

  int audit_list(ApiClient& c) {
    auto params = limit_param();
    for (auto& p : audit_params()) {
      params.push_back(std::move(p));
    }
    return list_pages(
        c, "/v1/audit", params,
        Table({{"SEQ"}, {"AT"}, {"KIND"}, {"ACTOR"}, {"CLIENT"}, {"SUBJECT"}}),
        [](const json& i) -> std::vector<std::string> {
          return {cell(i, "seq"),   cell(i, "at"),     cell(i, "kind"),
                  cell(i, "actor"), cell(i, "client"), cell(i, "subject")};
        },
        "no audit records", "herald audit list");
  }

  // The filters audit list and audit export share.
  std::vector<std::pair<std::string, std::string>> audit_params() const {
    return {
        {"kind", kind}, {"client", client}, {"actor", actor}, {"since", since}, {"until", until}};
  }

  // Streams GET /v1/audit/export to the output as it arrives: memory stays one network read.
  int audit_export(ApiClient& c) {
    std::ofstream file_out;
    std::string tmp = output + ".partial";
    if (!output.empty()) {
      file_out.open(tmp, std::ios::binary | std::ios::trunc);
      if (!file_out) {
        return usage(fmt::format("cannot write {}", tmp));
      }
    }
    std::ostream& out = output.empty() ? std::cout : file_out;
    auto params = audit_params();
    params.emplace_back("format", format);
    // Records end at a line break outside quotes (a CSV field may hold line breaks).
    int64_t lines = 0;
    bool quoted = false;
    auto st = c.stream("/v1/audit/export" + query_string(params), [&](std::string_view piece) {
      for (char ch : piece) {
        if (ch == '"') {
          quoted = !quoted;
        } else if (ch == '\n' && !quoted) {
          ++lines;
        }
      }
      out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      return static_cast<bool>(out);
    });
    if (st) {
      out.flush();
    }
    if (!st || !out) {
      if (!output.empty()) {
        file_out.close();
        std::remove(tmp.c_str());
      }
      return report(st ? make_error(ErrorKind::internal, "io",
                                    output.empty() ? std::string("cannot write standard output")
                                                   : fmt::format("cannot write {}", tmp))
                       : st.error());
    }
    const int64_t count = format == "csv" ? std::max<int64_t>(lines - 1, 0) : lines;
    if (!output.empty()) {
      file_out.close();
      if (!file_out || std::rename(tmp.c_str(), output.c_str()) != 0) {
        std::remove(tmp.c_str());
        return report(
            make_error(ErrorKind::internal, "io", fmt::format("cannot write {}", output)));
      }
      std::cout << fmt::format("exported {} to {} ({})\n", plural(count, "audit record"), output,
                               format);
    }
    return kExitOk;
  }

  // ---- tokens -----------------------------------------------------------------------------

  int tokens_create(ApiClient& c) {
    json body{{"name", name}, {"scopes", scopes}};
    if (!expires_at.empty()) {
      body["expires_at"] = expires_at;
    }
    auto r = c.call("POST", "/v1/tokens", &body);
    if (!r) {
      return report(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    // The token goes alone to standard output, so that `TOKEN=$(herald tokens create ...)`
    // works; the rest is for the person at the terminal.
    std::cerr << fmt::format("created token {} (scopes {}{}); it is shown only this once:\n",
                             cell(r->body, "name"), cell(r->body, "scopes"),
                             r->body.value("expires_at", json(nullptr)).is_string()
                                 ? ", expires " + cell(r->body, "expires_at")
                                 : std::string());
    std::cout << cell(r->body, "token") << "\n";
    return kExitOk;
  }

  int tokens_list(ApiClient& c) {
    return get_and_show(c, "/v1/tokens", [](const json& b) {
      Table t({{"NAME"}, {"SCOPES"}, {"SOURCE"}, {"CREATED"}, {"EXPIRES"}, {"LAST USED"}});
      for (const auto& i : b.value("items", json::array())) {
        std::string expires = cell(i, "expires_at");
        if (i.value("expired", false)) {
          expires += " (expired)";
        }
        t.add({cell(i, "name"), cell(i, "scopes"), cell(i, "source"), cell(i, "created_at"),
               expires, cell(i, "last_used_at")});
      }
      print_table(t, "no tokens");
    });
  }

  int audit_verify(ApiClient& c) {
    auto r = c.call("GET", "/v1/audit/verify");
    if (!r) {
      return report(r.error());
    }
    const json& b = r->body;
    bool ok = b.value("ok", false);
    if (json_out) {
      print_raw(*r);
    } else if (ok) {
      std::cout << fmt::format("{}: audit chain ok ({} records)\n", c.url(), int_of(b, "records"));
    } else {
      std::cout << fmt::format("{}: audit chain BROKEN at record {}: {} ({} records read)\n",
                               c.url(), cell(b, "first_bad"), cell(b, "reason"),
                               int_of(b, "records"));
    }
    return ok ? kExitOk : kExitApiError;
  }
};

ClientCommands::ClientCommands(CLI::App& app, CLI::App& audit) : impl_(new Impl) {
  Impl& m = *impl_;
  auto bind = [&m](int (Impl::*fn)(ApiClient&)) {
    return [&m, fn](ApiClient& c) { return (m.*fn)(c); };
  };
  app.footer(
      "Client subcommands (event, clients, contacts, endpoints, plan, deliveries, incidents,\n"
      "tokens, audit list/export/verify) talk to a running daemon: HERALD_URL (default\n"
      "http://127.0.0.1:8080) and HERALD_TOKEN. Exit codes: 0 ok, 1 API error, 2 usage error,\n"
      "3 cannot connect. Documentation: docs/cli.md.");

  // event
  auto* event = m.group(app, "event", "Send phase-change events (scope ingest).");
  auto* send = m.leaf(
      *event, "send",
      "Send one phase-change event; prints whether it was accepted and how many messages it\n"
      "made. The event id defaults to a random evt-... (printed): reuse it to retry safely.\n"
      "Example: herald event send --client acme --incident INC-42 --phase containment \\\n"
      "           --severity critical --title 'Ransomware on FS01' --detail host=FS01\n"
      "Example: herald event send --file event.json   (or --file - for standard input)",
      bind(&Impl::event_send));
  send->add_option("--client", m.client, "the client id");
  send->add_option("--incident", m.incident, "the incident id, e.g. INC-42");
  send->add_option("--phase", m.phase,
                   "preparation, identification, containment, eradication, recovery, "
                   "lessons_learned or closed");
  send->add_option("--severity", m.severity, "low, medium, high or critical");
  send->add_option("--title", m.title, "the incident's title");
  send->add_option("--summary", m.summary, "what happened, for the messages");
  send->add_option("--detail", m.details, "key=value for event.details (repeatable)")
      ->allow_extra_args(false);
  send->add_option("--occurred-at", m.occurred_at, "RFC 3339 time of the phase change");
  send->add_flag("--drill", m.drill, "mark the event as a drill");
  send->add_option("--event-id", m.event_id, "the idempotency key (default: random evt-...)");
  send->add_option("--file", m.file, "send this JSON event body instead ('-' = standard input)");

  // clients
  auto* clients = m.group(app, "clients", "Manage clients (scope admin; reads also audit).");
  m.leaf(*clients, "list", "List the clients.\nExample: herald clients list",
         bind(&Impl::clients_list));
  m.add_client_arg(m.leaf(*clients, "get", "Show one client.\nExample: herald clients get acme",
                          bind(&Impl::clients_get)));
  auto* cput = m.leaf(*clients, "put",
                      "Create or replace a client.\n"
                      "Example: herald clients put acme --name 'Acme Corp' --timezone "
                      "Europe/Berlin --locale en",
                      bind(&Impl::clients_put));
  m.add_client_arg(cput);
  cput->add_option("--name", m.name, "the client's display name")->required();
  cput->add_option("--timezone", m.timezone, "IANA zone (default UTC)");
  cput->add_option("--locale", m.locale, "language tag (default en)");
  m.add_client_arg(m.leaf(
      *clients, "delete",
      "Delete a client with its contacts, endpoints and plan (its history "
      "stays).\nExample: herald clients delete acme",
      [&m](ApiClient& c) { return m.delete_and_say(c, m.client_path(), "client " + m.client); }));

  // contacts
  auto* contacts = m.group(app, "contacts", "Manage a client's contacts (people).");
  m.add_client_arg(m.leaf(*contacts, "list",
                          "List a client's contacts.\nExample: herald contacts list acme",
                          bind(&Impl::contacts_list)));
  auto add_id = [&m](CLI::App* sub, const char* what) {
    m.add_client_arg(sub);
    sub->add_option("id", m.id, what)->required();
    return sub;
  };
  add_id(m.leaf(*contacts, "get", "Show one contact.\nExample: herald contacts get acme dana",
                bind(&Impl::contacts_get)),
         "the contact id");
  auto* kput =
      add_id(m.leaf(*contacts, "put",
                    "Create or replace a contact, from flags or a JSON file.\n"
                    "Example: herald contacts put acme dana --name 'Dana Lee' --role legal \\\n"
                    "           --email dana@acme.example --phone +15551234567 \\\n"
                    "           --timezone America/New_York --quiet-hours 22:00-07:00 \\\n"
                    "           --channel email --channel sms\n"
                    "Example: herald contacts put acme dana --file dana.json",
                    bind(&Impl::contacts_put)),
             "the contact id");
  kput->add_option("--file", m.file, "the contact as JSON ('-' = standard input)");
  kput->add_option("--name", m.name, "the person's name");
  kput->add_option("--role", m.roles, "a role, e.g. legal (repeatable)")->allow_extra_args(false);
  kput->add_option("--email", m.email, "email address");
  kput->add_option("--phone", m.phone, "E.164 phone number, e.g. +15551234567");
  kput->add_option("--chat", m.chat, "chat handle, for reference");
  kput->add_option("--timezone", m.timezone, "IANA zone (default UTC)");
  kput->add_option("--quiet-hours", m.quiet_hours, "START-END in the contact's zone, or none");
  kput->add_option("--channel", m.channels, "email or sms, in order of preference (repeatable)")
      ->allow_extra_args(false);
  add_id(m.leaf(*contacts, "delete", "Delete a contact.\nExample: herald contacts delete acme dana",
                [&m](ApiClient& c) {
                  return m.delete_and_say(c, m.contact_path(),
                                          fmt::format("contact {} of {}", m.id, m.client));
                }),
         "the contact id");

  // endpoints
  auto* endpoints =
      m.group(app, "endpoints", "Manage a client's chat rooms and webhooks (endpoints).");
  m.add_client_arg(m.leaf(*endpoints, "list",
                          "List a client's endpoints (URLs and secrets redacted).\n"
                          "Example: herald endpoints list acme",
                          bind(&Impl::endpoints_list)));
  add_id(m.leaf(*endpoints, "get", "Show one endpoint.\nExample: herald endpoints get acme siem",
                bind(&Impl::endpoints_get)),
         "the endpoint id");
  auto* eput = add_id(
      m.leaf(*endpoints, "put",
             "Create or replace an endpoint. A webhook without --secret gets one generated,\n"
             "printed once.\n"
             "Example: herald endpoints put acme soc-slack --type slack \\\n"
             "           --url https://hooks.slack.com/services/T000/B000/XXXX",
             bind(&Impl::endpoints_put)),
      "the endpoint id");
  eput->add_option("--type", m.type, "slack, teams, mattermost, discord, googlechat or webhook");
  eput->add_option("--url", m.url, "the http(s) URL to post to");
  eput->add_option("--secret", m.secret, "webhook signing secret, whsec_...");
  eput->add_flag("--disabled", m.disabled, "store it paused (enabled: false)");
  eput->add_option("--file", m.file, "the endpoint as JSON ('-' = standard input)");
  add_id(m.leaf(*endpoints, "delete",
                "Delete an endpoint.\nExample: herald endpoints delete acme soc-slack",
                [&m](ApiClient& c) {
                  return m.delete_and_say(c, m.endpoint_path(),
                                          fmt::format("endpoint {} of {}", m.id, m.client));
                }),
         "the endpoint id");

  // plan
  auto* plan = m.group(app, "plan", "A client's communication plan (see docs/plan.md).");
  m.add_client_arg(m.leaf(*plan, "get",
                          "Print a client's plan as JSON.\nExample: herald plan get acme > "
                          "acme-plan.json",
                          bind(&Impl::plan_get)));
  auto* pput = m.leaf(*plan, "put",
                      "Replace a client's plan from a JSON file; prints its version and "
                      "warnings.\nExample: herald plan put acme --file examples/acme-plan.json",
                      bind(&Impl::plan_put));
  m.add_client_arg(pput);
  pput->add_option("--file", m.file, "the plan as JSON ('-' = standard input)")->required();
  auto* preview = m.leaf(*plan, "preview",
                         "Show who would be told, how and when, for a phase and severity;\n"
                         "nothing is sent.\n"
                         "Example: herald plan preview acme --phase containment --severity high",
                         bind(&Impl::plan_preview));
  m.add_client_arg(preview);
  preview->add_option("--phase", m.phase, "the phase")->required();
  preview->add_option("--severity", m.severity, "the severity")->required();
  preview->add_option("--at", m.at, "RFC 3339 time of the phase change (default now)");

  // deliveries
  auto* deliveries = m.group(app, "deliveries", "The delivery log (scope audit).");
  auto* dlist = m.leaf(*deliveries, "list",
                       "List deliveries, oldest first, optionally filtered.\n"
                       "Example: herald deliveries list --client acme --status failed --all",
                       bind(&Impl::deliveries_list));
  dlist->add_option("--client", m.client, "only this client");
  dlist->add_option("--incident", m.incident, "only this incident");
  dlist->add_option("--status", m.status,
                    "scheduled, sending, retrying, delivered, failed or cancelled");
  dlist->add_option("--channel", m.channel, "email, sms, chat or webhook");
  dlist->add_option("--since", m.since, "created at or after this RFC 3339 time");
  dlist->add_option("--until", m.until, "created before this RFC 3339 time");
  m.add_paging(dlist, "deliveries");
  m.leaf(*deliveries, "show",
         "Show one delivery: the item, its attempts and the content as sent.\n"
         "Example: herald deliveries show msg_85b99278ae296588b03770566c",
         bind(&Impl::deliveries_show))
      ->add_option("id", m.id, "the delivery id (msg_...)")
      ->required();
  m.leaf(*deliveries, "retry",
         "Put a failed delivery back in the queue (scope admin).\n"
         "Example: herald deliveries retry msg_85b99278ae296588b03770566c",
         bind(&Impl::deliveries_retry))
      ->add_option("id", m.id, "the delivery id (msg_...)")
      ->required();

  // incidents
  auto* incidents = m.group(app, "incidents", "Incidents and their timelines (scope audit).");
  auto* ishow = m.leaf(*incidents, "show",
                       "Show an incident and its timeline.\n"
                       "Example: herald incidents show INC-42 --client acme",
                       bind(&Impl::incidents_show));
  ishow->add_option("incident", m.incident, "the incident id")->required();
  ishow->add_option("--client", m.client, "the client the incident belongs to")->required();

  // tokens
  auto* tokens = m.group(app, "tokens",
                         "Manage API tokens (scope admin). Tokens in the config file are listed\n"
                         "too, but change only with the file (and a reload).");
  auto* tcreate = m.leaf(*tokens, "create",
                         "Make a token; prints it once (only its SHA-256 is kept).\n"
                         "Example: TOKEN=$(herald tokens create siem-ingest --scope ingest)\n"
                         "Example: herald tokens create auditor --scope audit \\\n"
                         "           --expires-at 2027-06-30T00:00:00Z",
                         bind(&Impl::tokens_create));
  tcreate->add_option("name", m.name, "the token's name (recorded as the actor of its changes)")
      ->required();
  tcreate->add_option("--scope", m.scopes, "admin, audit or ingest (repeatable)")
      ->required()
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"admin", "audit", "ingest"}));
  tcreate->add_option("--expires-at", m.expires_at,
                      "RFC 3339 time after which it is refused (default: never)");
  m.leaf(*tokens, "list",
         "List the tokens: name, scopes, where defined, created, expiry, last use.\n"
         "Never shows a token or its hash.\nExample: herald tokens list",
         bind(&Impl::tokens_list));
  m.leaf(*tokens, "delete",
         "Revoke a token made through the API, at once.\nExample: herald tokens delete "
         "siem-ingest",
         [&m](ApiClient& c) {
           return m.delete_and_say(c, "/v1/tokens/" + url_escape(m.name), "token " + m.name);
         })
      ->add_option("name", m.name, "the token's name")
      ->required();

  // audit list / export / verify (online)
  auto* alist = m.leaf(audit, "list",
                       "List audit records through the API.\n"
                       "Example: herald audit list --kind plan.put --all",
                       bind(&Impl::audit_list));
  m.add_audit_filters(alist);
  m.add_paging(alist, "records");
  auto* aexport = m.leaf(audit, "export",
                         "Export the audit trail as CSV (RFC 4180, a header row, columns\n"
                         "seq,at,kind,actor,client,subject,data,prev_hash,hash) or JSON lines,\n"
                         "streamed from GET /v1/audit/export as it arrives.\n"
                         "Example: herald audit export --format csv --output audit.csv",
                         bind(&Impl::audit_export), /*with_json=*/false);
  aexport->add_option("--format", m.format, "csv or jsonl")
      ->required()
      ->check(CLI::IsMember({"csv", "jsonl"}));
  aexport->add_option("--output,-o", m.output,
                      "write to this file, renamed from FILE.partial once complete (default "
                      "standard output)");
  m.add_audit_filters(aexport);
  if (auto* verify = audit.get_subcommand("verify")) {
    verify->add_flag("--json", m.json_out, "online: print the API's JSON answer as it is");
    auto* database = verify->get_option("--database");
    m.leaves.push_back(
        {verify, bind(&Impl::audit_verify), [database] { return database->count() == 0; }});
  }
}

ClientCommands::~ClientCommands() = default;

std::optional<int> ClientCommands::run() {
  for (auto& leaf : impl_->leaves) {
    if (!leaf.app->parsed() || (leaf.applies && !leaf.applies())) {
      continue;
    }
    auto config = client_config_from_env();
    if (!config) {
      return report(config.error());
    }
    ApiClient client(std::move(*config));
    return leaf.run(client);
  }
  return std::nullopt;
}

}  // namespace herald::cli
