// Perplexity, KL divergence against a saved base, and continuation scoring (see eval.hpp).
#include "eval.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>

#include "bloomz/error.hpp"

namespace bloomz::eval {

namespace {

// Logits of at most this many bytes are requested from one eval() call (a 250 880-token
// vocabulary makes one row 1 MB).
constexpr int64_t kMaxLogitBytes = int64_t(256) << 20;

struct SoftmaxNorm {
  float max_logit;
  int32_t argmax;
  double log_sum_exp;  // log sum exp(l - max)
};

SoftmaxNorm softmax_norm(std::span<const float> logits) {
  SoftmaxNorm n{logits[0], 0, 0.0};
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > n.max_logit) {
      n.max_logit = logits[i];
      n.argmax = static_cast<int32_t>(i);
    }
  }
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - n.max_logit);
  n.log_sum_exp = std::log(sum);
  return n;
}

// Evaluates tokens[from, to) on the session (which holds tokens[0, from)) and calls
// row(position, logits) for every position, in pieces small enough for the logits buffer.
template <typename RowFn>
void eval_rows(Session& s, std::span<const int32_t> tokens, int64_t from, int64_t to, RowFn&& row) {
  const int64_t n_vocab = s.n_vocab();
  const int64_t piece = std::max<int64_t>(1, kMaxLogitBytes / (n_vocab * 4));
  for (int64_t at = from; at < to; at += piece) {
    const int64_t n = std::min(piece, to - at);
    auto logits = s.eval(tokens.subspan(static_cast<size_t>(at), static_cast<size_t>(n)), LogitsMode::All);
    for (int64_t r = 0; r < n; ++r) {
      row(at + r, logits.subspan(static_cast<size_t>(r * n_vocab), static_cast<size_t>(n_vocab)));
    }
  }
}

// Clears the session and evaluates chunk[0, first) without logits, then calls row(j, logits)
// for the positions j = first .. n_ctx-2 (the last token of the chunk is never needed).
template <typename RowFn>
void eval_chunk(Session& s, std::span<const int32_t> chunk, int64_t first, RowFn&& row) {
  s.reset();
  if (first > 0) s.eval(chunk.first(static_cast<size_t>(first)), LogitsMode::None);
  eval_rows(s, chunk, first, static_cast<int64_t>(chunk.size()) - 1, row);
}

template <typename T>
void write_raw(std::ostream& out, const T* data, size_t n) {
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
}

template <typename T>
void read_raw(std::istream& in, T* data, size_t n, const std::string& path, const char* what) {
  const std::streamoff at = in.tellg();
  in.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
  if (!in) {
    throw Error(ErrorKind::Format, fmt::format("{}: truncated KL-divergence base file: cannot read {} at byte offset {}",
                                               path, what, static_cast<long long>(at)));
  }
}

}  // namespace

double token_logprob(std::span<const float> logits, int32_t tok) {
  const SoftmaxNorm n = softmax_norm(logits);
  return static_cast<double>(logits[static_cast<size_t>(tok)]) - n.max_logit - n.log_sum_exp;
}

double PerplexityStats::ppl() const { return count > 0 ? std::exp(nll / static_cast<double>(count)) : 0.0; }

double PerplexityStats::ppl_uncertainty() const {
  if (count < 2) return 0.0;
  const double mean = nll / static_cast<double>(count);
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  if (!(var > 0)) return 0.0;
  return std::sqrt(var / static_cast<double>(count - 1)) * std::exp(mean);
}

int64_t kld_record_words(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

void pack_log_probs(std::span<const float> logits, uint16_t* record) {
  const SoftmaxNorm n = softmax_norm(logits);
  float min_logit = *std::min_element(logits.begin(), logits.end());
  min_logit = std::max(min_logit, n.max_logit - 16.0f);
  const float log_sum_exp = static_cast<float>(n.log_sum_exp);
  const float min_log_prob = min_logit - n.max_logit - log_sum_exp;
  const float scale = (n.max_logit - min_logit) / 65535.0f;
  std::memcpy(record, &scale, 4);
  std::memcpy(record + 2, &min_log_prob, 4);
  uint16_t* q = record + 4;
  const size_t words = static_cast<size_t>(kld_record_words(static_cast<int64_t>(logits.size())) - 4);
  std::fill(q, q + words, uint16_t{0});
  if (scale > 0) {
    const float inv = 1.0f / scale;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] > min_logit) q[i] = static_cast<uint16_t>(std::lrintf(inv * (logits[i] - min_logit)));
    }
  }
}

PerplexityStats perplexity(Session& session, std::span<const int32_t> tokens, int64_t n_ctx, int64_t n_chunks,
                           std::ostream* base_out, const ChunkCallback& on_chunk) {
  if (n_ctx < 3) throw Error(ErrorKind::Usage, fmt::format("perplexity: -c/--ctx-size {} is too small (at least 3)", n_ctx));
  if (n_ctx > session.n_ctx()) {
    throw Error(ErrorKind::Runtime, fmt::format("perplexity: chunk of {} tokens exceeds the session context {}", n_ctx, session.n_ctx()));
  }
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  int64_t n_chunk = n_tokens / n_ctx;
  if (n_chunks >= 0) n_chunk = std::min(n_chunk, n_chunks);
  if (n_chunk < 1) {
    throw Error(ErrorKind::Runtime, fmt::format("perplexity: the text has {} tokens, fewer than one chunk of {} (-c/--ctx-size)",
                                                n_tokens, n_ctx));
  }
  const int64_t n_vocab = session.n_vocab();
  const int64_t words = kld_record_words(n_vocab);
  const int64_t first = n_ctx / 2;
  std::vector<uint16_t> records;
  if (base_out != nullptr) {
    const int32_t hdr[3] = {static_cast<int32_t>(n_ctx), static_cast<int32_t>(n_vocab), static_cast<int32_t>(n_chunk)};
    base_out->write("_logits_", 8);
    write_raw(*base_out, hdr, 3);
    write_raw(*base_out, tokens.data(), static_cast<size_t>(n_chunk * n_ctx));
    records.resize(static_cast<size_t>((n_ctx - 1 - first) * words));
  }
  PerplexityStats st;
  for (int64_t c = 0; c < n_chunk; ++c) {
    const auto chunk = tokens.subspan(static_cast<size_t>(c * n_ctx), static_cast<size_t>(n_ctx));
    eval_chunk(session, chunk, first, [&](int64_t j, std::span<const float> row) {
      const double v = -token_logprob(row, chunk[static_cast<size_t>(j + 1)]);
      st.nll += v;
      st.nll2 += v * v;
      ++st.count;
      if (base_out != nullptr) pack_log_probs(row, records.data() + (j - first) * words);
    });
    if (base_out != nullptr) {
      write_raw(*base_out, records.data(), records.size());
      if (!*base_out) throw Error(ErrorKind::Io, "perplexity: writing the KL-divergence base file failed");
    }
    if (on_chunk) on_chunk(c, st);
  }
  return st;
}

KldBaseHeader read_kld_header(std::istream& in, const std::string& path) {
  char magic[8] = {};
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "_logits_", 8) != 0) {
    throw Error(ErrorKind::Format, fmt::format("{}: not a KL-divergence base file (no \"_logits_\" magic at byte offset 0)", path));
  }
  KldBaseHeader h;
  int32_t hdr[3];
  read_raw(in, hdr, 3, path, "n_ctx, n_vocab, n_chunk");
  h.n_ctx = hdr[0];
  h.n_vocab = hdr[1];
  h.n_chunk = hdr[2];
  if (h.n_ctx < 3 || h.n_vocab < 1 || h.n_chunk < 1 || int64_t(h.n_ctx) * h.n_chunk > (int64_t(1) << 31)) {
    throw Error(ErrorKind::Format, fmt::format("{}: bad header at byte offset 8: n_ctx {}, n_vocab {}, n_chunk {}", path,
                                               h.n_ctx, h.n_vocab, h.n_chunk));
  }
  h.tokens.resize(static_cast<size_t>(h.n_ctx) * static_cast<size_t>(h.n_chunk));
  read_raw(in, h.tokens.data(), h.tokens.size(), path, "the tokens");
  return h;
}

std::pair<double, double> mean_and_uncertainty(double sum, double sum2, int64_t count) {
  if (count < 1) return {0.0, 0.0};
  const double f = sum / static_cast<double>(count);
  double df = sum2 / static_cast<double>(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.0;
  return {f, df};
}

KldStats kl_divergence(Session& session, const KldBaseHeader& h, std::istream& in, const std::string& path,
                       const KldChunkCallback& on_chunk) {
  const int64_t n_vocab = session.n_vocab();
  if (h.n_vocab != n_vocab) {
    throw Error(ErrorKind::Runtime, fmt::format("{}: the base file has a vocabulary of {} tokens, the model {}", path, h.n_vocab, n_vocab));
  }
  if (h.n_ctx > session.n_ctx()) {
    throw Error(ErrorKind::Runtime, fmt::format("{}: computed with a context of {}, more than the model's {}", path, h.n_ctx, session.n_ctx()));
  }
  for (int32_t t : h.tokens) {
    if (t < 0 || t >= n_vocab) throw Error(ErrorKind::Format, fmt::format("{}: token id {} out of range", path, t));
  }
  const int64_t n_ctx = h.n_ctx, first = n_ctx / 2, words = kld_record_words(n_vocab);
  std::vector<uint16_t> records(static_cast<size_t>((n_ctx - 1 - first) * words));
  KldStats k;
  const std::span<const int32_t> tokens(h.tokens);
  for (int64_t c = 0; c < h.n_chunk; ++c) {
    read_raw(in, records.data(), records.size(), path, fmt::format("the log-probs of chunk {}", c + 1).c_str());
    const auto chunk = tokens.subspan(static_cast<size_t>(c * n_ctx), static_cast<size_t>(n_ctx));
    eval_chunk(session, chunk, first, [&](int64_t j, std::span<const float> row) {
      const uint16_t* rec = records.data() + (j - first) * words;
      float scale, min_log_prob;
      std::memcpy(&scale, rec, 4);
      std::memcpy(&min_log_prob, rec + 2, 4);
      const uint16_t* q = rec + 4;
      const int32_t tok = chunk[static_cast<size_t>(j + 1)];
      const SoftmaxNorm n = softmax_norm(row);
      const double log_z = n.max_logit + n.log_sum_exp;  // log p[i] = l[i] - log_z
      const double nll = log_z - row[static_cast<size_t>(tok)];
      const double nll_base = -(static_cast<double>(scale) * q[tok] + min_log_prob);
      k.q.nll += nll;
      k.q.nll2 += nll * nll;
      k.base.nll += nll_base;
      k.base.nll2 += nll_base * nll_base;
      k.sum_nll_nll_base += nll * nll_base;
      double kld = 0;
      int32_t imax_base = 0;
      float best_base = 0;
      for (int64_t i = 0; i < n_vocab; ++i) {
        const float lp_base = scale * q[i] + min_log_prob;
        if (i == 0 || lp_base > best_base) {
          best_base = lp_base;
          imax_base = static_cast<int32_t>(i);
        }
        if (lp_base > -16.0f) kld += std::exp(static_cast<double>(lp_base)) * (lp_base - (row[static_cast<size_t>(i)] - log_z));
      }
      k.sum_kld += kld;
      k.sum_kld2 += kld * kld;
      if (imax_base == n.argmax) ++k.n_same_top;
      const double p_diff = std::exp(-nll) - std::exp(-nll_base);
      k.sum_p_diff += p_diff;
      k.sum_p_diff2 += p_diff * p_diff;
      k.sum_p_diff4 += p_diff * p_diff * p_diff * p_diff;
      k.kld_values.push_back(static_cast<float>(kld));
      k.p_diff_values.push_back(static_cast<float>(p_diff));
      ++k.count;
      ++k.q.count;
      ++k.base.count;
    });
    if (on_chunk) on_chunk(c, k);
  }
  return k;
}

ChoiceScore ContinuationScorer::score(std::span<const int32_t> prefix, std::span<const int32_t> continuation) {
  if (prefix.empty()) throw Error(ErrorKind::Runtime, "the prompt is empty (it tokenizes to no tokens)");
  if (continuation.empty()) throw Error(ErrorKind::Runtime, "a choice is empty (it tokenizes to no tokens)");
  const int64_t n_prefix = static_cast<int64_t>(prefix.size());
  const int64_t n_total = n_prefix + static_cast<int64_t>(continuation.size());
  if (n_total > session_.n_ctx()) {
    throw Error(ErrorKind::Runtime, fmt::format("prompt and choice have {} tokens, more than the context of {} (-c/--ctx-size)",
                                                n_total, session_.n_ctx()));
  }
  std::vector<int32_t> seq(prefix.begin(), prefix.end());
  seq.insert(seq.end(), continuation.begin(), continuation.end());
  int64_t keep = 0;
  if (share_) {
    const int64_t limit = std::min<int64_t>(static_cast<int64_t>(cached_.size()), n_prefix - 1);
    while (keep < limit && cached_[static_cast<size_t>(keep)] == seq[static_cast<size_t>(keep)]) ++keep;
  }
  session_.truncate(std::min<int64_t>(keep, session_.n_past()));
  keep = session_.n_past();
  cached_.resize(static_cast<size_t>(keep));
  // Positions keep .. n_prefix-2 need no logits; n_prefix-1 .. n_total-2 predict the choice.
  if (keep < n_prefix - 1) {
    session_.eval(std::span<const int32_t>(seq).subspan(static_cast<size_t>(keep), static_cast<size_t>(n_prefix - 1 - keep)),
                  LogitsMode::None);
    evaluated_ += n_prefix - 1 - keep;
  }
  ChoiceScore r;
  // The last choice token is evaluated too so the cache holds the whole sequence (a later
  // sequence may extend it); its logits are not needed.
  eval_rows(session_, seq, n_prefix - 1, n_total, [&](int64_t j, std::span<const float> row) {
    if (j + 1 < n_total) r.sum += token_logprob(row, seq[static_cast<size_t>(j + 1)]);
  });
  evaluated_ += n_total - (n_prefix - 1);
  cached_ = std::move(seq);
  r.n_tokens = static_cast<int64_t>(continuation.size());
  r.mean = r.sum / static_cast<double>(r.n_tokens);
  return r;
}

}  // namespace bloomz::eval
