// herald: one binary, many subcommands (see `herald --help`).
#include "daemon/cli/cli.hpp"

int main(int argc, char** argv) {
  return herald::cli::run(argc, argv);
}
