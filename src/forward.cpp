// The BLOOM forward pass for one batch of tokens of one sequence (llama.cpp src/models/bloom.cpp):
//   x = LN(token_embd[tok]; token_embd_norm)
//   per layer: h = LN(x; attn_norm); qkv = W_qkv h + b; attention with ALiBi over the KV cache;
//              x = W_o attn + b_o + x; h = LN(x; ffn_norm); x = W_down gelu(W_up h + b_up) + b_down + x
//   logits = W_out LN(x; output_norm)        (no bias; W_out = output.weight or token_embd)
// Every matmul takes the whole batch, so each weight is read once per batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <limits>

#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/session.hpp"
#include "ops.hpp"

namespace bloomz {

// Scratch and KV storage of a session, sized once from the configuration.
struct Session::Buffers {
  int64_t n_batch = 0;
  std::vector<float> x;       // [n_batch][n_embd]   residual stream
  std::vector<float> cur;     // [n_batch][n_embd]   normalized input of a sublayer
  std::vector<float> qkv;     // [n_batch][3*n_embd] Q | K | V per token
  std::vector<float> attn;    // [n_batch][n_embd]   attention output, heads concatenated
  std::vector<float> proj;    // [n_batch][n_embd]   output of attn_output / ffn_down
  std::vector<float> ffn;     // [n_batch][n_ff]
  std::vector<float> slopes;  // [n_head]
  // KV cache, head-major so that one head's keys (values) are contiguous:
  // k[layer][head][pos][head_dim], either fp16 (k16) or f32 (k32); the same for v.
  std::vector<uint16_t> k16, v16;
  std::vector<float> k32, v32;
  // Per head: f32 copies of the head's keys and values (fp16 cache), and attention scores.
  std::vector<float> k_head, v_head;  // [n_head][n_ctx][head_dim]
  std::vector<float> scores;          // [n_head][n_ctx]
};

Session::Session(const Model& model, const SessionOptions& options) : model_(model), options_(options) {
  const BloomConfig& c = model.config();
  n_ctx_ = options.n_ctx > 0 ? options.n_ctx : c.n_ctx_train;
  if (options.n_batch < 1) throw Error(ErrorKind::Usage, fmt::format("--batch-size {} must be at least 1", options.n_batch));
  buf_ = std::make_unique<Buffers>();
  Buffers& b = *buf_;
  b.n_batch = std::min(options.n_batch, n_ctx_);
  const auto E = static_cast<size_t>(c.n_embd), T = static_cast<size_t>(b.n_batch);
  b.x.resize(T * E);
  b.cur.resize(T * E);
  b.qkv.resize(T * 3 * E);
  b.attn.resize(T * E);
  b.proj.resize(T * E);
  b.ffn.resize(T * static_cast<size_t>(c.n_ff));
  b.slopes = ops::alibi_slopes(c.n_head, c.max_alibi_bias);
  const size_t kv = static_cast<size_t>(c.n_layer) * E * static_cast<size_t>(n_ctx_);
  if (options.kv_type == KvType::F16) {
    b.k16.resize(kv);
    b.v16.resize(kv);
    b.k_head.resize(static_cast<size_t>(n_ctx_) * E);
    b.v_head.resize(static_cast<size_t>(n_ctx_) * E);
  } else {
    b.k32.resize(kv);
    b.v32.resize(kv);
  }
  b.scores.resize(static_cast<size_t>(c.n_head) * static_cast<size_t>(n_ctx_));
}

Session::~Session() = default;

void Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_) throw Error(ErrorKind::Runtime, fmt::format("cannot truncate a session of {} tokens to {}", n_past_, n));
  n_past_ = n;
}

std::span<const float> Session::eval(std::span<const int32_t> tokens, LogitsMode mode) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t V = model_.config().n_vocab;
  if (n == 0) throw Error(ErrorKind::Runtime, "no tokens to evaluate");
  if (n_past_ + n > n_ctx_) {
    throw Error(ErrorKind::Runtime, fmt::format("{} tokens do not fit in the context: {} already used of {} (-c/--ctx-size)", n, n_past_, n_ctx_));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= V) throw Error(ErrorKind::Runtime, fmt::format("token id {} is out of range (n_vocab {})", t, V));
  }
  const size_t rows = mode == LogitsMode::All ? static_cast<size_t>(n) : (mode == LogitsMode::Last ? 1 : 0);
  logits_.resize(rows * static_cast<size_t>(V));
  for (int64_t done = 0; done < n; done += buf_->n_batch) {
    const int64_t len = std::min(buf_->n_batch, n - done);
    const bool last_chunk = done + len == n;
    float* out = nullptr;
    if (mode == LogitsMode::All) out = logits_.data() + static_cast<size_t>(done) * static_cast<size_t>(V);
    if (mode == LogitsMode::Last && last_chunk) out = logits_.data();
    forward_batch(tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(len)), mode == LogitsMode::All,
                  mode == LogitsMode::Last && last_chunk, out);
  }
  return logits_;
}

void Session::forward_batch(std::span<const int32_t> tokens, bool want_all, bool want_last, float* logits_out) {
  const Model& m = model_;
  const BloomConfig& c = m.config();
  Buffers& b = *buf_;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t E = c.n_embd, F = c.n_ff, H = c.n_head, D = c.head_dim();
  const int64_t p0 = n_past_;
  const int64_t n_kv = p0 + T;
  const float eps = c.layer_norm_eps;
  const bool kv16 = options_.kv_type == KvType::F16;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(D));

  // x: [T][E] = LN(token_embd rows)
  for (int64_t t = 0; t < T; ++t) {
    float* xt = b.x.data() + t * E;
    dequantize_row(m.token_embd.type, m.token_embd.row(tokens[static_cast<size_t>(t)]), b.cur.data() + t * E, E);
    ops::layer_norm(b.cur.data() + t * E, xt, E, m.token_embd_norm_w, m.token_embd_norm_b, eps);
  }

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = m.layers[static_cast<size_t>(il)];
    // cur: [T][E] = LN(x; attn_norm)
    for (int64_t t = 0; t < T; ++t) ops::layer_norm(b.x.data() + t * E, b.cur.data() + t * E, E, L.attn_norm_w, L.attn_norm_b, eps);
    // qkv: [T][3E] = W_qkv cur + b
    matmul(L.attn_qkv, b.cur.data(), T, b.qkv.data(), ws_);
    for (int64_t t = 0; t < T; ++t) ops::add_bias(b.qkv.data() + t * 3 * E, L.attn_qkv_b, 3 * E);

    // Append K and V of the batch to the cache: layer il, head h, position p0 + t.
    const size_t layer_base = static_cast<size_t>(il) * static_cast<size_t>(E) * static_cast<size_t>(n_ctx_);
    for (int64_t t = 0; t < T; ++t) {
      const float* k = b.qkv.data() + t * 3 * E + E;
      const float* v = k + E;
      for (int64_t h = 0; h < H; ++h) {
        const size_t at = layer_base + (static_cast<size_t>(h) * static_cast<size_t>(n_ctx_) + static_cast<size_t>(p0 + t)) * static_cast<size_t>(D);
        if (kv16) {
          ops::f32_to_fp16(k + h * D, b.k16.data() + at, D);
          ops::f32_to_fp16(v + h * D, b.v16.data() + at, D);
        } else {
          std::memcpy(b.k32.data() + at, k + h * D, static_cast<size_t>(D) * sizeof(float));
          std::memcpy(b.v32.data() + at, v + h * D, static_cast<size_t>(D) * sizeof(float));
        }
      }
    }

    // Attention, one head per task: scores = (q . k) * scale + slope * -(p_q - p_k) for p_k <= p_q,
    // softmax (max-subtracted, sum in double), out = sum_k p_k v_k.
    parallel_for(0, H, [&](int64_t h) {
      const size_t head_base = layer_base + static_cast<size_t>(h) * static_cast<size_t>(n_ctx_) * static_cast<size_t>(D);
      const float* K;
      const float* Vv;
      if (kv16) {
        // The fp16 cache is widened once per head and batch, then shared by the batch's queries.
        const size_t scratch = static_cast<size_t>(h) * static_cast<size_t>(n_ctx_) * static_cast<size_t>(D);
        ops::fp16_to_f32(b.k16.data() + head_base, b.k_head.data() + scratch, n_kv * D);
        ops::fp16_to_f32(b.v16.data() + head_base, b.v_head.data() + scratch, n_kv * D);
        K = b.k_head.data() + scratch;
        Vv = b.v_head.data() + scratch;
      } else {
        K = b.k32.data() + head_base;
        Vv = b.v32.data() + head_base;
      }
      float* scores = b.scores.data() + static_cast<size_t>(h) * static_cast<size_t>(n_ctx_);
      const float slope = b.slopes[static_cast<size_t>(h)];
      float q[512];
      std::vector<float> qbig;
      float* qp = q;
      if (D > 512) {
        qbig.resize(static_cast<size_t>(D));
        qp = qbig.data();
      }
      for (int64_t t = 0; t < T; ++t) {
        std::memcpy(qp, b.qkv.data() + t * 3 * E + h * D, static_cast<size_t>(D) * sizeof(float));
        if (kv16) ops::round_to_fp16(qp, D);  // F16 K cache: llama.cpp converts Q to fp16 for the dot
        const int64_t pq = p0 + t;
        float max = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k <= pq; ++k) {
          const float* kr = K + k * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; ++d) dot += qp[d] * kr[d];
          const float s = dot * kq_scale + slope * static_cast<float>(k - pq);
          scores[k] = s;
          max = std::max(max, s);
        }
        double sum = 0.0;
        for (int64_t k = 0; k <= pq; ++k) {
          const float e = std::exp(scores[k] - max);
          scores[k] = e;
          sum += e;
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* out = b.attn.data() + t * E + h * D;
        std::fill(out, out + D, 0.0f);
        for (int64_t k = 0; k <= pq; ++k) {
          const float p = scores[k] * inv;
          const float* vr = Vv + k * D;
          for (int64_t d = 0; d < D; ++d) out[d] += p * vr[d];
        }
      }
    });

    // x = W_o attn + b_o + x
    matmul(L.attn_output, b.attn.data(), T, b.proj.data(), ws_);
    for (int64_t t = 0; t < T; ++t) {
      float* p = b.proj.data() + t * E;
      ops::add_bias(p, L.attn_output_b, E);
      float* xt = b.x.data() + t * E;
      for (int64_t i = 0; i < E; ++i) xt[i] = p[i] + xt[i];
    }

    // x = W_down gelu(W_up LN(x) + b_up) + b_down + x
    for (int64_t t = 0; t < T; ++t) ops::layer_norm(b.x.data() + t * E, b.cur.data() + t * E, E, L.ffn_norm_w, L.ffn_norm_b, eps);
    matmul(L.ffn_up, b.cur.data(), T, b.ffn.data(), ws_);
    for (int64_t t = 0; t < T; ++t) {
      ops::add_bias(b.ffn.data() + t * F, L.ffn_up_b, F);
      ops::gelu(b.ffn.data() + t * F, F);
    }
    matmul(L.ffn_down, b.ffn.data(), T, b.proj.data(), ws_);
    for (int64_t t = 0; t < T; ++t) {
      float* p = b.proj.data() + t * E;
      ops::add_bias(p, L.ffn_down_b, E);
      float* xt = b.x.data() + t * E;
      for (int64_t i = 0; i < E; ++i) xt[i] = p[i] + xt[i];
    }
  }
  n_past_ += T;

  // logits = W_out LN(x; output_norm), for every row or only the last one.
  if (want_all || want_last) {
    const int64_t first = want_all ? 0 : T - 1;
    const int64_t rows = T - first;
    for (int64_t t = first; t < T; ++t) {
      ops::layer_norm(b.x.data() + t * E, b.cur.data() + (t - first) * E, E, m.output_norm_w, m.output_norm_b, eps);
    }
    matmul(m.output, b.cur.data(), rows, logits_out, ws_);
  }
}

}  // namespace bloomz
