// `herald serve`: wires the pipeline together and runs it until SIGTERM or SIGINT.
#pragma once

#include <string>

namespace herald::cli {

int serve(const std::string& config_path);

}  // namespace herald::cli
