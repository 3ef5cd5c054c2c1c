// `herald drill run|report|list`: drills through a running daemon's API (docs/drills.md).
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace herald::cli {

class DrillCommands {
 public:
  explicit DrillCommands(CLI::App& app);
  ~DrillCommands();
  DrillCommands(const DrillCommands&) = delete;
  DrillCommands& operator=(const DrillCommands&) = delete;
  // After parsing: the exit code of the drill subcommand given, once run; nullopt for none.
  std::optional<int> run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::cli
