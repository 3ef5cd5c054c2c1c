#include "daemon/cli/cli.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "daemon/cli/client_commands.hpp"
#include "daemon/cli/drill_commands.hpp"
#include "daemon/cli/serve.hpp"
#include "daemon/config/config.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/store/store.hpp"

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

namespace herald::cli {
namespace {

int check_config(const std::string& path) {
  auto cfg = config::load_config_file(path);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  std::cout << fmt::format(
      "{}: ok (listen {}:{}, database {}, {} token(s), email {}, sms {}, nats {})\n", path,
      cfg->server.host, cfg->server.port, cfg->storage.database, cfg->tokens.size(),
      cfg->smtp ? "on" : "off", cfg->sms ? "on" : "off", cfg->nats ? "on" : "off");
  return 0;
}

int migrate(const std::string& path) {
  auto db = store::Database::open(path);
  if (!db) {
    std::cerr << "herald migrate: " << db.error().message << "\n";
    return 1;
  }
  int before = (*db)->user_version();
  auto version = store::migrate(**db);
  if (!version) {
    std::cerr << "herald migrate: " << version.error().message << "\n";
    return 1;
  }
  std::cout << fmt::format("{}: schema version {} (was {})\n", path, *version, before);
  return 0;
}

int audit_verify(const std::string& path) {
  auto db = store::Database::open(path, /*read_only=*/true);
  if (!db) {
    std::cerr << "herald audit verify: " << db.error().message << "\n";
    return 1;
  }
  store::Repo repo(**db);
  auto v = repo.verify_audit();
  if (!v) {
    std::cerr << "herald audit verify: " << v.error().message << "\n";
    return 1;
  }
  if (!v->ok) {
    std::cout << fmt::format("{}: audit chain BROKEN at record {}: {} ({} records read)\n", path,
                             *v->first_bad, v->reason, v->records);
    return 1;
  }
  std::cout << fmt::format("{}: audit chain ok ({} records)\n", path, v->records);
  return 0;
}

int backup(const std::string& from, const std::string& to) {
  auto r = store::backup(from, to);
  if (!r) {
    std::cerr << "herald backup: " << r.error().message << "\n";
    return 1;
  }
  std::cout << fmt::format("{} -> {}: {} pages, schema version {}, integrity ok\n", from, to,
                           r->pages, r->schema_version);
  return 0;
}

struct TemplateRenderArgs {
  std::string channel = "email.text";
  std::string context_path;
  std::string template_path;
  std::string phase = "containment";
  bool drill = false;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Renders a template file offline, as POST /v1/templates/render does (shipped partials only).
int template_render(const TemplateRenderArgs& args) {
  auto source = read_file(args.template_path);
  if (!source) {
    std::cerr << "herald template render: cannot read " << args.template_path << "\n";
    return 1;
  }
  nlohmann::json context;
  if (!args.context_path.empty()) {
    auto text = read_file(args.context_path);
    if (!text) {
      std::cerr << "herald template render: cannot read " << args.context_path << "\n";
      return 1;
    }
    context = nlohmann::json::parse(*text, nullptr, false);
    if (context.is_discarded() || !context.is_object()) {
      std::cerr << "herald template render: " << args.context_path << " is not a JSON object\n";
      return 1;
    }
  } else {
    auto phase = parse_phase(args.phase);
    if (!phase) {
      std::cerr << "herald template render: unknown phase \"" << args.phase << "\"\n";
      return 1;
    }
    context = render::context_json(render::sample_context(*phase, args.drill));
  }
  auto rendered = render::render_string(*source, args.channel, context);
  if (!rendered) {
    std::cerr << args.template_path << ": " << rendered.error().message << "\n";
    return 1;
  }
  for (const auto& warning : render::template_warnings(*source)) {
    std::cerr << args.template_path << ": warning: " << warning << "\n";
  }
  std::cout << *rendered;
  if (rendered->empty() || rendered->back() != '\n') {
    std::cout << "\n";
  }
  if (args.channel == "sms.text") {
    auto length = render::sms_length(*rendered);
    std::cerr << fmt::format("sms: {} {} units, {} segment(s)\n", length.gsm7 ? "GSM-7" : "UCS-2",
                             length.units, length.segments);
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{
      "Herald keeps everyone affected by a security incident informed, at every phase.\n"
      "It receives phase-change events, resolves each client's communication plan, and\n"
      "delivers the messages by email, SMS, chat and signed webhooks, recording every step.\n"
      "Documentation: docs/ (configuration.md, api.md, operations.md).",
      "herald"};
  app.set_version_flag("--version", std::string("herald ") + HERALD_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  auto* serve_cmd =
      app.add_subcommand("serve",
                         "Run the daemon in the foreground (systemd Type=notify aware).\n"
                         "Example: herald serve --config /etc/herald/herald.toml");
  serve_cmd->add_option("--config,-c", config_path, "the configuration file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);

  std::string check_path;
  auto* check_cmd = app.add_subcommand(
      "check-config",
      "Validate a configuration file: exit 0, or print what is wrong and exit 1.\n"
      "Example: herald check-config --config examples/herald.toml");
  check_cmd->add_option("--config,-c", check_path, "the configuration file (TOML)")->required();

  std::string migrate_path;
  auto* migrate_cmd =
      app.add_subcommand("migrate",
                         "Create or upgrade the database schema (serve also does this at start).\n"
                         "Example: herald migrate --database /var/lib/herald/herald.db");
  migrate_cmd->add_option("--database,-d", migrate_path, "the SQLite database file")->required();

  std::string backup_from;
  std::string backup_to;
  auto* backup_cmd = app.add_subcommand(
      "backup",
      "Copy the database to a new file while herald runs (SQLite online backup: a consistent\n"
      "snapshot, WAL included), check the copy's integrity, and only then give it its name.\n"
      "Run it as the user herald runs as. Restore: docs/operations.md.\n"
      "Example: herald backup --database /var/lib/herald/herald.db \\\n"
      "           --to /var/backups/herald/herald-$(date +%F).db");
  backup_cmd->add_option("--database,-d", backup_from, "the SQLite database file")->required();
  backup_cmd->add_option("--to", backup_to, "the backup file to create (must not exist)")
      ->required();

  auto* audit_cmd = app.add_subcommand("audit", "Audit trail tools.");
  audit_cmd->require_subcommand(1);
  std::string verify_path;
  auto* verify_cmd = audit_cmd->add_subcommand(
      "verify",
      "Check the audit hash chain; exit 1 naming the first bad record. With --database,\n"
      "offline on the file; without, through the running daemon's API.\n"
      "Example: herald audit verify --database /var/lib/herald/herald.db");
  verify_cmd->add_option("--database,-d", verify_path, "the SQLite database file (offline)");
  ClientCommands client_commands(app, *audit_cmd);
  DrillCommands drill_commands(app);

  auto* template_cmd = app.add_subcommand("template", "Template tools (no daemon needed).");
  template_cmd->require_subcommand(1);
  TemplateRenderArgs render_args;
  auto* render_cmd = template_cmd->add_subcommand(
      "render",
      "Render a mustache template file with a sample (or given) context, escaped for CHANNEL.\n"
      "Example: herald template render --channel email.html my.email.html.mustache");
  render_cmd
      ->add_option("--channel", render_args.channel,
                   "CHANNEL.PART: email.subject, email.text, email.html, sms.text, chat.text")
      ->capture_default_str();
  render_cmd->add_option("--context", render_args.context_path,
                         "a JSON file with the context (default: a sample incident)");
  render_cmd->add_option("--phase", render_args.phase, "the sample context's phase")
      ->capture_default_str();
  render_cmd->add_flag("--drill", render_args.drill, "the sample context is a drill");
  render_cmd->add_option("TEMPLATE_FILE", render_args.template_path, "the template source")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; any other parse error a usage error
  }
  if (auto code = client_commands.run()) {
    return *code;
  }
  if (auto code = drill_commands.run()) {
    return *code;
  }
  if (*serve_cmd) {
    return serve(config_path);
  }
  if (*check_cmd) {
    return check_config(check_path);
  }
  if (*migrate_cmd) {
    return migrate(migrate_path);
  }
  if (*backup_cmd) {
    return backup(backup_from, backup_to);
  }
  if (*verify_cmd) {
    return audit_verify(verify_path);
  }
  if (*render_cmd) {
    return template_render(render_args);
  }
  return 2;
}

}  // namespace herald::cli
