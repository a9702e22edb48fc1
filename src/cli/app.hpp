// The CLI11 application: every option and subcommand of `bloomz`, built in one place so that
// main() and the option-parsing fuzzer (tests/fuzz/fuzz_cli.cpp) parse exactly the same grammar.
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

#include "cli/commands.hpp"

namespace bloomz::cli {

// Registers the common options and all commands on `app`, appends the subcommands' runners to
// `commands` and returns the root's runner (generation). Parsing has no side effects beyond
// filling `common` and the commands' option structs: nothing runs until a runner is called.
Command build_app(CLI::App& app, CommonOptions& common, std::vector<Command>& commands);

}  // namespace bloomz::cli
