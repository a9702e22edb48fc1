// bloomz's entry point: builds the CLI11 app from the commands, sets up logging (stderr only),
// runs the chosen command, and is the single place where errors become exit statuses.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <vector>

#include "bloomz/error.hpp"
#include "bloomz/version.hpp"
#include "cli/commands.hpp"

namespace {

void setup_logging(const bloomz::cli::CommonOptions& common) {
  auto logger = spdlog::stderr_color_st("bloomz");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(common.log_level);
  if (common.quiet) level = spdlog::level::err;
  spdlog::set_level(level);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as EPIPE in write_stdout
  std::setvbuf(stdout, nullptr, _IOFBF, 1 << 16);
  using namespace bloomz::cli;
  CommonOptions common;
  CLI::App app{"bloomz: fast CPU inference for GGUF BLOOM models (bloomz-560m and its siblings)"};
  app.set_version_flag("--version", std::string("bloomz ") + BLOOMZ_VERSION + " (" + BLOOMZ_GIT_SHA + ")");
  app.fallthrough();  // common options may follow a subcommand name
  app.add_option("-m,--model", common.model, "Model file (default: $BLOOMZ_MODEL, else models/bloomz-560m.Q4_K_M.gguf)");
  app.add_option("-t,--threads", common.threads, "Threads (>= 1; default: physical cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--isa", common.isa, "Kernel set: auto|ref|avx2|avx512|avx512vnni|neon|neon-dot")
      ->check(CLI::IsMember({"auto", "ref", "avx2", "avx512", "avx512vnni", "neon", "neon-dot"}));
  app.add_option("--log-level", common.log_level, "Log level: trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("-q,--quiet", common.quiet, "Only errors on stderr");

  std::vector<Command> commands;
  Command generate = add_generate_options(app, common);
  commands.push_back(add_inspect_command(app, common));
  commands.push_back(add_tokenize_command(app, common));
  commands.push_back(add_detokenize_command(app, common));
  commands.push_back(add_logits_command(app, common));
  commands.push_back(add_bench_command(app, common));
  commands.push_back(add_perplexity_command(app, common));
  commands.push_back(add_score_command(app, common));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }

  setup_logging(common);
  try {
    for (const Command& cmd : commands) {
      if (cmd.app != nullptr && cmd.app->parsed()) return cmd.run();
    }
    return generate.run();
  } catch (const bloomz::Error& e) {
    spdlog::error("{}", e.what());
    return bloomz::exit_status(e.kind());
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
