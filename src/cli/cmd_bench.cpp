// `bloomz bench`: llama-bench's tests on one model. pp N: one batch of N random tokens; tg N: N
// single-token decodes. With -d D (llama-bench's depth) each test starts after D random tokens are
// already in the KV cache: they are evaluated once per depth (not timed) and every repetition
// truncates the cache back to them, as llama-bench restores its saved depth state. One warm-up
// run, then -r timed repetitions (with --interleave the tests take turns run by run, every depth's
// session kept alive, so that a drifting memory bandwidth touches them alike), avg ± stddev; plus
// GB/s of weights and KV cache streamed, the read bandwidth measured right after each timed run
// (summing a 1 GiB array with the same threads) and the fraction of it the test reached, so a
// reader can see how close decode is to the memory roof.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <memory>
#include <numeric>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/huge_pages.hpp"
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
  std::string depths = "0";
  int reps = 5;
  std::string output = "md";
  int64_t batch_size = 512;
  std::string kv_type = "f16";
  bool interleave = false;
};

struct TestResult {
  int64_t n_prompt = 0, n_gen = 0, n_depth = 0;
  std::vector<double> samples_ns;
  std::vector<double> read_gbps;  // the read probe right after each timed run
  std::vector<double> token_ns;   // tg: every token of the timed runs, in order
  int64_t n_kv = 0;  // positions the KV cache held after the last timed run (read from the session)
  // KV-cache rows attention read in each timed run (Session::kv_rows_read: a head's key and value
  // at one position; the rows of one pp batch count once per call; ALiBi's skipped keys not at all)
  std::vector<int64_t> kv_rows;
};

// A comma list of non-negative integers; zeros are dropped unless keep_zero (0 = no test for -p/-n,
// but an empty cache for -d).
std::vector<int64_t> parse_sizes(const std::string& text, const char* flag, bool keep_zero = false) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (true) {  // every comma-separated part, empty ones included ("3," and "" are errors)
    const size_t comma = text.find(',', at);
    const std::string part = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    try {
      size_t used = 0;
      const long long v = std::stoll(part, &used);
      if (used != part.size() || v < 0 || v > (int64_t(1) << 40)) throw std::invalid_argument(part);
      if (v > 0 || keep_zero) out.push_back(v);
    } catch (const std::exception&) {
      throw Error(ErrorKind::Usage, fmt::format("{}: '{}' is not a list of non-negative integers", flag, text));
    }
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// The read bandwidth probe: the median of three passes summing a 1 GiB array with the bench's
// threads, GB/s. It runs right after every timed run, so each test's GB/s is set against the
// bandwidth of the same moment (this machine's bandwidth drifts by 30 % within minutes). One pass
// takes 20-40 ms, and this host stops a busy two-thread guest for 100 ms at a time, most often
// right after a long busy stretch such as a timed run: a single pass then measured the stall
// (560m Q8_0: a median probe of 15.9 GB/s beside a 42.5 GB/s decode). The median of three passes
// ignores one such pass; the fastest of three, also tried, took the best moment of a host whose
// bandwidth swings within seconds (docs/performance.md § 3.7). The array is allocated once, on
// huge pages (filling 1 GiB of 4 KiB pages costs seconds on a VM).
class ReadProbe {
 public:
  static constexpr int kPasses = 3;
  ReadProbe() : a_((size_t(1) << 30) / sizeof(double), 1.0) {}
  // One pass, untimed use: the first pass maps the array's pages.
  void warm_up() { one_pass(); }
  double gbps() {
    std::vector<double> passes;
    for (int pass = 0; pass < kPasses; ++pass) passes.push_back(one_pass());
    std::sort(passes.begin(), passes.end());
    return passes[kPasses / 2];
  }

 private:
  double one_pass() {
    const size_t n = a_.size();
    const int nt = num_threads();
    std::vector<double> partial(static_cast<size_t>(nt), 0.0);
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, nt, [&](int64_t t) {
      const size_t begin = n / static_cast<size_t>(nt) * static_cast<size_t>(t);
      const size_t end = t + 1 == nt ? n : n / static_cast<size_t>(nt) * static_cast<size_t>(t + 1);
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = begin; i + 3 < end; i += 4) {
        s0 += a_[i];
        s1 += a_[i + 1];
        s2 += a_[i + 2];
        s3 += a_[i + 3];
      }
      partial[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (std::accumulate(partial.begin(), partial.end(), 0.0) < 0) spdlog::error("impossible sum");
    return static_cast<double>(n * sizeof(double)) / s / 1e9;
  }

  HugeVector<double> a_;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Tokens that took over twice the median token of a tg test, and their time beyond the median as
// a share of all the tokens' time: on a shared VM whose host throttles it (here two busy threads
// lose 100 ms at a time, 2-15 % of a run; one thread never), these stalls, not the decoder, set
// the spread of tg runs.
struct Stalls {
  double median_ns = 0;
  int64_t tokens = 0;
  double fraction = 0;
};
Stalls token_stalls(const std::vector<double>& token_ns) {
  Stalls st;
  st.median_ns = median(token_ns);
  double extra = 0, total = 0;
  for (double t : token_ns) {
    total += t;
    if (t <= 2 * st.median_ns) continue;
    ++st.tokens;
    extra += t - st.median_ns;
  }
  st.fraction = total > 0 ? extra / total : 0.0;
  return st;
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

// llama-bench's test name: pp512, tg128, and " @ d1920" when the test runs at a depth.
std::string test_name(const TestResult& r) {
  std::string name = r.n_prompt > 0 ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
  if (r.n_depth > 0) name += fmt::format(" @ d{}", r.n_depth);
  return name;
}

// Forward calls of one run: the weights are read once per call (once per batch for pp, once per
// token for tg).
int64_t forward_calls(const TestResult& r, int64_t n_batch) {
  return r.n_prompt > 0 ? (r.n_prompt + n_batch - 1) / n_batch : r.n_gen;
}

int run_bench(const BenchOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  if (opt.reps < 1) throw Error(ErrorKind::Usage, "-r/--repetitions must be at least 1");
  const auto pps = parse_sizes(opt.prompt_sizes, "-p/--n-prompt");
  const auto tgs = parse_sizes(opt.gen_sizes, "-n/--n-gen");
  const auto depths = parse_sizes(opt.depths, "-d/--n-depth", true);
  const std::string path = resolve_model_path(common);
  auto model = Model::load(path, load_options(common, true));
  const BloomConfig& c = model->config();
  int64_t model_size = 0;
  for (const auto& t : model->gguf().tensors()) model_size += static_cast<int64_t>(t.n_bytes);
  const int64_t wbytes = model->weight_bytes_per_token();
  const std::string model_type = fmt::format("bloom {} {}", human_params(model->n_params()),
                                             c.file_type ? file_type_name(*c.file_type) : "unknown");
  const KvType kv = kv_type_from_name(opt.kv_type);
  // Bytes of K and V of one position over all layers: what attention reads per cached position.
  const int64_t kv_head_row_bytes = 2 * kv_row_bytes(kv, c.head_dim());  // a key and a value
  Rng rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.n_vocab));
    return t;
  };

  // llama-bench's order: for each depth, the pp tests, then the tg tests.
  std::vector<TestResult> results;
  for (int64_t d : depths) {
    for (int64_t n : pps) results.push_back({n, 0, d, {}, {}, {}, 0, {}});
    for (int64_t n : tgs) results.push_back({0, n, d, {}, {}, {}, 0, {}});
  }
  for (const TestResult& r : results) {  // every test is checked before any runs
    const int64_t need = r.n_prompt + r.n_gen;
    if (r.n_depth + need <= c.n_ctx_train) continue;
    if (r.n_depth > 0) {
      throw Error(ErrorKind::Usage, fmt::format("-d/--n-depth: depth {} + test of {} tokens exceeds the model's context of {}",
                                                r.n_depth, need, c.n_ctx_train));
    }
    throw Error(ErrorKind::Usage, fmt::format("{}: test of {} tokens exceeds the model's context of {}",
                                              r.n_prompt > 0 ? "-p/--n-prompt" : "-n/--n-gen", need, c.n_ctx_train));
  }

  ReadProbe probe;
  probe.warm_up();
  // One run of test r on session s (whose first n_depth positions hold the depth); rep -1 is the
  // warm-up, untimed.
  auto run_once = [&](TestResult& r, Session& s, int rep) {
    s.truncate(r.n_depth);
    const auto tokens = random_tokens(std::max(r.n_prompt, r.n_gen));
    const int64_t kv_rows0 = s.kv_rows_read();
    const auto t0 = std::chrono::steady_clock::now();
    if (r.n_prompt > 0) {
      s.eval(tokens, LogitsMode::Last);
    } else {
      for (int64_t k = 0; k < r.n_gen; ++k) {
        const auto tk = std::chrono::steady_clock::now();
        s.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(k)], 1), LogitsMode::Last);
        if (rep >= 0) r.token_ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - tk).count());
      }
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    if (rep >= 0) {
      r.samples_ns.push_back(ns);
      r.kv_rows.push_back(s.kv_rows_read() - kv_rows0);
      r.read_gbps.push_back(probe.gbps());
    }
    r.n_kv = s.n_past();
    spdlog::trace("bench: {} {}", test_name(r), rep < 0 ? std::string("warm-up") : fmt::format("run {}", rep + 1));
  };
  // The tests of one depth share a session whose first n_depth positions are filled once, untimed.
  auto depth_session = [&](size_t first, size_t last) {
    const int64_t depth = results[first].n_depth;
    int64_t need = 1;
    for (size_t i = first; i < last; ++i) need = std::max(need, results[i].n_prompt + results[i].n_gen);
    auto s = std::make_unique<Session>(*model, SessionOptions{.n_ctx = depth + need, .n_batch = opt.batch_size, .kv_type = kv});
    if (depth > 0) {
      const auto t0 = std::chrono::steady_clock::now();
      s->eval(random_tokens(depth), LogitsMode::None);
      spdlog::info("depth {}: {} tokens in the KV cache in {:.2f} s (not timed)", depth, s->n_past(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return s;
  };
  std::vector<std::unique_ptr<Session>> kept;  // --interleave: every depth's session, alive to the end
  std::vector<Session*> of_test(results.size());
  for (size_t first = 0; first < results.size();) {
    size_t last = first;
    while (last < results.size() && results[last].n_depth == results[first].n_depth) ++last;
    auto s = depth_session(first, last);
    if (!opt.interleave) {  // llama-bench's order: each test's runs in a row, one depth at a time
      for (size_t i = first; i < last; ++i)
        for (int rep = -1; rep < opt.reps; ++rep) run_once(results[i], *s, rep);
    } else {
      for (size_t i = first; i < last; ++i) of_test[i] = s.get();
      kept.push_back(std::move(s));
    }
    first = last;
  }
  if (opt.interleave) {  // the tests take turns, one run each
    for (int rep = -1; rep < opt.reps; ++rep)
      for (size_t i = 0; i < results.size(); ++i) run_once(results[i], *of_test[i], rep);
  }
  for (const TestResult& r : results) spdlog::debug("{}: done, the KV cache held positions 0..{}", test_name(r), r.n_kv - 1);
  std::vector<double> all_reads;
  for (const TestResult& r : results) all_reads.insert(all_reads.end(), r.read_gbps.begin(), r.read_gbps.end());
  if (all_reads.empty()) all_reads.push_back(probe.gbps());  // no tests (-p 0 -n 0): the probe alone
  const double bw = median(all_reads);
  const std::string isa(isa_name(active_isa()));
  const std::string filename = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);

  auto record = [&](const TestResult& r) {
    const int64_t n = r.n_prompt + r.n_gen;
    std::vector<double> ts;
    for (double ns : r.samples_ns) ts.push_back(1e9 * static_cast<double>(n) / ns);
    double kv_rows = 0;
    for (int64_t k : r.kv_rows) kv_rows += static_cast<double>(k);
    const auto kv_bytes = static_cast<int64_t>(kv_rows / static_cast<double>(std::max<size_t>(1, r.kv_rows.size())) * static_cast<double>(kv_head_row_bytes));
    const int64_t bytes = wbytes * forward_calls(r, opt.batch_size) + kv_bytes;
    const double gbps = static_cast<double>(bytes) / mean(r.samples_ns);
    nlohmann::json j = {{"model_filename", filename}, {"model_type", model_type}, {"model_size", model_size},
                        {"model_n_params", model->n_params()}, {"n_threads", num_threads()}, {"n_batch", opt.batch_size},
                        {"type_k", opt.kv_type}, {"type_v", opt.kv_type}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen},
                        {"n_depth", r.n_depth}, {"avg_ns", static_cast<int64_t>(mean(r.samples_ns))},
                        {"stddev_ns", static_cast<int64_t>(stddev(r.samples_ns))}, {"avg_ts", mean(ts)}, {"stddev_ts", stddev(ts)},
                        {"samples_ns", r.samples_ns}, {"samples_ts", ts}, {"isa", isa}, {"weight_bytes_per_token", wbytes},
                        {"kv_bytes_per_run", kv_bytes}, {"n_kv", r.n_kv}, {"gbps", gbps}, {"read_bw_gbps", median(r.read_gbps)},
                        {"read_fraction", gbps / median(r.read_gbps)}, {"samples_read_bw_gbps", r.read_gbps}};
    if (r.n_gen > 0) {  // the stalls of a tg test (see token_stalls)
      const Stalls st = token_stalls(r.token_ns);
      j["median_token_ns"] = st.median_ns;
      j["stalled_tokens"] = st.tokens;
      j["stall_fraction"] = st.fraction;
      j["samples_token_ns"] = r.token_ns;
    }
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
                                           "type_k", "type_v", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "isa",
                                           "weight_bytes_per_token", "kv_bytes_per_run", "n_kv", "gbps", "read_bw_gbps", "read_fraction"};
    out += fmt::format("{}\n", fmt::join(cols, ","));
    for (const auto& r : results) {
      const auto j = record(r);
      std::vector<std::string> cells;
      for (const auto& k : cols) cells.push_back(j[k].is_string() ? "\"" + j[k].get<std::string>() + "\"" : j[k].dump());
      out += fmt::format("{}\n", fmt::join(cells, ","));
    }
  } else {
    out += "| model | size | params | backend | threads | test | t/s | GB/s | read GB/s | of read |\n";
    out += "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& r : results) {
      const auto j = record(r);
      out += fmt::format("| {} | {} | {} | CPU {} | {} | {} | {:.2f} ± {:.2f} | {:.1f} | {:.1f} | {:.2f} |\n", model_type,
                         human_size(model_size), human_params(model->n_params()), isa, num_threads(), test_name(r),
                         j["avg_ts"].get<double>(), j["stddev_ts"].get<double>(), j["gbps"].get<double>(),
                         j["read_bw_gbps"].get<double>(), j["read_fraction"].get<double>());
    }
    out += fmt::format("\nread bandwidth: {:.1f} GB/s (median of the probes after each timed run, each the median of 3 passes summing a 1 GiB array, {} thread{})\n", bw,
                       num_threads(), num_threads() == 1 ? "" : "s");
    for (const auto& r : results) {
      if (r.n_gen == 0) continue;
      const Stalls st = token_stalls(r.token_ns);
      if (st.tokens == 0) continue;
      out += fmt::format("{}: {} of {} tokens took over twice the median token ({:.1f} ms), {:.1f} % of the run's time beyond it (threads descheduled)\n",
                         test_name(r), st.tokens, r.token_ns.size(), st.median_ns / 1e6, 100 * st.fraction);
    }
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
  sub->add_option("-d,--n-depth", opt->depths,
                  "Depths, comma-separated: each test runs after this many tokens are already in the KV cache "
                  "(filled untimed; every -p/-n test runs at every depth)");
  sub->add_option("-r,--repetitions", opt->reps, "Timed repetitions after one warm-up")->check(CLI::Range(1, 1000));
  sub->add_option("-o,--output", opt->output, "md|csv|json|jsonl")->check(CLI::IsMember({"md", "csv", "json", "jsonl"}));
  sub->add_option("-b,--batch-size", opt->batch_size, "Prompt tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  add_kv_type_option(sub, opt->kv_type);
  sub->add_flag("--interleave", opt->interleave,
                "Take the repetitions in turns across all tests (one session per depth kept alive), so that on a "
                "machine whose memory bandwidth drifts every test sees the same phases and ratios between tests "
                "(depth 1920 against 0) mean something");
  sub->footer(
      "Tests run in llama-bench's order (per depth: the pp tests, then the tg tests; with --interleave their "
      "repetitions take turns) and are named like its "
      "('pp512', 'tg128', 'tg128 @ d1920'); JSON rows carry n_depth, and n_kv: the positions the cache held after "
      "the run.\nGB/s: bytes streamed per second of the run: the weights once per forward call (per token for tg, "
      "per batch for pp), plus the KV cache attention reads (K and V of every layer and head up to the current position, less "
      "the keys ALiBi gives a weight of exactly 0, which are not read; once per call for a pp batch).\nExample: bloomz bench -m M.gguf -p 0 -n 128 -d 0,1920 --kv-type q8_0");
  return {sub, [opt, &common] { return run_bench(*opt, common); }};
}

}  // namespace bloomz::cli
