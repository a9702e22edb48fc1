// Response bodies of /v1/completions and /completion (response.hpp).
#include "server/response.hpp"

namespace bloomz::server {

namespace {

using nlohmann::json;

int64_t prompt_n(const Choice& c) { return c.result.prompt_n; }
int64_t gen_n(const Choice& c) { return static_cast<int64_t>(c.result.tokens.size()); }
double per_second(int64_t n, double ms) { return ms > 0 ? 1000.0 * static_cast<double>(n) / ms : 0.0; }

// OpenAI's logprobs object over the generated tokens; offsets count from the start of the
// returned text (after the echoed prompt when echo is on).
json openai_logprobs(const CompletionRequest& req, const Choice& c, const Tokenizer& tok) {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  size_t offset = req.echo ? c.prompt.size() : 0;
  for (const StepLogprobs& step : c.result.logprobs) {
    const std::string piece = tok.token_to_piece(step.chosen.id, true);
    tokens.push_back(piece);
    token_logprobs.push_back(step.chosen.logprob);
    json top = json::object();
    for (size_t i = 0; i < step.top.size() && i < static_cast<size_t>(req.logprobs); ++i) {
      top[tok.token_to_piece(step.top[i].id, true)] = step.top[i].logprob;
    }
    top_logprobs.push_back(std::move(top));
    offsets.push_back(offset);
    offset += piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", offsets}};
}

json usage(const std::vector<Choice>& choices) {
  int64_t p = 0, g = 0;
  for (const Choice& c : choices) {
    p += prompt_n(c);
    g += gen_n(c);
  }
  return {{"prompt_tokens", p}, {"completion_tokens", g}, {"total_tokens", p + g}};
}

json openai_envelope(const ResponseMeta& meta, json choices) {
  return {{"id", meta.id}, {"object", "text_completion"}, {"created", meta.created}, {"model", meta.model},
          {"choices", std::move(choices)}, {"seed", meta.seed ? json(*meta.seed) : json(nullptr)}};
}

}  // namespace

std::string openai_finish_reason(const std::string& reason) {
  if (reason == "eos" || reason == "stop") return "stop";
  if (reason == "length" || reason == "context") return "length";
  return reason;  // "cancelled": the server is shutting down
}

json openai_completion(const CompletionRequest& req, const ResponseMeta& meta, const std::vector<Choice>& choices, const Tokenizer& tok) {
  json arr = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const Choice& c = choices[i];
    arr.push_back({{"text", req.echo ? c.prompt + c.result.text : c.result.text},
                   {"index", i},
                   {"logprobs", req.logprobs >= 0 ? openai_logprobs(req, c, tok) : json(nullptr)},
                   {"finish_reason", openai_finish_reason(c.result.finish_reason)}});
  }
  json j = openai_envelope(meta, std::move(arr));
  j["usage"] = usage(choices);
  return j;
}

json openai_text_chunk(const ResponseMeta& meta, size_t index, std::string_view text) {
  return openai_envelope(meta, json::array({{{"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}}}));
}

json openai_final_chunk(const CompletionRequest& req, const ResponseMeta& meta, size_t index, const Choice& c, const Tokenizer& tok) {
  return openai_envelope(meta, json::array({{{"text", ""},
                                             {"index", index},
                                             {"logprobs", req.logprobs >= 0 ? openai_logprobs(req, c, tok) : json(nullptr)},
                                             {"finish_reason", openai_finish_reason(c.result.finish_reason)}}}));
}

json openai_usage_chunk(const ResponseMeta& meta, const std::vector<Choice>& choices) {
  json j = openai_envelope(meta, json::array());
  j["usage"] = usage(choices);
  return j;
}

json llamacpp_completion(const CompletionRequest& req, const ResponseMeta& meta, const Choice& c, const Tokenizer& tok) {
  const GenerateResult& r = c.result;
  const std::string& why = r.finish_reason;
  json j = {{"content", r.text},
            {"tokens", r.tokens},
            {"stop", true},
            {"model", meta.model},
            {"prompt", c.prompt},
            {"tokens_predicted", gen_n(c)},
            {"tokens_evaluated", prompt_n(c)},
            {"stop_type", why == "eos" ? "eos" : why == "stop" ? "word" : why == "cancelled" ? "none" : "limit"},
            {"finish_reason", why},
            {"seed", meta.seed ? json(*meta.seed) : json(nullptr)},
            {"timings",
             {{"prompt_n", r.prompt_n},
              {"prompt_ms", r.prompt_ms},
              {"prompt_per_second", per_second(r.prompt_n, r.prompt_ms)},
              {"predicted_n", gen_n(c)},
              {"predicted_ms", r.gen_ms},
              {"predicted_per_second", per_second(gen_n(c), r.gen_ms)}}}};
  if (req.logprobs > 0) {
    json probs = json::array();
    for (const StepLogprobs& s : r.logprobs) {
      json top = json::array();
      for (const TokenLogprob& t : s.top) top.push_back({{"id", t.id}, {"token", tok.token_to_piece(t.id, true)}, {"logprob", t.logprob}});
      probs.push_back({{"id", s.chosen.id}, {"token", tok.token_to_piece(s.chosen.id, true)}, {"logprob", s.chosen.logprob}, {"top_logprobs", top}});
    }
    j["completion_probabilities"] = std::move(probs);
  }
  return j;
}

json llamacpp_text_chunk(std::string_view text) { return {{"content", text}, {"stop", false}}; }

std::string to_wire(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + to_wire(j) + "\n\n"; }

}  // namespace bloomz::server
