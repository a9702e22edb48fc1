// Evaluation by log-likelihood: llama-perplexity's chunked perplexity (with its KL-divergence
// base file), and the scoring of answer choices after a shared prompt (`bloomz score`).
// The CLI commands (cli/cmd_perplexity.cpp, cli/cmd_score.cpp) are thin layers over this.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "bloomz/session.hpp"

namespace bloomz::eval {

// log p(tok) under softmax(logits), accumulated in double (llama-perplexity's log_softmax).
double token_logprob(std::span<const float> logits, int32_t tok);

// ---------------------------------------------------------------------------------------------
// Perplexity (llama-perplexity's method). The tokens are cut into n_chunk = n_tokens / n_ctx
// chunks of n_ctx tokens (the tail is dropped); the KV cache is cleared before each chunk and no
// BOS is inserted (BLOOM's add_bos is false). In each chunk only the second half is scored: with
// first = n_ctx / 2, the logits of positions first .. n_ctx-2 predict tokens first+1 .. n_ctx-1,
// so a chunk scores n_ctx - 1 - first tokens.

struct PerplexityStats {
  double nll = 0, nll2 = 0;  // sums of -log p and its square over the scored tokens
  int64_t count = 0;
  double ppl() const;
  // llama-perplexity's uncertainty: ppl * sqrt((E[nll^2] - E[nll]^2) / (count - 1)); 0 when it
  // cannot be computed (count < 2 or no spread).
  double ppl_uncertainty() const;
};

// The base file of --kl-divergence-base: llama-perplexity's `_logits_` format, so files are
// interchangeable with llama.cpp for the same vocabulary. Little-endian:
//   char[8] "_logits_"; int32 n_ctx; int32 n_vocab; int32 n_chunk; int32 tokens[n_chunk * n_ctx];
//   then per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), nv = 2*((n_vocab+1)/2) + 4
//   uint16 words: float32 scale, float32 min_log_prob, then n_vocab uint16 q[i] (padded to even)
//   with log p[i] = scale * q[i] + min_log_prob (log-probs below max - 16 are clamped to the min).
int64_t kld_record_words(int64_t n_vocab);
// Packs one position's log-softmax into a record of kld_record_words(n_vocab) words.
void pack_log_probs(std::span<const float> logits, uint16_t* record);

struct KldBaseHeader {
  int32_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
  std::vector<int32_t> tokens;
};

// Per-chunk progress: chunk index (0-based) and the running statistics after it.
using ChunkCallback = std::function<void(int64_t chunk, const PerplexityStats& running)>;

// Runs the chunks on `session` (whose n_ctx must be >= n_ctx). If `base_out` is not null the
// `_logits_` file is written to it as the chunks are scored. n_chunks < 0 = all.
PerplexityStats perplexity(Session& session, std::span<const int32_t> tokens, int64_t n_ctx, int64_t n_chunks,
                           std::ostream* base_out, const ChunkCallback& on_chunk);

struct KldStats {
  PerplexityStats q, base;     // the model's and the base file's NLL
  double sum_nll_nll_base = 0;
  double sum_kld = 0, sum_kld2 = 0;
  double sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
  int64_t n_same_top = 0, count = 0;
  std::vector<float> kld_values, p_diff_values;  // one per scored position
};

// Reads the header (and tokens) of a base file; throws Error(Format/Io) naming `path`.
KldBaseHeader read_kld_header(std::istream& in, const std::string& path);
// Scores the header's tokens chunk by chunk against the base log-probs read from `in`.
using KldChunkCallback = std::function<void(int64_t chunk, const KldStats& running)>;
KldStats kl_divergence(Session& session, const KldBaseHeader& header, std::istream& in, const std::string& path,
                       const KldChunkCallback& on_chunk);

// mean and its standard error (llama-perplexity's mean_and_uncertainty: 0 for count <= 10).
std::pair<double, double> mean_and_uncertainty(double sum, double sum2, int64_t count);

// ---------------------------------------------------------------------------------------------
// Scoring continuations (bloomz score).

struct ChoiceScore {
  double sum = 0;       // sum of log p(token | prefix, earlier continuation tokens)
  int64_t n_tokens = 0;
  double mean = 0;      // sum / n_tokens
};

// Scores token sequences prefix + continuation on one Session and reuses the KV cache across
// calls: each call keeps the longest common token prefix of what the cache holds and the new
// sequence (up to prefix.size() - 1, so that the row predicting the first continuation token is
// recomputed) and evaluates only the rest. With share = false the cache is cleared every time
// (every sequence is evaluated from scratch; the reference for the tests and the speed-up).
class ContinuationScorer {
 public:
  ContinuationScorer(Session& session, bool share) : session_(session), share_(share) {}
  // Throws Error(Runtime) for an empty prefix or continuation, or a sequence longer than n_ctx.
  ChoiceScore score(std::span<const int32_t> prefix, std::span<const int32_t> continuation);
  int64_t tokens_evaluated() const { return evaluated_; }

 private:
  Session& session_;
  bool share_;
  std::vector<int32_t> cached_;  // the tokens whose keys/values the session holds
  int64_t evaluated_ = 0;
};

}  // namespace bloomz::eval
