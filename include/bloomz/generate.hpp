// generate(): the decoding loop shared by the CLI's single-prompt and batch modes. It evaluates
// the prompt, then samples token by token until EOS, -n, a stop string, a full context or a
// cancel request, handing each printable piece of text to a callback as soon as it is complete
// UTF-8 and cannot be the start of a stop string.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bloomz/sampler.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz {

struct GenerateRequest {
  std::vector<int32_t> prompt_tokens;
  int64_t n_predict = 256;          // -1: until EOS or a full context
  std::vector<std::string> stops;   // stop strings, matched on decoded text
  SamplerParams sampler;
  int32_t logprobs = 0;             // top-N alternatives per step (0: none)
  bool special = false;             // print special tokens such as </s>
};

struct TokenLogprob {
  int32_t id;
  float logprob;
};

struct StepLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
};

struct GenerateResult {
  std::vector<int32_t> tokens;   // every sampled token, including those that completed a stop string
  std::string text;              // decoded output without the stop string
  std::string finish_reason;     // "eos" | "length" | "stop" | "context" | "cancelled"
  std::vector<StepLogprobs> logprobs;
  double prompt_ms = 0, gen_ms = 0;
  int64_t prompt_n = 0, gen_n = 0;
};

// The per-sequence state of the decoding loop, advanced one token at a time by whoever evaluates
// the model (generate() for one sequence, the --parallel scheduler for several).
class Generation {
 public:
  Generation(const Tokenizer& tokenizer, const GenerateRequest& request, std::function<void(std::string_view)> on_text);
  // Given the logits after the last evaluated token, samples the next token and applies the stop
  // rules. Returns the token to evaluate next, or nullopt when the sequence has finished.
  // n_past/n_ctx are the session's, for the "context" rule.
  std::optional<int32_t> step(std::span<const float> logits, int64_t n_past, int64_t n_ctx);
  // The same with the token already picked by the caller: the arg-max that sample() would give,
  // found by Session::eval_argmax (only when picks_argmax()).
  std::optional<int32_t> step_with(int32_t token, int64_t n_past, int64_t n_ctx);
  // The next pick is the plain arg-max over every id but banned() (Sampler::plain_argmax) and no
  // logprobs are asked for, so the caller may pick it without every logit.
  bool picks_argmax() const { return req_.logprobs == 0 && sampler_.plain_argmax(); }
  int32_t banned() const { return sampler_.banned_id(); }
  // Ends the sequence early (Ctrl-C): reason "cancelled".
  void cancel();
  bool done() const { return done_; }
  // Flushes held-back text and returns the result (call once, after done()).
  GenerateResult& finish();

 private:
  const Tokenizer& tok_;
  const GenerateRequest& req_;
  std::function<void(std::string_view)> on_text_;
  Sampler sampler_;
  std::vector<int32_t> history_;
  GenerateResult result_;
  size_t printed_ = 0;
  size_t max_stop_ = 0;
  bool done_ = false;
};

// on_text receives printable bytes in order; their concatenation equals result.text.
GenerateResult generate(Session& session, const Tokenizer& tokenizer, const GenerateRequest& request,
                        const std::function<void(std::string_view)>& on_text,
                        const std::atomic<bool>* cancel = nullptr);

// Length of the longest prefix of s that does not end inside an incomplete UTF-8 sequence.
size_t utf8_complete_prefix(std::string_view s);

// log-softmax of the raw logits: the chosen token's value and the n best (descending).
StepLogprobs logprobs_of(std::span<const float> logits, int32_t chosen, int32_t n);

}  // namespace bloomz
