// Formatting of generation results: the JSON object and the stderr timing summary.
#include "cli/result_json.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace bloomz::cli {

namespace {

nlohmann::json logprobs_json(const Tokenizer& tok, const std::vector<StepLogprobs>& steps) {
  nlohmann::json arr = nlohmann::json::array();
  for (const StepLogprobs& s : steps) {
    nlohmann::json top = nlohmann::json::array();
    for (const TokenLogprob& t : s.top) top.push_back({{"id", t.id}, {"token", tok.token_to_piece(t.id, true)}, {"logprob", t.logprob}});
    arr.push_back({{"id", s.chosen.id}, {"token", tok.token_to_piece(s.chosen.id, true)}, {"logprob", s.chosen.logprob}, {"top", top}});
  }
  return arr;
}

}  // namespace

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

}  // namespace bloomz::cli
