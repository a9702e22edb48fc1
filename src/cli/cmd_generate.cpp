// Placeholder until the forward pass lands (issue 5).
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"

namespace bloomz::cli {
Command add_generate_options(CLI::App&, CommonOptions&) {
  return {nullptr, [] {
            spdlog::error("generation is not built yet; try 'bloomz inspect MODEL'");
            return 2;
          }};
}
}  // namespace bloomz::cli
