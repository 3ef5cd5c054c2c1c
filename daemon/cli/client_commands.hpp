// The client subcommands of `herald` (event, clients, contacts, endpoints, plan, deliveries,
// incidents, audit list/export/verify): they talk to a running daemon through the HTTP API.
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace herald::cli {

class ClientCommands {
 public:
  // Adds the subcommands to `app`. `audit` is the existing `audit` group: it gains `list` and
  // `export`, and its `verify` calls GET /v1/audit/verify when given no --database.
  ClientCommands(CLI::App& app, CLI::App& audit);
  ~ClientCommands();
  ClientCommands(const ClientCommands&) = delete;
  ClientCommands& operator=(const ClientCommands&) = delete;

  // After parsing: the exit code of the client subcommand that was given, once it has run, or
  // nullopt when the command line named none of them.
  std::optional<int> run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::cli
