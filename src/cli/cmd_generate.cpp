// `bloomz [gen options]`: generation from one prompt (streamed text or --json), or from many with
// --batch-file (cli/batch_run.hpp). The contract is docs/cli.md.
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fmt/format.h>
#include <limits>
#include <optional>

#include "bloomz/error.hpp"
#include "bloomz/generate.hpp"
#include "bloomz/cpu_features.hpp"
#include "bloomz/model.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/sampler.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/batch_input.hpp"
#include "cli/batch_run.hpp"
#include "cli/commands.hpp"
#include "cli/gen_request.hpp"
#include "cli/output.hpp"
#include "cli/prompt_input.hpp"
#include "cli/result_json.hpp"
#include "cli/signals.hpp"

namespace bloomz::cli {

namespace {

struct GenOptions {
  std::string prompt;
  bool have_prompt = false;
  std::string file;
  int64_t n_predict = 256;
  int64_t ctx_size = 0;
  int64_t batch_size = 512;
  int64_t seed = -1;  // -1: random when sampling
  SamplerParams sampler;
  std::vector<std::string> logit_bias;
  std::vector<std::string> stops;
  bool escape = true;
  bool special = false;
  bool echo = false;
  bool json = false;
  int32_t logprobs = 0;
  BatchOptions batch;
  std::string kv_type = "f16";
  bool no_mmap = false;
  bool mlock = false;
  bool no_parse_special = false;
};

int run_generate(GenOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  // Sampling parameters and flags are checked before the model is loaded.
  for (const std::string& b : opt.logit_bias) opt.sampler.logit_bias.push_back(parse_logit_bias(b));
  validate(opt.sampler);
  const bool batch = !opt.batch.file.empty();
  opt.batch.quiet = common.quiet;
  // The batch input and output are opened (and --resume's scan done) before the model loads.
  std::optional<BatchRun> batch_run;
  if (batch) batch_run.emplace(opt.batch);

  const std::string path = resolve_model_path(common);
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<const Model> model;
  try {
    LoadOptions lo = load_options(common, batch);
    lo.use_mmap = !opt.no_mmap;
    lo.lock = opt.mlock;
    lo.prefault = !batch;  // one prompt: its first forward pass would fault the weight pages in itself
    model = Model::load(path, lo);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Io && common.model.empty()) {
      throw Error(ErrorKind::Io, fmt::format("{} (no model found: download one with tools/download-model.sh, or pass -m MODEL)", e.what()));
    }
    throw;
  }
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  model->stop_prefault();  // it had the tokenizer's time; from here it would compete with the prompt
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("loaded {} in {:.1f} ms ({:.1f} MiB of weights repacked to x8); {} threads, {} kernels", path, load_ms,
                static_cast<double>(model->repacked_bytes()) / (1 << 20), num_threads(), isa_name(active_isa()));

  GenerateRequest req;
  req.n_predict = opt.n_predict;
  req.stops = opt.stops;
  req.sampler = opt.sampler;
  req.sampler.eos_id = tok.eos_id();
  req.logprobs = opt.logprobs;
  req.special = opt.special;
  const SessionOptions so{.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)};

  if (batch) {
    install_stop_handlers({SIGINT, SIGTERM, SIGHUP});
    const BatchDefaults defaults{.req = req,
                                 .seed = opt.seed >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(opt.seed)) : std::nullopt,
                                 .parse_special = !opt.no_parse_special};
    return batch_run->run(*model, tok, defaults, so, load_ms);
  }
  install_stop_handlers({SIGINT});

  std::string prompt;
  if (opt.have_prompt) {
    prompt = opt.escape ? process_escapes(opt.prompt) : opt.prompt;
  } else if (!opt.file.empty()) {
    prompt = read_file_or_stdin(opt.file);
  } else if (!stdin_is_terminal()) {
    prompt = read_file_or_stdin("-");
  } else {
    throw Error(ErrorKind::Usage, "no prompt: give -p TEXT, -f FILE, or pipe text on stdin");
  }
  std::optional<uint64_t> seed;
  if (opt.seed >= 0) seed = static_cast<uint64_t>(opt.seed);
  if (!seed && req.sampler.temp > 0) seed = random_seed();
  req.sampler.seed = seed.value_or(0);
  if (seed) spdlog::info("seed: {}", *seed);

  Session session(*model, so);
  if (session.n_ctx() > model->config().n_ctx_train) {
    spdlog::warn("-c {} exceeds the model's training context of {}: quality may degrade beyond it", session.n_ctx(),
                 model->config().n_ctx_train);
  }
  req.prompt_tokens = prompt_tokens(tok, prompt, !opt.no_parse_special, session.n_ctx());
  if (req.n_predict > 0 && static_cast<int64_t>(req.prompt_tokens.size()) + req.n_predict > session.n_ctx()) {
    spdlog::warn("-n {} with a {}-token prompt exceeds the context of {}: generation stops when it is full",
                 req.n_predict, req.prompt_tokens.size(), session.n_ctx());
  }

  const bool tty = stdout_is_terminal();
  if (opt.echo && !opt.json) write_stdout(prompt);
  GenerateResult r = generate(session, tok, req, [&](std::string_view piece) {
    if (opt.json) return;
    write_stdout(piece);
    if (tty) flush_stdout();
  }, &stop_requested());
  if (const HeadScreen* hs = model->head_screen_if_built(); hs != nullptr && hs->calls() > 0) {
    spdlog::debug("LM head screen: built in {:.1f} ms ({:.1f} MiB); {:.1f} candidate rows per token", hs->build_ms(),
                  static_cast<double>(hs->bytes()) / (1 << 20), static_cast<double>(hs->candidates_total()) / static_cast<double>(hs->calls()));
  }
  if (opt.json) {
    write_stdout(dump(result_json(nullptr, prompt, req, r, tok, seed, load_ms)));
  } else if (tty) {
    write_stdout("\n");
  }
  flush_stdout();
  if (!common.quiet) print_timings(load_ms, r);
  return r.finish_reason == "cancelled" ? 130 : 0;
}

}  // namespace

Command add_generate_options(CLI::App& app, CommonOptions& common) {
  auto opt = std::make_shared<GenOptions>();
  auto* p = app.add_option("-p,--prompt", opt->prompt, "The prompt");
  app.add_option("-f,--file", opt->file, "Prompt from a file ('-' = stdin)")->excludes(p);
  app.add_option("-n,--n-predict", opt->n_predict, "Maximum new tokens; -1 = until EOS or a full context")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  app.add_option("-c,--ctx-size", opt->ctx_size, "Context length in tokens (0 = the model's)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  app.add_option("-b,--batch-size", opt->batch_size, "Prompt tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("-s,--seed", opt->seed, "Seed (default -1: random when sampling)")->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  app.add_option("--temp", opt->sampler.temp, "Temperature; 0 = greedy");
  app.add_option("--top-k", opt->sampler.top_k, "Top-k (0 = off)");
  app.add_option("--top-p", opt->sampler.top_p, "Top-p (1 = off)");
  app.add_option("--min-p", opt->sampler.min_p, "Min-p (0 = off)");
  app.add_option("--typical", opt->sampler.typical_p, "Locally typical sampling (1 = off)");
  app.add_option("--repeat-penalty", opt->sampler.repeat_penalty, "Repetition penalty (1 = off)");
  app.add_option("--repeat-last-n", opt->sampler.repeat_last_n, "Tokens the penalties look back over (-1 = all)");
  app.add_option("--presence-penalty", opt->sampler.presence_penalty, "Presence penalty");
  app.add_option("--frequency-penalty", opt->sampler.frequency_penalty, "Frequency penalty");
  app.add_option("-l,--logit-bias", opt->logit_bias, "ID(+/-)X, repeatable");
  app.add_flag("--ignore-eos", opt->sampler.ignore_eos, "Do not stop at </s>");
  app.add_option("-r,--stop", opt->stops, "Stop when the output contains TEXT (repeatable; not printed)");
  // Bound to a bool (not a counting function) and taking no value: CLI11 2.1 converts a value given
  // to a counting or negated flag (--escape=abc, --no-escape=99999999999999999999) with std::stoll
  // and lets its exceptions escape parse() (found by fuzz_cli); with the override disabled any
  // value is a ParseError naming the flag.
  app.add_flag("-e,--escape,!--no-escape", opt->escape, "Process \\n \\t \\' \\\" \\\\ in -p (default on; the last one given wins)")
      ->disable_flag_override();
  app.add_flag("--special", opt->special, "Print special tokens such as </s>");
  app.add_flag("--echo", opt->echo, "Print the prompt before the answer");
  app.add_flag("--json", opt->json, "One JSON object instead of streamed text");
  app.add_option("--logprobs", opt->logprobs, "With --json: top-N log-probabilities per step")->check(CLI::Range(0, 1000));
  auto* batch = app.add_option("--batch-file", opt->batch.file, "Many prompts: JSON Lines or plain lines ('-' = stdin)");
  app.add_option("--parallel", opt->batch.parallel, "With --batch-file: decode up to N sequences together")->check(CLI::Range(int64_t(1), int64_t(256)));
  auto* output = app.add_option("--output", opt->batch.output, "With --batch-file: write the result lines to FILE, each whole, as items finish")
                     ->needs(batch);
  app.add_flag("--resume", opt->batch.resume, "With --output: skip the input lines FILE already answers, append the rest")->needs(output);
  app.add_option("--shard", opt->batch.shard, "With --batch-file: take only the input lines with index % N == I")
      ->check(CLI::Validator(
          [](std::string& v) { return parse_shard(v) ? std::string() : "expected I/N with 0 <= I < N, got '" + v + "'"; }, "I/N"))
      ->needs(batch);
  app.add_option("--progress", opt->batch.progress_s, "With --batch-file: a progress line on stderr every N seconds")
      ->check(CLI::Validator(
          [](std::string& v) {
            char* end = nullptr;
            const double s = std::strtod(v.c_str(), &end);
            return !v.empty() && *end == '\0' && s > 0 && s <= 1e6 ? std::string() : "expected seconds > 0, got '" + v + "'";
          },
          "SECONDS"))
      ->needs(batch);
  add_kv_type_option(&app, opt->kv_type);
  app.add_flag("--no-mmap", opt->no_mmap, "Read the model into memory instead of mapping it");
  app.add_flag("--mlock", opt->mlock, "Lock the model's pages in memory");
  app.add_flag("--no-parse-special", opt->no_parse_special, "Keep special-token text (</s>) as plain text");
  return {nullptr, [opt, p, &common] {
            opt->have_prompt = p->count() > 0;
            return run_generate(*opt, common);
          }};
}

}  // namespace bloomz::cli
