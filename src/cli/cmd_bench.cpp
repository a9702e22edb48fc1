// `bloomz bench`: llama-bench's tests on one model. pp N: one batch of N random tokens into an
// empty context; tg N: N single-token decodes from an empty context. One warm-up run, then -r
// timed repetitions, avg ± stddev; plus GB/s of weights streamed and a measured read bandwidth
// (summing a 1 GiB array with the same threads), so a reader can see how close decode is to it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/sampler.hpp"
#include "bloomz/session.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace bloomz::cli {

namespace {

struct BenchOptions {
  std::string prompt_sizes = "512";
  std::string gen_sizes = "128";
  int reps = 5;
  std::string output = "md";
  int64_t batch_size = 512;
  std::string kv_type = "f16";
};

struct TestResult {
  int64_t n_prompt = 0, n_gen = 0;
  std::vector<double> samples_ns;
};

std::vector<int64_t> parse_sizes(const std::string& text, const char* flag) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(part, &used);
      if (used != part.size() || v < 0) throw std::invalid_argument(part);
      if (v > 0) out.push_back(v);
    } catch (const std::exception&) {
      throw Error(ErrorKind::Usage, fmt::format("{}: '{}' is not a list of non-negative integers", flag, text));
    }
  }
  return out;
}

// Reads a 1 GiB array with the same threads, best of 3: the machine's practical read bandwidth.
double read_bandwidth_gbps() {
  const size_t n = (size_t(1) << 30) / sizeof(double);
  std::vector<double> a(n, 1.0);
  const int nt = num_threads();
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<double> partial(static_cast<size_t>(nt), 0.0);
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, nt, [&](int64_t t) {
      const size_t begin = n / static_cast<size_t>(nt) * static_cast<size_t>(t);
      const size_t end = t + 1 == nt ? n : n / static_cast<size_t>(nt) * static_cast<size_t>(t + 1);
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = begin; i + 3 < end; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
      }
      partial[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (std::accumulate(partial.begin(), partial.end(), 0.0) < 0) spdlog::error("impossible sum");
    best = std::max(best, static_cast<double>(n * sizeof(double)) / s / 1e9);
  }
  return best;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

std::string human_size(int64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }
std::string human_params(int64_t n) { return n >= 1000000000 ? fmt::format("{:.2f} B", n / 1e9) : fmt::format("{:.2f} M", n / 1e6); }

int run_bench(const BenchOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  if (opt.reps < 1) throw Error(ErrorKind::Usage, "-r/--repetitions must be at least 1");
  const auto pps = parse_sizes(opt.prompt_sizes, "-p/--n-prompt");
  const auto tgs = parse_sizes(opt.gen_sizes, "-n/--n-gen");
  const std::string path = resolve_model_path(common);
  auto model = Model::load(path, load_options(common, true));
  const BloomConfig& c = model->config();
  int64_t model_size = 0;
  for (const auto& t : model->gguf().tensors()) model_size += static_cast<int64_t>(t.n_bytes);
  const int64_t wbytes = model->weight_bytes_per_token();
  const std::string model_type = fmt::format("bloom {} {}", human_params(model->n_params()),
                                             c.file_type ? file_type_name(*c.file_type) : "unknown");
  const KvType kv = opt.kv_type == "f32" ? KvType::F32 : KvType::F16;
  Rng rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.n_vocab));
    return t;
  };

  std::vector<TestResult> results;
  for (int64_t n : pps) results.push_back({n, 0, {}});
  for (int64_t n : tgs) results.push_back({0, n, {}});
  for (TestResult& r : results) {
    const int64_t need = r.n_prompt + r.n_gen;
    if (need > c.n_ctx_train) throw Error(ErrorKind::Usage, fmt::format("test of {} tokens exceeds the model's context of {}", need, c.n_ctx_train));
    Session s(*model, {.n_ctx = std::max<int64_t>(need, 1), .n_batch = opt.batch_size, .kv_type = kv});
    for (int rep = -1; rep < opt.reps; ++rep) {  // rep -1 is the warm-up
      s.reset();
      const auto tokens = random_tokens(std::max(r.n_prompt, r.n_gen));
      const auto t0 = std::chrono::steady_clock::now();
      if (r.n_prompt > 0) {
        s.eval(tokens, LogitsMode::Last);
      } else {
        for (int64_t i = 0; i < r.n_gen; ++i) s.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1), LogitsMode::Last);
      }
      const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      if (rep >= 0) r.samples_ns.push_back(ns);
    }
    spdlog::debug("{}{}: done", r.n_prompt ? "pp" : "tg", r.n_prompt ? r.n_prompt : r.n_gen);
  }
  const double bw = read_bandwidth_gbps();
  const std::string isa(isa_name(active_isa()));
  const std::string filename = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);

  auto record = [&](const TestResult& r) {
    const int64_t n = r.n_prompt + r.n_gen;
    std::vector<double> ts;
    for (double ns : r.samples_ns) ts.push_back(1e9 * static_cast<double>(n) / ns);
    // Weights are read once per forward call: once per batch for pp, once per token for tg.
    const int64_t calls = r.n_prompt > 0 ? (r.n_prompt + opt.batch_size - 1) / opt.batch_size : r.n_gen;
    const double gbps = static_cast<double>(wbytes) * static_cast<double>(calls) / mean(r.samples_ns);
    nlohmann::json j = {{"model_filename", filename}, {"model_type", model_type}, {"model_size", model_size},
                        {"model_n_params", model->n_params()}, {"n_threads", num_threads()}, {"n_batch", opt.batch_size},
                        {"type_k", opt.kv_type}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen},
                        {"avg_ns", static_cast<int64_t>(mean(r.samples_ns))}, {"stddev_ns", static_cast<int64_t>(stddev(r.samples_ns))},
                        {"avg_ts", mean(ts)}, {"stddev_ts", stddev(ts)}, {"samples_ns", r.samples_ns}, {"samples_ts", ts},
                        {"isa", isa}, {"weight_bytes_per_token", wbytes}, {"gbps", gbps}, {"read_bw_gbps", bw}};
    return j;
  };

  std::string out;
  if (opt.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : results) arr.push_back(record(r));
    out = arr.dump(2) + "\n";
  } else if (opt.output == "jsonl") {
    for (const auto& r : results) out += record(r).dump() + "\n";
  } else if (opt.output == "csv") {
    const std::vector<std::string> cols = {"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_batch",
                                           "type_k", "n_prompt", "n_gen", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "isa",
                                           "weight_bytes_per_token", "gbps", "read_bw_gbps"};
    out += fmt::format("{}\n", fmt::join(cols, ","));
    for (const auto& r : results) {
      const auto j = record(r);
      std::vector<std::string> cells;
      for (const auto& k : cols) cells.push_back(j[k].is_string() ? "\"" + j[k].get<std::string>() + "\"" : j[k].dump());
      out += fmt::format("{}\n", fmt::join(cells, ","));
    }
  } else {
    out += "| model | size | params | backend | threads | test | t/s | GB/s |\n";
    out += "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n";
    for (const auto& r : results) {
      const auto j = record(r);
      const std::string test = r.n_prompt > 0 ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
      out += fmt::format("| {} | {} | {} | CPU {} | {} | {} | {:.2f} ± {:.2f} | {:.1f} |\n", model_type, human_size(model_size),
                         human_params(model->n_params()), isa, num_threads(), test, j["avg_ts"].get<double>(),
                         j["stddev_ts"].get<double>(), j["gbps"].get<double>());
    }
    out += fmt::format("\nread bandwidth: {:.1f} GB/s (sum of a 1 GiB array, {} threads)\n", bw, num_threads());
  }
  write_stdout(out);
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* sub = root.add_subcommand("bench", "Prompt (pp) and generation (tg) tokens/s, like llama-bench");
  sub->add_option("-p,--n-prompt", opt->prompt_sizes, "Prompt sizes, comma-separated (0 = none)");
  sub->add_option("-n,--n-gen", opt->gen_sizes, "Generation lengths, comma-separated (0 = none)");
  sub->add_option("-r,--repetitions", opt->reps, "Timed repetitions after one warm-up")->check(CLI::Range(1, 1000));
  sub->add_option("-o,--output", opt->output, "md|csv|json|jsonl")->check(CLI::IsMember({"md", "csv", "json", "jsonl"}));
  sub->add_option("-b,--batch-size", opt->batch_size, "Prompt tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  sub->add_option("--kv-type", opt->kv_type, "KV cache precision")->check(CLI::IsMember({"f16", "f32"}));
  return {sub, [opt, &common] { return run_bench(*opt, common); }};
}

}  // namespace bloomz::cli
