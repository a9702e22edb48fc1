// `bloomz [gen options]`: generation from one prompt (streamed text or --json), or from many with
// --batch-file (one JSON object per input line, in input order). The contract is docs/cli.md.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <exception>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <limits>
#include <random>
#include <unistd.h>
#include <sstream>

#include "bloomz/error.hpp"
#include "bloomz/generate.hpp"
#include "bloomz/cpu_features.hpp"
#include "bloomz/model.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/sampler.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/prompt_input.hpp"

namespace bloomz::cli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

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
  std::string batch_file;
  int64_t parallel = 1;
  std::string kv_type = "f16";
  bool no_mmap = false;
  bool mlock = false;
  bool no_parse_special = false;
};

nlohmann::json logprobs_json(const Tokenizer& tok, const std::vector<StepLogprobs>& steps) {
  nlohmann::json arr = nlohmann::json::array();
  for (const StepLogprobs& s : steps) {
    nlohmann::json top = nlohmann::json::array();
    for (const TokenLogprob& t : s.top) top.push_back({{"id", t.id}, {"token", tok.token_to_piece(t.id, true)}, {"logprob", t.logprob}});
    arr.push_back({{"id", s.chosen.id}, {"token", tok.token_to_piece(s.chosen.id, true)}, {"logprob", s.chosen.logprob}, {"top", top}});
  }
  return arr;
}

double tps(int64_t n, double ms) { return ms > 0 ? 1000.0 * static_cast<double>(n) / ms : 0.0; }

nlohmann::json result_json(const nlohmann::json& id, const std::string& prompt, const GenerateRequest& req,
                           const GenerateResult& r, const Tokenizer& tok, std::optional<uint64_t> seed, double load_ms) {
  nlohmann::json j;
  j["id"] = id;
  j["prompt"] = prompt;
  j["prompt_tokens"] = req.prompt_tokens;
  j["text"] = r.text;
  j["tokens"] = r.tokens;
  j["finish_reason"] = r.finish_reason;
  j["seed"] = seed ? nlohmann::json(*seed) : nlohmann::json(nullptr);
  if (req.logprobs > 0) j["logprobs"] = logprobs_json(tok, r.logprobs);
  j["timings"] = {{"load_ms", load_ms},       {"prompt_n", r.prompt_n}, {"prompt_ms", r.prompt_ms},
                  {"prompt_tps", tps(r.prompt_n, r.prompt_ms)}, {"gen_n", r.gen_n}, {"gen_ms", r.gen_ms},
                  {"gen_tps", tps(r.gen_n, r.gen_ms)}};
  return j;
}

std::string dump(const nlohmann::json& j) {
  // Text in JSON is valid UTF-8: invalid byte sequences become U+FFFD (cli.md).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void print_timings(double load_ms, const GenerateResult& r) {
  fmt::print(stderr, "bloomz: load time        = {:9.2f} ms\n", load_ms);
  fmt::print(stderr, "bloomz: prompt eval time = {:9.2f} ms / {:5} tokens ({:8.2f} ms per token, {:8.2f} tokens per second)\n",
               r.prompt_ms, r.prompt_n, r.prompt_n ? r.prompt_ms / static_cast<double>(r.prompt_n) : 0.0, tps(r.prompt_n, r.prompt_ms));
  fmt::print(stderr, "bloomz:        eval time = {:9.2f} ms / {:5} runs   ({:8.2f} ms per token, {:8.2f} tokens per second)\n",
               r.gen_ms, r.gen_n, r.gen_n ? r.gen_ms / static_cast<double>(r.gen_n) : 0.0, tps(r.gen_n, r.gen_ms));
  fmt::print(stderr, "bloomz:       total time = {:9.2f} ms / {:5} tokens\n", load_ms + r.prompt_ms + r.gen_ms, r.prompt_n + r.gen_n);
}

// Tokenizes a prompt and checks it against the context; throws Error(Runtime) with both numbers.
std::vector<int32_t> prompt_tokens(const Tokenizer& tok, const std::string& prompt, bool parse_special, int64_t n_ctx) {
  if (prompt.empty()) throw Error(ErrorKind::Runtime, "the prompt is empty (give -p TEXT, -f FILE or text on stdin)");
  std::vector<int32_t> ids = tok.encode(prompt, parse_special);
  if (ids.empty()) throw Error(ErrorKind::Runtime, "the prompt has no tokens");
  if (static_cast<int64_t>(ids.size()) > n_ctx) {
    throw Error(ErrorKind::Runtime, fmt::format("the prompt has {} tokens, more than the context of {} (-c/--ctx-size)", ids.size(), n_ctx));
  }
  return ids;
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Per-item overrides of --batch-file: the long flag names with '_' for '-'.
void apply_overrides(const nlohmann::json& item, GenerateRequest& req, std::optional<uint64_t>& seed) {
  static const std::vector<std::string> known = {"id", "prompt", "n_predict", "temp", "top_k", "top_p", "min_p", "typical",
                                                 "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty",
                                                 "seed", "stop", "ignore_eos", "logprobs"};
  for (const auto& [key, value] : item.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) throw Error(ErrorKind::Usage, fmt::format("unknown key '{}'", key));
  }
  SamplerParams& s = req.sampler;
  if (item.contains("n_predict")) req.n_predict = item["n_predict"].get<int64_t>();
  if (item.contains("temp")) s.temp = item["temp"].get<float>();
  if (item.contains("top_k")) s.top_k = item["top_k"].get<int32_t>();
  if (item.contains("top_p")) s.top_p = item["top_p"].get<float>();
  if (item.contains("min_p")) s.min_p = item["min_p"].get<float>();
  if (item.contains("typical")) s.typical_p = item["typical"].get<float>();
  if (item.contains("repeat_penalty")) s.repeat_penalty = item["repeat_penalty"].get<float>();
  if (item.contains("repeat_last_n")) s.repeat_last_n = item["repeat_last_n"].get<int32_t>();
  if (item.contains("presence_penalty")) s.presence_penalty = item["presence_penalty"].get<float>();
  if (item.contains("frequency_penalty")) s.frequency_penalty = item["frequency_penalty"].get<float>();
  if (item.contains("ignore_eos")) s.ignore_eos = item["ignore_eos"].get<bool>();
  if (item.contains("logprobs")) req.logprobs = item["logprobs"].get<int32_t>();
  if (item.contains("seed")) seed = item["seed"].get<uint64_t>();
  if (item.contains("stop")) {
    const auto& st = item["stop"];
    req.stops = st.is_string() ? std::vector<std::string>{st.get<std::string>()} : st.get<std::vector<std::string>>();
  }
  validate(s);
  if (req.n_predict < -1) throw Error(ErrorKind::Usage, "n_predict must be >= -1");
  if (req.logprobs < 0) throw Error(ErrorKind::Usage, "logprobs must be >= 0");
}

// One input line of --batch-file, parsed: the request or the error to report for it.
struct BatchItem {
  nlohmann::json id = nullptr;
  std::string prompt;
  GenerateRequest req;
  std::optional<uint64_t> seed;
  std::string error;
};

BatchItem parse_batch_line(const std::string& line, int64_t line_no, const GenOptions& opt, const Tokenizer& tok,
                           const GenerateRequest& base, std::optional<uint64_t> base_seed, int64_t n_ctx) {
  BatchItem it;
  it.req = base;
  it.seed = base_seed;
  try {
    if (line.front() == '{') {
      nlohmann::json item;
      try {
        item = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Usage, fmt::format("line {}: not valid JSON ({})", line_no, e.what()));
      }
      if (item.contains("id")) it.id = item["id"];
      if (!item.contains("prompt") || !item["prompt"].is_string()) throw Error(ErrorKind::Usage, fmt::format("line {}: missing string \"prompt\"", line_no));
      it.prompt = item["prompt"].get<std::string>();
      try {
        apply_overrides(item, it.req, it.seed);
      } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::Usage, fmt::format("line {}: bad value ({})", line_no, e.what()));
      }
    } else {
      it.prompt = process_escapes(line);
    }
    if (!it.seed && it.req.sampler.temp > 0) it.seed = random_seed();
    it.req.sampler.seed = it.seed.value_or(0);
    it.req.prompt_tokens = prompt_tokens(tok, it.prompt, !opt.no_parse_special, n_ctx);
  } catch (const Error& e) {
    it.error = e.what();
  }
  return it;
}

// --batch-file with up to --parallel sequences decoded together. Every item runs through the
// same Generation state machine as a single prompt; a slot's prompt is evaluated alone, then the
// active slots' next tokens go through one forward pass. Results are written in input order.
int run_batch(const GenOptions& opt, const Model& model, const Tokenizer& tok, const GenerateRequest& base,
              std::optional<uint64_t> base_seed, double load_ms) {
  const std::string input = read_file_or_stdin(opt.batch_file);
  std::vector<std::pair<int64_t, std::string>> lines;
  {
    std::istringstream ss(input);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(ss, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) lines.emplace_back(line_no, std::move(line));
    }
  }
  const SessionOptions so{.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = opt.kv_type == "f32" ? KvType::F32 : KvType::F16};
  struct Slot {
    std::unique_ptr<Session> session;
    std::optional<BatchItem> item;
    std::unique_ptr<Generation> gen;
    size_t index = 0;
    int32_t next = 0;
    double prompt_ms = 0;
    std::chrono::steady_clock::time_point gen_start;
  };
  const size_t n_slots = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(opt.parallel, static_cast<int64_t>(lines.size()))));
  std::vector<Slot> slots(n_slots);
  std::vector<std::optional<std::string>> outputs(lines.size());
  size_t next_line = 0, next_print = 0;
  int64_t failures = 0, done = 0;
  const bool progress = ::isatty(2) == 1;
  bool cancelled = false;

  auto complete = [&](size_t index, std::string json_line, bool failed) {
    outputs[index] = std::move(json_line);
    failures += failed;
    ++done;
    while (next_print < outputs.size() && outputs[next_print]) {
      write_stdout(*outputs[next_print]);
      outputs[next_print].reset();
      ++next_print;
    }
    flush_stdout();
    if (progress) fmt::print(stderr, "\rbloomz: {}/{} items done, {} failed", done, lines.size(), failures);
  };
  auto finish_slot = [&](Slot& s) {
    GenerateResult& r = s.gen->finish();
    r.prompt_ms = s.prompt_ms;
    r.prompt_n = static_cast<int64_t>(s.item->req.prompt_tokens.size());
    r.gen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s.gen_start).count();
    complete(s.index, dump(result_json(s.item->id, s.item->prompt, s.item->req, r, tok, s.item->seed, load_ms)), false);
    if (r.finish_reason == "cancelled") cancelled = true;
    s.gen.reset();
    s.item.reset();
  };

  while (true) {
    // Fill free slots: evaluate each new prompt alone and take its first step.
    for (Slot& s : slots) {
      while (!s.gen && next_line < lines.size() && !g_interrupted.load()) {
        const size_t index = next_line++;
        if (!s.session) s.session = std::make_unique<Session>(model, so);
        BatchItem item = parse_batch_line(lines[index].second, lines[index].first, opt, tok, base, base_seed, s.session->n_ctx());
        if (!item.error.empty()) {
          spdlog::warn("item {}: {}", lines[index].first, item.error);
          complete(index, dump({{"id", item.id}, {"error", item.error}}), true);
          continue;
        }
        s.index = index;
        s.item = std::move(item);
        s.session->reset();
        s.gen = std::make_unique<Generation>(tok, s.item->req, [](std::string_view) {});
        const auto t0 = std::chrono::steady_clock::now();
        std::span<const float> logits = s.session->eval(s.item->req.prompt_tokens, LogitsMode::Last);
        s.prompt_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        s.gen_start = std::chrono::steady_clock::now();
        const std::optional<int32_t> next = s.gen->step(logits, s.session->n_past(), s.session->n_ctx());
        if (next) {
          s.next = *next;
        } else {
          finish_slot(s);
        }
      }
    }
    std::vector<Session*> active;
    std::vector<int32_t> tokens;
    std::vector<Slot*> active_slots;
    for (Slot& s : slots) {
      if (!s.gen) continue;
      if (g_interrupted.load()) {
        s.gen->cancel();
        finish_slot(s);
        continue;
      }
      active.push_back(s.session.get());
      tokens.push_back(s.next);
      active_slots.push_back(&s);
    }
    if (active.empty()) break;
    // One pass over the weights serves every active sequence.
    std::span<const float> logits = Session::eval_together(active, tokens);
    const size_t V = static_cast<size_t>(model.config().n_vocab);
    // The sequences' sampling steps are independent: one per task. Errors are raised in slot order.
    const size_t n_active = active_slots.size();
    std::vector<std::optional<int32_t>> nexts(n_active);
    std::vector<std::exception_ptr> errors(n_active);
    parallel_for(0, static_cast<int64_t>(n_active), [&](int64_t j) {
      const auto i = static_cast<size_t>(j);
      Slot& s = *active_slots[i];
      try {
        nexts[i] = s.gen->step(logits.subspan(i * V, V), s.session->n_past(), s.session->n_ctx());
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
    for (size_t i = 0; i < n_active; ++i) {
      if (errors[i]) std::rethrow_exception(errors[i]);
    }
    for (size_t i = 0; i < n_active; ++i) {
      Slot& s = *active_slots[i];
      const std::optional<int32_t>& next = nexts[i];
      if (next) {
        s.next = *next;
      } else {
        finish_slot(s);
      }
    }
  }
  if (progress) fmt::print(stderr, "\n");
  if (cancelled || g_interrupted.load()) return 130;
  return failures > 0 ? 1 : 0;
}

int run_generate(GenOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  // Sampling parameters and flags are checked before the model is loaded.
  for (const std::string& b : opt.logit_bias) opt.sampler.logit_bias.push_back(parse_logit_bias(b));
  validate(opt.sampler);

  const std::string path = resolve_model_path(common);
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<const Model> model;
  try {
    LoadOptions lo = load_options(common, !opt.batch_file.empty());
    lo.use_mmap = !opt.no_mmap;
    lo.lock = opt.mlock;
    model = Model::load(path, lo);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Io && common.model.empty()) {
      throw Error(ErrorKind::Io, fmt::format("{} (no model found: download one with tools/download-model.sh, or pass -m MODEL)", e.what()));
    }
    throw;
  }
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
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
  std::signal(SIGINT, on_sigint);

  if (!opt.batch_file.empty()) return run_batch(opt, *model, tok, req, opt.seed >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(opt.seed)) : std::nullopt, load_ms);

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

  SessionOptions so{.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = opt.kv_type == "f32" ? KvType::F32 : KvType::F16};
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
  }, &g_interrupted);
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
  app.add_option("--batch-file", opt->batch_file, "Many prompts: JSON Lines or plain lines ('-' = stdin)");
  app.add_option("--parallel", opt->parallel, "With --batch-file: decode up to N sequences together")->check(CLI::Range(int64_t(1), int64_t(256)));
  app.add_option("--kv-type", opt->kv_type, "KV cache precision")->check(CLI::IsMember({"f16", "f32"}));
  app.add_flag("--no-mmap", opt->no_mmap, "Read the model into memory instead of mapping it");
  app.add_flag("--mlock", opt->mlock, "Lock the model's pages in memory");
  app.add_flag("--no-parse-special", opt->no_parse_special, "Keep special-token text (</s>) as plain text");
  return {nullptr, [opt, p, &common] {
            opt->have_prompt = p->count() > 0;
            return run_generate(*opt, common);
          }};
}

}  // namespace bloomz::cli
