// The CLI's commands. Each add_* function registers a CLI11 subcommand (or, for generation, the
// root's own options) and returns the function that runs it once parsing has succeeded.
// Runners return the exit status; they may also throw bloomz::Error (mapped in main.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "bloomz/model.hpp"
#include "bloomz/session.hpp"

namespace bloomz::cli {

// Options every command accepts (-m, -t, --isa, logging).
struct CommonOptions {
  std::string model;        // -m/--model; empty = $BLOOMZ_MODEL, else the default path
  int threads = 0;          // -t/--threads; 0 = physical cores
  std::string isa = "auto";
  std::string log_level = "info";
  bool quiet = false;
  // --repack / --no-repack; neither: each command's default (load_options)
  bool repack = false, no_repack = false;
};

struct Command {
  CLI::App* app = nullptr;  // nullptr for the root (generation)
  std::function<int()> run;
};

// The model path to use: -m, else $BLOOMZ_MODEL, else models/bloomz-560m.Q4_K_M.gguf.
std::string resolve_model_path(const CommonOptions& common);
// Model::load options from the common flags. Repacking weights at load (x8 layout) costs the
// first touch of fresh memory (tens to hundreds of ms) and pays back over many tokens, so it is on
// by default for long runs (long_run: bench, perplexity, score, --batch-file) and off for one
// prompt; --repack / --no-repack override.
LoadOptions load_options(const CommonOptions& common, bool long_run);
// --kv-type: the option (f16|f32|q8_0, default f16) and its value as a KvType.
void add_kv_type_option(CLI::App* app, std::string& value);
KvType kv_type_from_name(const std::string& name);
// Apply -t and --isa (throws Error(Usage) for a value this machine cannot honour).
void apply_runtime_options(const CommonOptions& common);

Command add_inspect_command(CLI::App& root, CommonOptions& common);
Command add_tokenize_command(CLI::App& root, CommonOptions& common);
Command add_detokenize_command(CLI::App& root, CommonOptions& common);
Command add_logits_command(CLI::App& root, CommonOptions& common);
Command add_bench_command(CLI::App& root, CommonOptions& common);
Command add_perplexity_command(CLI::App& root, CommonOptions& common);
Command add_score_command(CLI::App& root, CommonOptions& common);
Command add_serve_command(CLI::App& root, CommonOptions& common);
Command add_generate_options(CLI::App& root, CommonOptions& common);
// A command that is documented but not built yet: its help says so and running it exits 2.
Command add_unbuilt_command(CLI::App& root, const std::string& name, const std::string& what);

}  // namespace bloomz::cli
