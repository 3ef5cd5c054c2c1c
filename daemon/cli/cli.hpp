// The `herald` command line: serve, check-config, migrate, audit verify, and the client
// subcommands that talk to a running daemon.
#pragma once

namespace herald::cli {

// Parses arguments, runs the subcommand, returns the process exit code.
int run(int argc, char** argv);

}  // namespace herald::cli
