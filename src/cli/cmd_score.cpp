// `bloomz score -m M --batch-file FILE.jsonl`: ranks answer choices by log-likelihood. Items are
// either {"id", "prompt", "choices": [...], "label"} (each choice scored after the prompt) or
// {"id", "contexts": [...], "continuation", "label"} (the continuation scored after each context,
// Winograd-style partial scoring). Prompt/context and choice/continuation are tokenized
// separately and concatenated; the KV cache of a shared token prefix is computed once
// (--no-share-prefix evaluates every sequence from scratch). One JSON line per item on stdout,
// the accuracy over labelled items on stderr.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/prompt_input.hpp"
#include "eval.hpp"

namespace bloomz::cli {

namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;  // output keys in the documented order

struct ScoreOptions {
  std::string batch_file, norm = "sum";
  bool no_share = false, no_parse_special = false;
  int64_t ctx_size = 0, batch_size = 512;
  std::string kv_type = "f16";
};

// The timing summary of cli.md (stderr, unless -q): all evaluation here is prompt evaluation.
void print_timings(double load_ms, double eval_ms, int64_t n_eval) {
  const double n = static_cast<double>(n_eval);
  fmt::print(stderr, "bloomz: load time        = {:9.2f} ms\n", load_ms);
  fmt::print(stderr, "bloomz: prompt eval time = {:9.2f} ms / {:5} tokens ({:8.2f} ms per token, {:8.2f} tokens per second)\n",
             eval_ms, n_eval, n_eval ? eval_ms / n : 0.0, eval_ms > 0 ? 1000.0 * n / eval_ms : 0.0);
  fmt::print(stderr, "bloomz:        eval time = {:9.2f} ms / {:5} runs   ({:8.2f} ms per token, {:8.2f} tokens per second)\n", 0.0, 0, 0.0, 0.0);
  fmt::print(stderr, "bloomz:       total time = {:9.2f} ms / {:5} tokens\n", load_ms + eval_ms, n_eval);
}

std::string item_error(const json& id, const std::string& msg) {
  return ojson{{"id", id}, {"error", msg}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

const std::string& string_field(const json& item, const char* key) {
  const auto it = item.find(key);
  if (it == item.end() || !it->is_string()) throw Error(ErrorKind::Runtime, fmt::format("\"{}\" must be a string", key));
  return it->get_ref<const std::string&>();
}

std::vector<std::string> string_list(const json& item, const char* key) {
  const auto it = item.find(key);
  if (it == item.end() || !it->is_array() || it->empty()) {
    throw Error(ErrorKind::Runtime, fmt::format("\"{}\" must be a non-empty list of strings", key));
  }
  std::vector<std::string> out;
  for (const json& v : *it) {
    if (!v.is_string()) throw Error(ErrorKind::Runtime, fmt::format("\"{}\" must be a non-empty list of strings", key));
    out.push_back(v.get<std::string>());
  }
  return out;
}

struct Tally {
  int64_t labelled = 0, correct = 0;
};

// Scores one item and returns its output line.
std::string score_item(const json& item, const json& id, const ScoreOptions& opt, const Tokenizer& tok,
                       eval::ContinuationScorer& scorer, Tally& tally) {
  const bool parse_special = !opt.no_parse_special;
  std::vector<eval::ChoiceScore> scores;
  if (item.contains("choices")) {
    const auto prompt = tok.encode(string_field(item, "prompt"), parse_special);
    for (const std::string& c : string_list(item, "choices")) scores.push_back(scorer.score(prompt, tok.encode(c, parse_special)));
  } else if (item.contains("contexts")) {
    const auto cont = tok.encode(string_field(item, "continuation"), parse_special);
    for (const std::string& c : string_list(item, "contexts")) scores.push_back(scorer.score(tok.encode(c, parse_special), cont));
  } else {
    throw Error(ErrorKind::Runtime, "an item needs \"prompt\" and \"choices\", or \"contexts\" and \"continuation\"");
  }
  const bool by_mean = opt.norm == "mean";
  size_t best = 0;
  ojson out_scores = ojson::array();
  for (size_t i = 0; i < scores.size(); ++i) {
    const auto& s = scores[i];
    out_scores.push_back({{"sum", s.sum}, {"n_tokens", s.n_tokens}, {"mean", s.mean}});
    const double v = by_mean ? s.mean : s.sum, b = by_mean ? scores[best].mean : scores[best].sum;
    if (v > b) best = i;
  }
  ojson out = {{"id", id}, {"scores", out_scores}, {"best", best}};
  if (const auto it = item.find("label"); it != item.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= static_cast<int64_t>(scores.size())) {
      throw Error(ErrorKind::Runtime, fmt::format("\"label\" must be an integer from 0 to {}", scores.size() - 1));
    }
    const bool correct = it->get<int64_t>() == static_cast<int64_t>(best);
    out["correct"] = correct;
    ++tally.labelled;
    tally.correct += correct ? 1 : 0;
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

int run_score(const ScoreOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  if (opt.batch_file.empty()) throw Error(ErrorKind::Usage, "score: give --batch-file FILE.jsonl");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = read_file_or_stdin(opt.batch_file);
  auto model = Model::load(resolve_model_path(common), load_options(common, true));
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  Session s(*model, {.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)});
  eval::ContinuationScorer scorer(s, !opt.no_share);
  const auto t1 = std::chrono::steady_clock::now();

  std::istringstream lines(text);
  std::string line;
  Tally tally;
  int64_t n_items = 0, n_failed = 0, line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++n_items;
    json id = nullptr;
    try {
      json item;
      try {
        item = json::parse(line);
      } catch (const json::parse_error& e) {
        throw Error(ErrorKind::Runtime, fmt::format("invalid JSON: {}", e.what()));
      }
      if (!item.is_object()) throw Error(ErrorKind::Runtime, "not a JSON object");
      if (item.contains("id")) id = item["id"];
      write_stdout(score_item(item, id, opt, tok, scorer, tally));
    } catch (const Error& e) {
      ++n_failed;
      spdlog::error("{}: line {}: {}", opt.batch_file, line_no, e.what());
      write_stdout(item_error(id, e.what()));
    }
  }
  flush_stdout();
  const auto t2 = std::chrono::steady_clock::now();
  const double load_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double eval_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  if (tally.labelled > 0) {
    spdlog::info("accuracy = {:.4f} ({}/{} labelled items)", static_cast<double>(tally.correct) / static_cast<double>(tally.labelled),
                 tally.correct, tally.labelled);
  }
  spdlog::info("score: {} items ({} failed), prefix sharing {}, {} tokens evaluated", n_items, n_failed,
               opt.no_share ? "off" : "on", scorer.tokens_evaluated());
  if (!common.quiet) print_timings(load_ms, eval_ms, scorer.tokens_evaluated());
  return n_failed > 0 ? 1 : 0;
}

}  // namespace

Command add_score_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<ScoreOptions>();
  CLI::App* sub = root.add_subcommand("score", "Log-likelihood of answer choices (JSON Lines)");
  sub->add_option("--batch-file", opt->batch_file, "Items, JSON Lines ('-' = stdin)");
  sub->add_option("--norm", opt->norm, "Rank choices by the sum or the mean of their token log-probs")
      ->check(CLI::IsMember({"sum", "mean"}));
  sub->add_flag("--no-share-prefix", opt->no_share, "Evaluate every prompt+choice from scratch (no KV-cache reuse)");
  sub->add_flag("--no-parse-special", opt->no_parse_special, "Keep special-token text as plain text");
  sub->add_option("-c,--ctx-size", opt->ctx_size, "Context length (0 = the model's)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  sub->add_option("-b,--batch-size", opt->batch_size, "Tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  add_kv_type_option(sub, opt->kv_type);
  return {sub, [opt, &common] { return run_score(*opt, common); }};
}

}  // namespace bloomz::cli
