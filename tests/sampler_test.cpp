// Sampler tests: greedy, seeds, the invariant of each truncation sampler, penalties, bias,
// ignore_eos, the empirical distribution, validate() and parse_logit_bias(), and a timing.
#include "bloomz/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bloomz/error.hpp"

namespace bloomz {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Every truncation sampler off, temperature 1: a plain softmax draw.
SamplerParams plain(uint64_t seed = 1) {
  SamplerParams p;
  p.temp = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  p.seed = seed;
  return p;
}

// Deterministic pseudo-random logits in [-lo, hi) (our own Rng, so the same everywhere).
std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 4.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>((rng.uniform() * 2.0 - 1.0) * scale);
  return v;
}

std::vector<double> softmax(const std::vector<float>& logits, double temp = 1.0) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp((logits[i] - mx) / temp);
  for (auto& q : p) q /= total;
  return p;
}

// Ids sorted by descending logit (ties by id).
std::vector<int32_t> ranked(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

std::set<int32_t> draw_set(Sampler& s, const std::vector<float>& logits, int n_draws) {
  std::set<int32_t> seen;
  for (int i = 0; i < n_draws; ++i) seen.insert(s.sample(logits, {}));
  return seen;
}

// ---------------------------------------------------------------------------------------------
// RNG

TEST(Rng, Xoshiro256StarStarReferenceOutputs) {
  // Reference xoshiro256** from state {1, 2, 3, 4}.
  Rng r = Rng::from_state({1, 2, 3, 4});
  EXPECT_EQ(r.next(), 11520u);
  EXPECT_EQ(r.next(), 0u);
  EXPECT_EQ(r.next(), 1509978240u);
  EXPECT_EQ(r.next(), 1215971899390074240u);
}

TEST(Rng, UniformInUnitIntervalAndSeeded) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 10000; ++i) {
    const double x = a.uniform();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    const double y = b.uniform();
    EXPECT_EQ(x, y);
    if (c.uniform() != x) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, BatchItemSeedIsSplitmix64OfTheIndex) {
  // The documented rule (README, "Batch runs at scale"): output number `index` of splitmix64
  // started at the -s seed. Reference outputs of splitmix64 from state 0 (Vigna's splitmix64.c).
  EXPECT_EQ(batch_item_seed(0, 0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(batch_item_seed(0, 1), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(batch_item_seed(0, 2), 0x06C45D188009454Full);
  EXPECT_EQ(batch_item_seed(7, 0), 7191089600892374487ull);
  EXPECT_NE(batch_item_seed(7, 1), batch_item_seed(8, 1));
}

// ---------------------------------------------------------------------------------------------
// Greedy

TEST(Sampler, DefaultsAreGreedy) {
  const SamplerParams p;
  EXPECT_LE(p.temp, 0.0f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.typical_p, 1.0f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_NO_THROW(validate(p));
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s{SamplerParams{}};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(1000, seed);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(s.sample(logits, {}), best);
  }
}

TEST(Sampler, GreedyTiesGoToLowestId) {
  Sampler s{SamplerParams{}};
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 3.0f, 3.0f};
  EXPECT_EQ(s.sample(logits, {}), 1);
  SamplerParams neg;
  neg.temp = -1.0f;  // negative temperature = greedy too
  Sampler s2{neg};
  EXPECT_EQ(s2.sample(logits, {}), 1);
}

TEST(Sampler, GreedyIgnoresTruncationAndSeed) {
  SamplerParams p;
  p.typical_p = 0.2f;  // typical may drop the arg-max, but greedy never consults it
  p.top_k = 1;
  p.seed = 99;
  Sampler s{p};
  const std::vector<float> logits = {1.0f, 9.0f, 2.0f};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits, {}), 1);
}

// ---------------------------------------------------------------------------------------------
// Seeds

std::vector<int32_t> run(uint64_t seed, const std::vector<float>& logits, int steps) {
  SamplerParams p = plain(seed);
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.01f;
  Sampler s{p};
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) out.push_back(s.sample(logits, out));
  return out;
}

TEST(Sampler, SameSeedSameTokensDifferentSeedsDiffer) {
  const auto logits = random_logits(5000, 7, 1.0f);
  const auto a = run(1234, logits, 100);
  const auto b = run(1234, logits, 100);
  const auto c = run(1235, logits, 100);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Sampler, SeededStreamIsPinned) {
  // Pins the exact tokens for one seed: any change to the RNG, the uniform() construction or the
  // pick rule shows up here (the same seed must give the same output on every platform).
  const std::vector<float> logits = {0.5f, 1.0f, 1.5f, 2.0f, 0.0f, -1.0f, 1.2f, 0.7f};
  Sampler s{plain(2024)};
  std::vector<int32_t> got;
  for (int i = 0; i < 16; ++i) got.push_back(s.sample(logits, {}));
  const std::vector<int32_t> expected = {0, 6, 1, 1, 6, 2, 3, 2, 3, 0, 4, 7, 6, 2, 6, 1};
  EXPECT_EQ(got, expected);
}

// ---------------------------------------------------------------------------------------------
// Truncation invariants

TEST(Sampler, TopKKeepsExactlyTheKBest) {
  const auto logits = random_logits(2000, 3, 1.0f);  // flat-ish, so every kept token shows up
  const auto order = ranked(logits);
  for (const int32_t k : {1, 5, 40}) {
    SamplerParams p = plain(11);
    p.top_k = k;
    Sampler s{p};
    const auto seen = draw_set(s, logits, 2000);
    const std::set<int32_t> best(order.begin(), order.begin() + k);
    for (const int32_t id : seen) EXPECT_TRUE(best.count(id)) << "k=" << k << " id=" << id;
    if (k <= 5) {
      EXPECT_EQ(seen.size(), static_cast<size_t>(k)) << "k=" << k;
    }
  }
}

TEST(Sampler, TopKTieAtTheBoundaryKeepsLowestIds) {
  SamplerParams p = plain(5);
  p.top_k = 2;
  Sampler s{p};
  const std::vector<float> logits = {1.0f, 5.0f, 1.0f, 1.0f, 0.0f};  // 1 then the tie 0, 2, 3
  const auto seen = draw_set(s, logits, 500);
  for (const int32_t id : seen) EXPECT_TRUE(id == 1 || id == 0) << id;
}

TEST(Sampler, TopKOnLargeVocabularyWithTies) {
  // Exercises the block-skipping selection: winners far apart, and a tie filled by lowest ids.
  std::vector<float> logits(10000, 0.0f);
  logits[5000] = 2.0f;
  logits[9999] = 2.0f;
  logits[7000] = 1.0f;
  SamplerParams p = plain(7);
  p.top_k = 3;
  Sampler s{p};
  EXPECT_EQ(draw_set(s, logits, 1000), (std::set<int32_t>{5000, 7000, 9999}));
  logits[7000] = 0.0f;  // now the third place is a 9998-way tie at 0: id 0 wins it
  Sampler s2{p};
  EXPECT_EQ(draw_set(s2, logits, 1000), (std::set<int32_t>{0, 5000, 9999}));
  SamplerParams g;
  Sampler greedy{g};
  EXPECT_EQ(greedy.sample(logits, {}), 5000);  // tie between 5000 and 9999
}

TEST(Sampler, TopPWithoutTopKOnLargeVocabulary) {
  // top-k off: the nucleus is found by growing a sorted prefix (here > 1024 tokens).
  const auto logits = random_logits(5000, 13, 1.0f);
  const auto prob = softmax(logits);
  const auto order = ranked(logits);
  std::set<int32_t> nucleus;
  double cum = 0;
  for (const int32_t id : order) {
    nucleus.insert(id);
    cum += prob[static_cast<size_t>(id)];
    if (cum >= 0.5) break;
  }
  ASSERT_GT(nucleus.size(), 1024u);
  SamplerParams p = plain(19);
  p.top_p = 0.5f;
  Sampler s{p};
  const auto seen = draw_set(s, logits, 1000);
  for (const int32_t id : seen) EXPECT_TRUE(nucleus.count(id)) << id;
  EXPECT_GT(seen.size(), 300u);
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f, -3.0f};
  const auto prob = softmax(logits);
  for (const float top_p : {0.3f, 0.6f, 0.8f, 0.9f, 0.99f}) {
    // Expected: shortest prefix (ids are already in descending order) with mass >= top_p.
    size_t need = 0;
    double cum = 0;
    while (cum < top_p) cum += prob[need++];
    SamplerParams p = plain(17);
    p.top_p = top_p;
    Sampler s{p};
    const auto seen = draw_set(s, logits, 3000);
    EXPECT_EQ(seen.size(), need) << "top_p=" << top_p;
    for (const int32_t id : seen) EXPECT_LT(static_cast<size_t>(id), need) << "top_p=" << top_p;
  }
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  const auto logits = random_logits(200, 21, 3.0f);
  const auto prob = softmax(logits);
  const double p_max = *std::max_element(prob.begin(), prob.end());
  for (const float min_p : {0.05f, 0.2f, 0.5f}) {
    SamplerParams p = plain(23);
    p.min_p = min_p;
    Sampler s{p};
    const auto seen = draw_set(s, logits, 2000);
    for (const int32_t id : seen) {
      EXPECT_GE(prob[static_cast<size_t>(id)], min_p * p_max * (1 - 1e-5)) << "min_p=" << min_p;
    }
  }
}

TEST(Sampler, TypicalKeepsNonEmptyTypicalSet) {
  const std::vector<float> logits = {4.0f, 3.0f, 2.5f, 2.0f, 1.0f, 0.0f, -1.0f, -3.0f};
  const auto prob = softmax(logits);
  double entropy = 0;
  for (const double q : prob) entropy -= q * std::log(q);
  for (const float typical : {0.01f, 0.3f, 0.7f, 0.95f}) {
    // Expected set: ascending |surprisal - entropy| until the mass exceeds typical.
    std::vector<int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      return std::fabs(-std::log(prob[a]) - entropy) < std::fabs(-std::log(prob[b]) - entropy);
    });
    std::set<int32_t> expected;
    double cum = 0;
    for (const int32_t id : ids) {
      expected.insert(id);
      cum += prob[id];
      if (cum > typical) break;
    }
    SamplerParams p = plain(29);
    p.typical_p = typical;
    Sampler s{p};
    const auto seen = draw_set(s, logits, 3000);
    EXPECT_FALSE(seen.empty());
    for (const int32_t id : seen) EXPECT_TRUE(expected.count(id)) << "typical=" << typical << " id=" << id;
    if (typical <= 0.3f) {
      EXPECT_EQ(seen, expected) << "typical=" << typical;
    }
  }
}

TEST(Sampler, NeutralValuesSwitchSamplersOff) {
  // top-k 0, top-p 1, min-p 0, typical 1: every token can come out.
  const std::vector<float> logits = {0.0f, 0.2f, -0.3f, 0.1f, -0.1f, 0.05f};
  Sampler s{plain(31)};
  EXPECT_EQ(draw_set(s, logits, 2000).size(), logits.size());
}

// ---------------------------------------------------------------------------------------------
// Distribution

void expect_matches_softmax(const std::vector<float>& logits, float temp, uint64_t seed) {
  SamplerParams p = plain(seed);
  p.temp = temp;
  Sampler s{p};
  constexpr int kDraws = 20000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(s.sample(logits, {}))];
  const auto prob = softmax(logits, temp);
  for (size_t i = 0; i < logits.size(); ++i) {
    const double mean = kDraws * prob[i];
    const double sigma = std::sqrt(kDraws * prob[i] * (1 - prob[i]));
    EXPECT_NEAR(counts[i], mean, 3 * sigma + 1e-9) << "token " << i << " temp " << temp;
  }
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
  expect_matches_softmax({1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 1.5f, -0.5f, 0.25f}, 1.0f, 101);
}

TEST(Sampler, TemperatureScalesLogits) {
  expect_matches_softmax({1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 1.5f}, 0.5f, 103);
  expect_matches_softmax({1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 1.5f}, 2.0f, 107);
}

TEST(Sampler, TinyTemperatureActsGreedy) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.9f, -2.0f};
  for (const float temp : {1e-3f, 1e-30f, 1e-45f}) {
    SamplerParams p = plain(59);
    p.temp = temp;
    Sampler s{p};
    for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample(logits, {}), 1) << "temp " << temp;
  }
}

// ---------------------------------------------------------------------------------------------
// Penalties, bias, ignore_eos

TEST(Sampler, RepeatPenaltyMakesRepeatedWinnerLose) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, 0.0f};
  const std::vector<int32_t> history = {1, 0};
  SamplerParams p;
  EXPECT_EQ(Sampler{p}.sample(logits, history), 1);
  p.repeat_penalty = 1.5f;  // 3.0 / 1.5 = 2.0 < 2.5
  EXPECT_EQ(Sampler{p}.sample(logits, history), 2);
  // Window: token 1 out of the last-1 window -> no penalty.
  p.repeat_last_n = 1;
  EXPECT_EQ(Sampler{p}.sample(logits, history), 1);
  p.repeat_last_n = 0;  // off
  EXPECT_EQ(Sampler{p}.sample(logits, history), 1);
  p.repeat_last_n = -1;  // whole history
  EXPECT_EQ(Sampler{p}.sample(logits, history), 2);
}

TEST(Sampler, RepeatPenaltyMultipliesNegativeLogits) {
  // All negative: the repeated best (-1) becomes -1 * 3 = -3 < -2.
  const std::vector<float> logits = {-1.0f, -2.0f, -5.0f};
  SamplerParams p;
  p.repeat_penalty = 3.0f;
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(Sampler{p}.sample(logits, history), 1);
  // A penalty below 1 rewards repetition instead.
  p.repeat_penalty = 0.1f;
  const std::vector<float> logits2 = {1.0f, 5.0f};
  EXPECT_EQ(Sampler{p}.sample(logits2, std::vector<int32_t>{0}), 0);                           // 1 / 0.1 = 10 > 5
  EXPECT_EQ(Sampler{p}.sample(std::vector<float>{-1.0f, -5.0f}, std::vector<int32_t>{1}), 1);  // -0.5
}

TEST(Sampler, RepeatPenaltyAppliesOncePerToken) {
  // llama.cpp divides once however often the token occurs.
  const std::vector<float> logits = {4.0f, 1.9f};
  SamplerParams p;
  p.repeat_penalty = 2.0f;
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0, 0, 0, 0}), 0);  // 2.0 > 1.9
}

TEST(Sampler, PresencePenaltyIsFlat) {
  const std::vector<float> logits = {3.0f, 2.0f};
  SamplerParams p;
  p.presence_penalty = 0.6f;
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0, 0, 0, 0, 0}), 0);  // 2.4 > 2.0
  p.presence_penalty = 1.5f;
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0}), 1);  // 1.5 < 2.0
}

TEST(Sampler, FrequencyPenaltyScalesWithCount) {
  const std::vector<float> logits = {3.0f, 2.0f};
  SamplerParams p;
  p.frequency_penalty = 0.3f;
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0, 0, 0}), 0);     // 2.1
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0, 0, 0, 0}), 1);  // 1.8
  p.repeat_last_n = 2;                                                        // window of 2
  EXPECT_EQ(Sampler{p}.sample(logits, std::vector<int32_t>{0, 0, 0, 0}), 0);  // 2.4
}

TEST(Sampler, PenaltiesAlsoApplyWhenSampling) {
  // Token 0 dominates, but a huge presence penalty removes it from the sampled set entirely.
  const std::vector<float> logits = {10.0f, 0.0f, 0.1f, 0.2f};
  SamplerParams p = plain(37);
  p.presence_penalty = 100.0f;
  Sampler s{p};
  const std::vector<int32_t> history = {0};
  for (int i = 0; i < 500; ++i) EXPECT_NE(s.sample(logits, history), 0);
}

TEST(Sampler, LogitBiasMinusInfBansToken) {
  const std::vector<float> logits = {0.0f, 5.0f, 4.0f, -1.0f};
  SamplerParams g;
  g.logit_bias = {{1, -kInf}};
  EXPECT_EQ(Sampler{g}.sample(logits, {}), 2);
  SamplerParams p = plain(41);
  p.logit_bias = {{1, -kInf}, {2, -kInf}, {99, 5.0f}};  // out-of-range ids are ignored
  Sampler s{p};
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = s.sample(logits, {});
    EXPECT_NE(t, 1);
    EXPECT_NE(t, 2);
  }
}

TEST(Sampler, LogitBiasAddsToLogit) {
  const std::vector<float> logits = {0.0f, 5.0f};
  SamplerParams p;
  p.logit_bias = {{0, 6.0f}};
  EXPECT_EQ(Sampler{p}.sample(logits, {}), 0);
  p.logit_bias = {{0, 4.0f}};
  EXPECT_EQ(Sampler{p}.sample(logits, {}), 1);
  SamplerParams q = plain(43);  // +inf bias forces the token
  q.logit_bias = {{0, kInf}};
  Sampler s{q};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(logits, {}), 0);
}

TEST(Sampler, IgnoreEosNeverReturnsEos) {
  const std::vector<float> logits = {0.0f, 0.5f, 8.0f, 0.2f};
  SamplerParams g;
  g.eos_id = 2;
  EXPECT_EQ(Sampler{g}.sample(logits, {}), 2);
  g.ignore_eos = true;
  EXPECT_EQ(Sampler{g}.sample(logits, {}), 1);
  SamplerParams p = plain(47);
  p.eos_id = 2;
  p.ignore_eos = true;
  Sampler s{p};
  for (int i = 0; i < 2000; ++i) EXPECT_NE(s.sample(logits, {}), 2);
}

// Plain greedy takes the arg-max of the logits without the working copy; a zero logit bias forces
// the full path on the same values. Both must agree, ties, -inf runs and a banned EOS included.
TEST(Sampler, GreedyShortcutEqualsFullPath) {
  std::mt19937 rng(99);
  for (int round = 0; round < 200; ++round) {
    const size_t n = 1 + rng() % 700;
    std::vector<float> logits(n);
    for (float& l : logits) l = static_cast<float>(static_cast<int>(rng() % 9)) - 4.0f;  // many ties
    if (round % 5 == 0) std::fill(logits.begin(), logits.begin() + static_cast<long>(n / 2), -kInf);
    if (round % 7 == 0) std::fill(logits.begin(), logits.end(), -kInf);
    for (const bool ignore_eos : {false, true}) {
      SamplerParams fast;
      fast.eos_id = static_cast<int32_t>(rng() % n);
      fast.ignore_eos = ignore_eos;
      if (round % 3 == 0) logits[static_cast<size_t>(fast.eos_id)] = 9.0f;  // EOS is the arg-max
      SamplerParams full = fast;
      full.logit_bias = {{0, 0.0f}};
      const int32_t a = Sampler{fast}.sample(logits, {}), b = Sampler{full}.sample(logits, {});
      ASSERT_EQ(a, b) << "round " << round << " ignore_eos " << ignore_eos;
      const bool other_finite = std::any_of(logits.begin(), logits.end(), [&, i = size_t{0}](float l) mutable {
        return i++ != static_cast<size_t>(fast.eos_id) && l != -kInf;
      });
      if (ignore_eos && other_finite) {
        EXPECT_NE(a, fast.eos_id);
      }
    }
  }
}

TEST(Sampler, AllBannedFallsBackToLowestId) {
  const std::vector<float> logits = {1.0f, 2.0f};
  SamplerParams p = plain(53);
  p.logit_bias = {{0, -kInf}, {1, -kInf}};
  EXPECT_EQ(Sampler{p}.sample(logits, {}), 0);
  EXPECT_EQ(Sampler{p}.sample({}, {}), -1);
}

// ---------------------------------------------------------------------------------------------
// validate / parse_logit_bias

void expect_usage_error(const SamplerParams& p, const std::string& flag) {
  try {
    validate(p);
    ADD_FAILURE() << "no error for " << flag;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
  }
}

TEST(Validate, RejectsBadValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto with = [](auto f) {
    SamplerParams p;
    f(p);
    return p;
  };
  expect_usage_error(with([](SamplerParams& p) { p.top_p = 0.0f; }), "--top-p");
  expect_usage_error(with([](SamplerParams& p) { p.top_p = 1.5f; }), "--top-p");
  expect_usage_error(with([&](SamplerParams& p) { p.top_p = nan; }), "--top-p");
  expect_usage_error(with([](SamplerParams& p) { p.min_p = -0.1f; }), "--min-p");
  expect_usage_error(with([](SamplerParams& p) { p.min_p = 1.1f; }), "--min-p");
  expect_usage_error(with([](SamplerParams& p) { p.typical_p = 0.0f; }), "--typical");
  expect_usage_error(with([](SamplerParams& p) { p.typical_p = 2.0f; }), "--typical");
  expect_usage_error(with([](SamplerParams& p) { p.repeat_penalty = 0.0f; }), "--repeat-penalty");
  expect_usage_error(with([](SamplerParams& p) { p.repeat_penalty = -1.0f; }), "--repeat-penalty");
  expect_usage_error(with([](SamplerParams& p) { p.repeat_last_n = -2; }), "--repeat-last-n");
  expect_usage_error(with([&](SamplerParams& p) { p.temp = nan; }), "--temp");
  expect_usage_error(with([&](SamplerParams& p) { p.presence_penalty = nan; }), "--presence-penalty");
  expect_usage_error(with([&](SamplerParams& p) { p.frequency_penalty = kInf; }), "--frequency-penalty");
  expect_usage_error(with([](SamplerParams& p) { p.logit_bias = {{-1, 1.0f}}; }), "--logit-bias");
}

TEST(Validate, AcceptsBoundaryValues) {
  SamplerParams p;
  p.temp = -1.0f;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  EXPECT_NO_THROW(validate(p));
  p.min_p = 1.0f;
  p.typical_p = 1.0f;
  p.top_k = 0;
  p.repeat_last_n = -1;
  p.repeat_penalty = 0.5f;
  p.top_p = 0.01f;
  p.logit_bias = {{5, -kInf}, {6, kInf}};
  EXPECT_NO_THROW(validate(p));
}

TEST(ParseLogitBias, ParsesValidValues) {
  EXPECT_EQ(parse_logit_bias("15043+1"), (std::pair<int32_t, float>{15043, 1.0f}));
  EXPECT_EQ(parse_logit_bias("15043-1"), (std::pair<int32_t, float>{15043, -1.0f}));
  EXPECT_EQ(parse_logit_bias("0+0.5"), (std::pair<int32_t, float>{0, 0.5f}));
  EXPECT_EQ(parse_logit_bias("7-.25"), (std::pair<int32_t, float>{7, -0.25f}));
  EXPECT_EQ(parse_logit_bias("2+1e2"), (std::pair<int32_t, float>{2, 100.0f}));
  const auto minus_inf = parse_logit_bias("15043-inf");
  EXPECT_EQ(minus_inf.first, 15043);
  EXPECT_EQ(minus_inf.second, -kInf);
  EXPECT_EQ(parse_logit_bias("3+INF").second, kInf);
  EXPECT_EQ(parse_logit_bias("3-infinity").second, -kInf);
}

TEST(ParseLogitBias, RejectsBadValues) {
  for (const char* bad : {"", "15043", "15043+", "+1", "-15043+1", "abc+1", "15043*1", "15043+x", "15043+1x",
                          "15043+-1", "15043++1", "15043+nan", "15043 +1", "99999999999+1", "15043+1e99"}) {
    try {
      parse_logit_bias(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_NE(std::string(e.what()).find("--logit-bias"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Timing on BLOOM's vocabulary (printed, not asserted)

TEST(SamplerPerf, FullVocabularyTiming) {
  constexpr size_t kVocab = 250880;
  const auto logits = random_logits(kVocab, 12345, 10.0f);
  std::vector<int32_t> history;
  for (int i = 0; i < 64; ++i) history.push_back(i * 3001 % static_cast<int>(kVocab));

  auto time_it = [&](const char* label, SamplerParams p) {
    Sampler s{p};
    s.sample(logits, history);  // warm-up: scratch buffers are sized here
    constexpr int kCalls = 200;
    int64_t checksum = 0;
    const std::clock_t c0 = std::clock();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) checksum += s.sample(logits, history);
    const auto t1 = std::chrono::steady_clock::now();
    const std::clock_t c1 = std::clock();
    const double us = std::chrono::duration<double, std::micro>(t1 - t0).count() / kCalls;
    const double cpu_us = 1e6 * static_cast<double>(c1 - c0) / CLOCKS_PER_SEC / kCalls;
    std::printf("[ timing   ] sample() on %zu logits, %s: %.1f us/call wall, %.1f us/call CPU (checksum %lld)\n",
                kVocab, label, us, cpu_us, static_cast<long long>(checksum));
    EXPECT_GE(checksum, 0);
  };
  SamplerParams greedy;
  greedy.repeat_penalty = 1.1f;
  time_it("greedy + repeat penalty", greedy);
  SamplerParams defaults;
  defaults.temp = 0.8f;  // llama.cpp's sampling defaults: top-k 40, top-p 0.95, min-p 0.05
  defaults.repeat_penalty = 1.1f;
  defaults.seed = 1;
  time_it("temp 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.1", defaults);
}

}  // namespace
}  // namespace bloomz
