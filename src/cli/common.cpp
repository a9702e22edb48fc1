// Helpers shared by the commands: model path resolution, thread and ISA set-up, unbuilt commands.
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <cstdlib>
#include <thread>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"
#include "cli/commands.hpp"

namespace bloomz::cli {

std::string resolve_model_path(const CommonOptions& common) {
  if (!common.model.empty()) return common.model;
  if (const char* env = std::getenv("BLOOMZ_MODEL"); env != nullptr && *env != '\0') return env;
  return "models/bloomz-560m.Q4_K_M.gguf";
}

LoadOptions load_options(const CommonOptions& common, bool long_run) {
  LoadOptions o;
  o.repack = common.repack || (long_run && !common.no_repack);
  return o;
}

void apply_runtime_options(const CommonOptions& common) {
  int threads = common.threads;
  if (threads <= 0) {
    // Physical cores are not portable to query; hardware_concurrency counts SMT siblings too,
    // which only slow a memory-bound decoder down, so take half when it is even and > 2.
    const unsigned hc = std::thread::hardware_concurrency();
    threads = hc == 0 ? 1 : static_cast<int>(hc);
  }
  set_num_threads(threads);
  const Isa isa = select_isa(common.isa);
  spdlog::debug("{} threads, {} kernels ({})", threads, isa_name(isa), cpu_feature_string());
}

void add_kv_type_option(CLI::App* app, std::string& value) {
  app->add_option("--kv-type", value,
                  "KV cache precision: f16|f32|q8_0 (q8_0: llama.cpp's -ctk/-ctv q8_0 blocks, half the bytes of f16 "
                  "read per token at long contexts; head dimension a multiple of 32)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
}

KvType kv_type_from_name(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "f32") return KvType::F32;
  if (name == "q8_0") return KvType::Q8_0;
  throw Error(ErrorKind::Usage, fmt::format("--kv-type: '{}' is not one of f16, f32, q8_0", name));
}

Command add_unbuilt_command(CLI::App& root, const std::string& name, const std::string& what) {
  CLI::App* sub = root.add_subcommand(name, what + " (not built yet)");
  sub->allow_extras();
  return {sub, [name] {
            spdlog::error("'bloomz {}' is not built yet", name);
            return 2;
          }};
}

}  // namespace bloomz::cli
