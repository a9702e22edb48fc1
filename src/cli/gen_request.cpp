// Requests from the command line and from --batch-file lines (cli.md, "Generation options" and
// "Batch runs at scale").
#include "cli/gen_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "bloomz/error.hpp"
#include "bloomz/sampler.hpp"
#include "cli/prompt_input.hpp"

namespace bloomz::cli {

namespace {

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

}  // namespace

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

BatchItem parse_batch_line(const std::string& line, int64_t index, const BatchDefaults& defaults, const Tokenizer& tok,
                           int64_t n_ctx) {
  BatchItem it;
  it.index = index;
  it.req = defaults.req;
  const int64_t line_no = index + 1;
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
    // The seed depends on the line's index only, never on the shard, the --parallel width or
    // the thread count, so sharded, resumed and single runs sample the same tokens.
    if (!it.seed && defaults.seed) it.seed = batch_item_seed(*defaults.seed, static_cast<uint64_t>(index));
    if (!it.seed && it.req.sampler.temp > 0) it.seed = random_seed();
    it.req.sampler.seed = it.seed.value_or(0);
    it.req.prompt_tokens = prompt_tokens(tok, it.prompt, defaults.parse_special, n_ctx);
  } catch (const Error& e) {
    it.error = e.what();
  }
  return it;
}

}  // namespace bloomz::cli
