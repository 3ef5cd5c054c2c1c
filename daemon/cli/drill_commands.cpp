#include "daemon/cli/drill_commands.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "daemon/cli/client.hpp"

namespace herald::cli {
namespace {

using nlohmann::json;

int report_error(const Error& e) {
  std::cerr << "herald: " << e.message << "\n";
  return exit_code_for(e);
}

void print_raw(const ApiReply& r) {
  std::cout << r.text;
  if (!r.text.empty() && r.text.back() != '\n') {
    std::cout << "\n";
  }
}

std::string millis(const json& v) {
  if (!v.is_number()) {
    return "-";
  }
  double ms = v.get<double>();
  return ms < 1000 ? fmt::format("{:.0f}ms", ms) : fmt::format("{:.1f}s", ms / 1000);
}

std::string yes_no(const json& v) {
  return v.is_boolean() && v.get<bool>() ? "yes" : "no";
}

}  // namespace

struct DrillCommands::Impl {
  CLI::App* run_cmd = nullptr;
  CLI::App* report_cmd = nullptr;
  CLI::App* list_cmd = nullptr;
  std::string client, drill, phase, severity;
  bool json_out = false;

  int run_drill(ApiClient& c) {
    json body{{"phase", phase}, {"severity", severity}};
    auto r = c.call("POST", "/v1/clients/" + url_escape(client) + "/drills", &body);
    if (!r) {
      return report_error(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    std::cout << fmt::format(
        "drill {} started for {} ({} at {}): {} message(s), incident {}\n"
        "see how it went: herald drill report {}\n",
        cell(r->body, "drill"), client, phase, severity, cell(r->body, "messages"),
        cell(r->body, "incident"), cell(r->body, "drill"));
    return kExitOk;
  }

  int show_report(ApiClient& c) {
    auto r = c.call("GET", "/v1/drills/" + url_escape(drill));
    if (!r) {
      return report_error(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    const json& b = r->body;
    const json& s = b.value("summary", json::object());
    print_fields(
        std::cout,
        {{"drill", cell(b, "drill")},
         {"client", cell(b, "client")},
         {"incident", cell(b, "incident")},
         {"phase", cell(b, "phase")},
         {"severity", cell(b, "severity")},
         {"started_at", cell(b, "started_at")},
         {"started_by", cell(b, "started_by")},
         {"status", cell(b, "status")},
         {"result", cell(b, "result")},
         {"people", fmt::format("{} reached, {} acknowledged, of {}", cell(s, "contacts_reached"),
                                cell(s, "contacts_acknowledged"), cell(s, "contacts"))},
         {"rooms",
          fmt::format("{} reached of {}", cell(s, "endpoints_reached"), cell(s, "endpoints"))}});
    std::cout << "\npeople:\n";
    Table people({{"CONTACT"},
                  {"NAME"},
                  {"CHANNEL"},
                  {"STATUS"},
                  {"DELIVERED_AT"},
                  {"TO_DELIVER"},
                  {"ACKNOWLEDGED"},
                  {"TO_ACK"}});
    for (const auto& p : b.value("contacts", json::array())) {
      for (const auto& ch : p.value("channels", json::array())) {
        people.add({cell(p, "contact"), cell(p, "name"), cell(ch, "channel"), cell(ch, "status"),
                    cell(ch, "delivered_at"), millis(ch["time_to_deliver_ms"]),
                    yes_no(ch["acknowledged"]), millis(ch["time_to_acknowledge_ms"])});
      }
    }
    if (people.rows() == 0) {
      std::cout << "nobody\n";
    } else {
      people.print(std::cout);
    }
    std::cout << "\nrooms:\n";
    Table rooms({{"ENDPOINT"},
                 {"TYPE"},
                 {"CHANNEL"},
                 {"STATUS"},
                 {"DELIVERED_AT"},
                 {"TO_DELIVER"},
                 {"LAST_ERROR", 60}});
    for (const auto& e : b.value("endpoints", json::array())) {
      for (const auto& ch : e.value("channels", json::array())) {
        rooms.add({cell(e, "endpoint"), cell(e, "type"), cell(ch, "channel"), cell(ch, "status"),
                   cell(ch, "delivered_at"), millis(ch["time_to_deliver_ms"]),
                   cell(ch, "last_error")});
      }
    }
    if (rooms.rows() == 0) {
      std::cout << "none\n";
    } else {
      rooms.print(std::cout);
    }
    std::cout << "\ngaps:\n";
    const json& g = b.value("gaps", json::object());
    int found = 0;
    for (const auto& x : g.value("roles_without_contacts", json::array())) {
      std::cout << fmt::format("- no contact holds the role \"{}\" (rules {})\n", cell(x, "role"),
                               cell(x, "rules"));
      ++found;
    }
    for (const auto& x : g.value("contacts_without_address", json::array())) {
      std::cout << fmt::format("- contact {}, rule {}: cannot use {} ({}){}\n", cell(x, "contact"),
                               cell(x, "rule"), cell(x, "channels"), cell(x, "reasons"),
                               x.value("reachable", true) ? "" : ": not reached at all");
      ++found;
    }
    for (const auto& x : g.value("phases_without_rules", json::array())) {
      std::cout << fmt::format("- no rule covers the phase {}\n", cell(x));
      ++found;
    }
    for (const auto& x : g.value("not_reached_in_recent_drills", json::array())) {
      std::cout << fmt::format("- {} {} was not reached in drill(s) {}\n",
                               x.contains("contact") ? "contact" : "endpoint",
                               x.contains("contact") ? cell(x, "contact") : cell(x, "endpoint"),
                               cell(x, "drills"));
      ++found;
    }
    if (found == 0) {
      std::cout << "none\n";
    }
    return kExitOk;
  }

  int list_drills(ApiClient& c) {
    auto r = c.call("GET", "/v1/clients/" + url_escape(client) + "/drills");
    if (!r) {
      return report_error(r.error());
    }
    if (json_out) {
      print_raw(*r);
      return kExitOk;
    }
    Table t({{"DRILL"},
             {"STARTED_AT"},
             {"PHASE"},
             {"SEVERITY"},
             {"PEOPLE"},
             {"ACKED"},
             {"ROOMS"},
             {"RESULT"}});
    for (const auto& d : r->body.value("items", json::array())) {
      t.add({cell(d, "drill"), cell(d, "started_at"), cell(d, "phase"), cell(d, "severity"),
             fmt::format("{}/{}", cell(d, "contacts_reached"), cell(d, "contacts")),
             fmt::format("{}/{}", cell(d, "contacts_acknowledged"), cell(d, "contacts")),
             fmt::format("{}/{}", cell(d, "endpoints_reached"), cell(d, "endpoints")),
             cell(d, "result")});
    }
    if (t.rows() == 0) {
      std::cout << "no drills yet\n";
    } else {
      t.print(std::cout);
    }
    return kExitOk;
  }
};

DrillCommands::DrillCommands(CLI::App& app) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  auto* group = app.add_subcommand(
      "drill", "Communication drills: a labelled rehearsal through a client's real plan.");
  group->require_subcommand(1);
  m.run_cmd = group->add_subcommand(
      "run",
      "Start a drill (scope admin): a synthetic incident, marked as a drill everywhere, goes\n"
      "through the client's real plan to the real people and rooms.\n"
      "Example: herald drill run acme --phase containment --severity high");
  m.run_cmd->add_option("client", m.client, "the client id")->required();
  m.run_cmd->add_option("--phase", m.phase, "the phase to rehearse")->required();
  m.run_cmd->add_option("--severity", m.severity, "low, medium, high or critical")->required();
  m.report_cmd = group->add_subcommand(
      "report",
      "Show what a drill reached (scope audit): per person and room, per channel, delivered\n"
      "and acknowledged or not, how long it took; then the plan's gaps.\n"
      "Example: herald drill report drl_3f9c0a1b2c4d");
  m.report_cmd->add_option("drill", m.drill, "the drill id (drl_...)")->required();
  m.list_cmd =
      group->add_subcommand("list",
                            "List a client's drills, newest first (scope admin or audit).\n"
                            "Example: herald drill list acme");
  m.list_cmd->add_option("client", m.client, "the client id")->required();
  for (auto* sub : {m.run_cmd, m.report_cmd, m.list_cmd}) {
    sub->add_flag("--json", m.json_out, "print the API's JSON answer as it is, for scripts");
  }
}

DrillCommands::~DrillCommands() = default;

std::optional<int> DrillCommands::run() {
  Impl& m = *impl_;
  int (Impl::*fn)(ApiClient&) = nullptr;
  if (m.run_cmd->parsed()) {
    fn = &Impl::run_drill;
  } else if (m.report_cmd->parsed()) {
    fn = &Impl::show_report;
  } else if (m.list_cmd->parsed()) {
    fn = &Impl::list_drills;
  } else {
    return std::nullopt;
  }
  auto config = client_config_from_env();
  if (!config) {
    return report_error(config.error());
  }
  ApiClient client(std::move(*config));
  return (m.*fn)(client);
}

}  // namespace herald::cli
