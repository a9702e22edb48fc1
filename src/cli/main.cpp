// bloomz's entry point: builds the CLI11 app (cli/app.cpp), sets up logging (stderr only),
// runs the chosen command, and is the single place where errors become exit statuses.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <vector>

#include "bloomz/error.hpp"
#include "cli/app.hpp"

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
  CLI::App app;
  std::vector<Command> commands;
  Command generate = build_app(app, common, commands);

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
  } catch (const std::exception& e) {
    // CLI11 lets a few conversion exceptions through (std::stoll's, for one); they still mean the
    // command line is bad, and must not end the process with terminate().
    std::fprintf(stderr, "error: bad command line (%s)\n", e.what());
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
