// Sampler: llama.cpp's default sampling chain over our own RNG. See include/bloomz/sampler.hpp.
#include "bloomz/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>

#include "bloomz/error.hpp"

namespace bloomz {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t splitmix64(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rng

Rng::Rng(uint64_t seed) {
  uint64_t sm = seed;
  for (auto& word : s_) word = splitmix64(sm);
  // splitmix64 is a bijection of a counter, so four consecutive outputs are never all zero.
}

uint64_t batch_item_seed(uint64_t seed, uint64_t index) {
  uint64_t state = seed + index * 0x9E3779B97F4A7C15ull;  // splitmix64 adds the last step itself
  return splitmix64(state);
}

Rng Rng::from_state(const std::array<uint64_t, 4>& state) {
  Rng r;
  r.s_ = state;
  return r;
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

// ---------------------------------------------------------------------------------------------
// Sampler

namespace {

// Strict total order: higher logit first, then lower id. Every sort and selection uses it, so
// candidate order never depends on the standard library's algorithms.
struct Better {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

// Max of p[0..len) (NaN ignored; -inf if none). Eight independent lanes in the `a > b ? a : b`
// form, which compilers turn into packed max instructions without -ffast-math.
float block_max(const float* p, size_t len) {
  constexpr size_t kLanes = 8;
  float lane[kLanes];
  for (float& x : lane) x = kNegInf;
  size_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
  }
  for (; i < len; ++i) lane[0] = p[i] > lane[0] ? p[i] : lane[0];
  float m = kNegInf;
  for (const float x : lane) m = x > m ? x : m;
  return m;
}

// Arg-max, lowest id on ties; NaN never wins; all -inf/NaN -> 0.
int32_t argmax_first(const float* w, size_t n) {
  constexpr size_t kBlock = 64;
  float best_l = kNegInf;
  size_t best_block = 0;
  for (size_t i = 0; i < n; i += kBlock) {
    const float m = block_max(w + i, std::min(kBlock, n - i));
    if (m > best_l) {  // strict: the first block holding the max wins
      best_l = m;
      best_block = i;
    }
  }
  for (size_t i = best_block; i < std::min(best_block + kBlock, n); ++i) {
    if (w[i] == best_l) return static_cast<int32_t>(i);
  }
  return 0;
}

}  // namespace

Sampler::Sampler(SamplerParams params) : params_(std::move(params)), rng_(params_.seed) {}

const SamplerParams& Sampler::params() const { return params_; }

void Sampler::prepare(std::span<const float> logits, std::span<const int32_t> history) {
  const size_t n = logits.size();
  if (work_.size() != n) {
    work_.resize(n);
    counts_.assign(n, 0);
  }
  std::copy(logits.begin(), logits.end(), work_.begin());

  // 1. logit bias, then ignore_eos (llama.cpp implements it as a -inf bias on EOG tokens).
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id >= 0 && static_cast<size_t>(id) < n) work_[static_cast<size_t>(id)] += bias;
  }
  if (params_.ignore_eos && params_.eos_id >= 0 && static_cast<size_t>(params_.eos_id) < n) {
    work_[static_cast<size_t>(params_.eos_id)] = kNegInf;
  }

  // 2. penalties over the last repeat_last_n tokens of the history.
  const SamplerParams& p = params_;
  if (!penalties_on() || history.empty()) return;
  size_t window = history.size();
  if (p.repeat_last_n > 0) window = std::min(window, static_cast<size_t>(p.repeat_last_n));
  for (const int32_t tok : history.subspan(history.size() - window)) {
    if (tok < 0 || static_cast<size_t>(tok) >= n) continue;
    if (counts_[static_cast<size_t>(tok)]++ == 0) touched_.push_back(tok);
  }
  for (const int32_t tok : touched_) {
    const auto t = static_cast<size_t>(tok);
    const int32_t count = counts_[t];
    float l = work_[t];
    if (l <= 0.0f) {
      l *= p.repeat_penalty;
    } else {
      l /= p.repeat_penalty;
    }
    l -= static_cast<float>(count) * p.frequency_penalty + (count > 0 ? p.presence_penalty : 0.0f);
    work_[t] = l;
    counts_[t] = 0;
  }
  touched_.clear();
}

// Keeps the k best (by Better) tokens, sorted best first: a bounded heap whose top is the worst
// kept token, so almost every token costs one comparison.
void Sampler::select_top_k(size_t k) {
  cand_.clear();
  const Better better;
  const float* w = work_.data();
  const size_t n = work_.size();
  size_t i = 0;
  for (; i < n && cand_.size() < k; ++i) {
    const float l = w[i];
    if (!(l > kNegInf)) continue;  // -inf (banned) and NaN never become candidates
    cand_.push_back({static_cast<int32_t>(i), l});
    std::push_heap(cand_.begin(), cand_.end(), better);
  }
  if (cand_.size() == k) {
    // Ids grow, so an equal logit loses the tie against every kept token: strict > is exact.
    // Blocks whose max does not beat the worst kept logit are skipped whole.
    constexpr size_t kBlock = 64;
    float threshold = cand_.front().logit;
    while (i < n) {
      const size_t len = std::min(kBlock, n - i);
      if (block_max(w + i, len) > threshold) {
        for (size_t j = i; j < i + len; ++j) {
          const float l = w[j];
          if (!(l > threshold)) continue;
          std::pop_heap(cand_.begin(), cand_.end(), better);
          cand_.back() = {static_cast<int32_t>(j), l};
          std::push_heap(cand_.begin(), cand_.end(), better);
          threshold = cand_.front().logit;
        }
      }
      i += len;
    }
  }
  std::sort(cand_.begin(), cand_.end(), better);
}

void Sampler::select_all() {
  cand_.clear();
  const size_t n = work_.size();
  for (size_t i = 0; i < n; ++i) {
    const float l = work_[i];
    if (l > kNegInf) cand_.push_back({static_cast<int32_t>(i), l});
  }
}

namespace {

// prob[i] = softmax of the candidates' logits (double precision); candidates must be finite.
template <class C>
void softmax(const std::vector<C>& cand, std::vector<double>& prob) {
  prob.resize(cand.size());
  float max_l = kNegInf;
  for (const auto& c : cand) max_l = std::max(max_l, c.logit);
  double total = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) {
    prob[i] = std::exp(static_cast<double>(cand[i].logit) - static_cast<double>(max_l));
    total += prob[i];
  }
  for (double& q : prob) q /= total;
}

}  // namespace

// Locally typical sampling (llama.cpp's llama_sampler_typical): keep the tokens whose surprisal
// is closest to the entropy until their mass exceeds typical_p. Leaves candidates sorted by logit.
void Sampler::apply_typical() {
  softmax(cand_, prob_);
  double entropy = 0.0;
  for (const double q : prob_) {
    if (q > 0.0) entropy -= q * std::log(q);
  }
  order_.resize(cand_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
  auto score = [&](uint32_t i) {
    const double q = prob_[i];
    return q > 0.0 ? std::fabs(-std::log(q) - entropy) : std::numeric_limits<double>::infinity();
  };
  // Precomputed keys: a log() per comparison would dominate the sort.
  scores_.resize(cand_.size());
  for (size_t i = 0; i < scores_.size(); ++i) scores_[i] = score(static_cast<uint32_t>(i));
  std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
    return scores_[a] < scores_[b] || (scores_[a] == scores_[b] && Better{}(cand_[a], cand_[b]));
  });
  const double target = static_cast<double>(params_.typical_p);
  size_t keep = order_.size();
  double cum = 0.0;
  for (size_t i = 0; i < order_.size(); ++i) {
    cum += prob_[order_[i]];
    if (cum > target) {
      keep = i + 1;
      break;
    }
  }
  tmp_.clear();
  for (size_t i = 0; i < keep; ++i) tmp_.push_back(cand_[order_[i]]);
  std::sort(tmp_.begin(), tmp_.end(), Better{});
  cand_.swap(tmp_);
}

// Nucleus: the shortest best-first prefix whose probability reaches top_p (at least one token).
// Unsorted (top-k off) sets are not sorted whole: a best-first prefix is grown (selection, then a
// sort of the selected block) until it holds enough mass.
void Sampler::apply_top_p() {
  const double target = static_cast<double>(params_.top_p);
  if (std::is_sorted(cand_.begin(), cand_.end(), Better{})) {
    softmax(cand_, prob_);
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += prob_[i];
      if (cum >= target) {
        cand_.resize(i + 1);
        return;
      }
    }
    return;
  }
  float max_l = kNegInf;
  for (const auto& c : cand_) max_l = std::max(max_l, c.logit);
  double total = 0.0;
  for (const auto& c : cand_) total += std::exp(static_cast<double>(c.logit) - static_cast<double>(max_l));
  size_t sorted = 0;
  double cum = 0.0;
  for (size_t m = std::min<size_t>(1024, cand_.size());; m = std::min(m * 4, cand_.size())) {
    const auto first = cand_.begin() + static_cast<std::ptrdiff_t>(sorted);
    const auto middle = cand_.begin() + static_cast<std::ptrdiff_t>(m);
    std::nth_element(first, middle, cand_.end(), Better{});  // [first, middle) = the next best
    std::sort(first, middle, Better{});
    for (; sorted < m; ++sorted) {
      cum += std::exp(static_cast<double>(cand_[sorted].logit) - static_cast<double>(max_l)) / total;
      if (cum >= target) {
        cand_.resize(sorted + 1);
        return;
      }
    }
    if (m == cand_.size()) return;
  }
}

// min-p: keep tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p). Keeps order.
void Sampler::apply_min_p() {
  float max_l = kNegInf;
  for (const auto& c : cand_) max_l = std::max(max_l, c.logit);
  const float threshold = max_l + std::log(params_.min_p);
  size_t out = 0;
  for (const auto& c : cand_) {
    if (c.logit >= threshold) cand_[out++] = c;
  }
  cand_.resize(out);
}

// Temperature and final pick: weights exp((logit - max) / temp), i.e. softmax(logit / temp) without
// the overflow a tiny temperature would cause; then the first candidate (current order) whose
// running weight exceeds u * total.
int32_t Sampler::pick(float temp) {
  float max_l = kNegInf;
  for (const auto& c : cand_) max_l = std::max(max_l, c.logit);
  prob_.resize(cand_.size());
  const double inv_temp = 1.0 / static_cast<double>(temp);
  double total = 0.0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    prob_[i] = std::exp((static_cast<double>(cand_[i].logit) - static_cast<double>(max_l)) * inv_temp);
    total += prob_[i];
  }
  const double r = rng_.uniform() * total;
  double cum = 0.0;
  int32_t last_positive = cand_.front().id;
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (prob_[i] <= 0.0) continue;
    cum += prob_[i];
    last_positive = cand_[i].id;
    if (cum > r) return cand_[i].id;
  }
  return last_positive;  // only reached through rounding when r is within an ulp of total
}

bool Sampler::penalties_on() const {
  const SamplerParams& p = params_;
  return p.repeat_last_n != 0 && (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f);
}

bool Sampler::plain_argmax() const { return !(params_.temp > 0.0f) && params_.logit_bias.empty() && !penalties_on(); }

int32_t Sampler::banned_id() const { return params_.ignore_eos ? params_.eos_id : -1; }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) return -1;
  const SamplerParams& p = params_;
  const bool greedy = !(p.temp > 0.0f);
  // Greedy with nothing that changes a logit: the arg-max of the logits themselves, without the
  // working copy (a vocabulary-sized copy per token and sequence). An EOS that wins although
  // ignore_eos bans it takes the full path below, where it has -inf.
  if (plain_argmax()) {
    const int32_t tok = argmax_first(logits.data(), logits.size());
    if (!(p.ignore_eos && tok == p.eos_id)) return tok;
  }
  prepare(logits, history);
  if (greedy) return argmax_first(work_.data(), work_.size());

  // 3. top-k (or every token that is not banned).
  const size_t n = work_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    select_top_k(static_cast<size_t>(params_.top_k));
  } else {
    select_all();
  }
  if (cand_.empty()) return argmax_first(work_.data(), work_.size());  // everything banned: fall back to the (lowest) arg-max
  // A +inf logit (from a +inf bias) takes all the mass: keep only those, as equals.
  if (std::any_of(cand_.begin(), cand_.end(), [](const Candidate& c) { return c.logit == kPosInf; })) {
    size_t out = 0;
    for (const auto& c : cand_) {
      if (c.logit == kPosInf) cand_[out++] = {c.id, 0.0f};
    }
    cand_.resize(out);
  }

  // 4. typical, top-p, min-p (each off at its neutral value).
  if (params_.typical_p < 1.0f && cand_.size() > 1) apply_typical();
  if (params_.top_p < 1.0f && cand_.size() > 1) apply_top_p();
  if (params_.min_p > 0.0f && cand_.size() > 1) apply_min_p();

  // 5. temperature, 6. random pick.
  if (cand_.size() == 1) {
    rng_.uniform();  // consume one draw anyway, so the RNG stream does not depend on the set size
    return cand_.front().id;
  }
  return pick(params_.temp);
}

// ---------------------------------------------------------------------------------------------
// validate / parse_logit_bias

namespace {

[[noreturn]] void usage(const std::string& message) { throw Error(ErrorKind::Usage, message); }

}  // namespace

void validate(const SamplerParams& p) {
  if (std::isnan(p.temp)) usage(fmt::format("--temp must be a number, got {}", p.temp));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) usage(fmt::format("--top-p must be in (0, 1], got {}", p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) usage(fmt::format("--min-p must be in [0, 1], got {}", p.min_p));
  if (!(p.typical_p > 0.0f && p.typical_p <= 1.0f)) {
    usage(fmt::format("--typical must be in (0, 1], got {}", p.typical_p));
  }
  if (!(p.repeat_penalty > 0.0f) || std::isinf(p.repeat_penalty)) {
    usage(fmt::format("--repeat-penalty must be a finite number > 0, got {}", p.repeat_penalty));
  }
  if (p.repeat_last_n < -1) {
    usage(fmt::format("--repeat-last-n must be >= -1 (-1 = whole history, 0 = off), got {}", p.repeat_last_n));
  }
  if (!std::isfinite(p.presence_penalty)) {
    usage(fmt::format("--presence-penalty must be a finite number, got {}", p.presence_penalty));
  }
  if (!std::isfinite(p.frequency_penalty)) {
    usage(fmt::format("--frequency-penalty must be a finite number, got {}", p.frequency_penalty));
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0) usage(fmt::format("--logit-bias: token id must be >= 0, got {}", id));
    if (std::isnan(bias)) usage(fmt::format("--logit-bias: bias for token {} is NaN", id));
  }
}

std::pair<int32_t, float> parse_logit_bias(std::string_view text) {
  const auto bad = [&]() {
    usage(fmt::format("--logit-bias: expected ID(+/-)X such as 15043+1 or 15043-inf, got '{}'", text));
  };
  // ID: decimal digits.
  size_t pos = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  if (pos == 0 || pos == text.size()) bad();
  int32_t id = 0;
  {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + pos, id);
    if (ec != std::errc{} || end != text.data() + pos) {
      usage(fmt::format("--logit-bias: token id out of range in '{}'", text));
    }
  }
  // Sign.
  const char sign = text[pos++];
  if (sign != '+' && sign != '-') bad();
  // X: an unsigned decimal number, or inf / infinity (any case).
  const std::string_view value = text.substr(pos);
  if (value.empty()) bad();
  std::string lower(value);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  float magnitude = 0.0f;
  if (lower == "inf" || lower == "infinity") {
    magnitude = kPosInf;
  } else {
    const char first = value.front();
    if (!((first >= '0' && first <= '9') || first == '.')) bad();
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), magnitude);
    if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(magnitude)) bad();
  }
  return {id, sign == '-' ? -magnitude : magnitude};
}

}  // namespace bloomz
