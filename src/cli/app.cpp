// build_app(): the option grammar of `bloomz` (moved out of main.cpp unchanged).
#include "cli/app.hpp"

#include <string>

#include "bloomz/version.hpp"

namespace bloomz::cli {

Command build_app(CLI::App& app, CommonOptions& common, std::vector<Command>& commands) {
  app.description("bloomz: fast CPU inference for GGUF BLOOM models (bloomz-560m and its siblings)");
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
  auto* repack = app.add_flag("--repack", common.repack,
                              "Repack Q4_0/Q8_0/Q4_K/Q6_K weights at load into the x8 layout (faster decoding, slower start; "
                              "default for bench, perplexity, score and --batch-file)");
  app.add_flag("--no-repack", common.no_repack, "Keep the file's weight layout (instant start; same output)")->excludes(repack);

  Command generate = add_generate_options(app, common);
  commands.push_back(add_inspect_command(app, common));
  commands.push_back(add_tokenize_command(app, common));
  commands.push_back(add_detokenize_command(app, common));
  commands.push_back(add_logits_command(app, common));
  commands.push_back(add_bench_command(app, common));
  commands.push_back(add_perplexity_command(app, common));
  commands.push_back(add_score_command(app, common));
#ifdef BLOOMZ_HAVE_SERVER
  commands.push_back(add_serve_command(app, common));
#else
  commands.push_back(add_unbuilt_command(app, "serve", "HTTP server (configure with BLOOMZ_SERVER=ON and libcpp-httplib-dev)"));
#endif
  return generate;
}

}  // namespace bloomz::cli
