// bloomz::Sampler: picks the next token from raw logits, in llama.cpp's default chain order:
//
//   logit bias (+ ignore_eos) -> penalties (repeat / frequency / presence over the last N tokens)
//   -> top-k -> typical -> top-p -> min-p -> temperature -> random pick
//
// temp <= 0 is greedy: the arg-max of the biased and penalized logits (ties -> lowest id); the
// truncation samplers are then not consulted (cli.md: they are "used only when --temp > 0").
// Randomness comes from our own xoshiro256** (seeded through splitmix64) and a 53-bit uniform
// double, so a seed gives the same tokens with every compiler and standard library.
// The Sampler keeps its scratch buffers across calls: after the first call, sample() does not
// allocate (unless the vocabulary size changes, or a buffer meets a larger candidate set or
// penalty window than before, which grows it once).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace bloomz {

struct SamplerParams {
  float temp = 0.0f;            // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float typical_p = 1.0f;       // >= 1: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // window for all penalties; 0 = off, -1 = whole history
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit (can be -inf)
  bool ignore_eos = false;                            // eos_id gets -inf
  int32_t eos_id = -1;
  uint64_t seed = 0;
};

// xoshiro256** 1.0 (Blackman & Vigna). The seed constructor expands the 64-bit seed with
// splitmix64, as the authors recommend. uniform() is in [0, 1) from the top 53 bits.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  static Rng from_state(const std::array<uint64_t, 4>& state);  // raw state (must not be all 0)
  uint64_t next();
  double uniform();

 private:
  Rng() = default;
  std::array<uint64_t, 4> s_{};
};

class Sampler {
 public:
  explicit Sampler(SamplerParams params);
  // Picks the next token from raw logits (n_vocab). History = all tokens so far (prompt and
  // generated) for the penalties. Penalties, bias and ignore_eos also apply when greedy.
  // Ids in logit_bias / history outside [0, n_vocab) are ignored. Returns -1 for empty logits.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  const SamplerParams& params() const;
  // Greedy with no logit bias and no penalties: sample() then gives the arg-max of the raw logits
  // (lowest id on ties) over every id but banned_id(), which a caller may find another way
  // (Session::eval_argmax).
  bool plain_argmax() const;
  int32_t banned_id() const;  // eos_id with ignore_eos, else -1

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  bool penalties_on() const;  // some penalty is set and its window is not empty
  void prepare(std::span<const float> logits, std::span<const int32_t> history);
  void select_top_k(size_t k);
  void select_all();
  void apply_typical();
  void apply_top_p();
  void apply_min_p();
  int32_t pick(float temp);

  SamplerParams params_;
  Rng rng_;
  std::vector<float> work_;       // biased + penalized logits, n_vocab
  std::vector<int32_t> counts_;   // per-token occurrences in the penalty window (all 0 between calls)
  std::vector<int32_t> touched_;  // ids with counts_ != 0
  std::vector<Candidate> cand_;   // current candidate set
  std::vector<double> prob_;      // per-candidate probabilities (typical, top-p, pick)
  std::vector<uint32_t> order_;   // typical: candidate order by shifted score
  std::vector<double> scores_;    // typical: shifted score per candidate
  std::vector<Candidate> tmp_;    // typical: reordered candidates
};

// The seed of the item on input line `index` (0-based) of a --batch-file run with -s `seed`:
// output number `index` (0-based) of splitmix64 started at `seed`, i.e. the splitmix64 mix of
// seed + (index + 1) * 0x9E3779B97F4A7C15 (mod 2^64). A function of the two numbers only, so
// shards and resumed runs give every item the seed an unsharded run gives it.
uint64_t batch_item_seed(uint64_t seed, uint64_t index);

// Throws bloomz::Error(ErrorKind::Usage, "...--top-p...") naming the flag for invalid values
// (top_p outside (0,1], min_p outside [0,1], typical outside (0,1], repeat_penalty <= 0,
// repeat_last_n < -1, NaN anywhere, a negative logit-bias id). temp < 0 is fine (= greedy).
void validate(const SamplerParams& p);

// Parses one --logit-bias value "ID(+/-)X", e.g. "15043+1", "15043-0.5", "15043-inf".
// Throws Error(Usage) naming --logit-bias.
std::pair<int32_t, float> parse_logit_bias(std::string_view text);

}  // namespace bloomz
