// The BLOOM forward pass (llama.cpp src/models/bloom.cpp) over a batch of rows, each row one token
// of some session at some position:
//   x = LN(token_embd[tok]; token_embd_norm)
//   per layer: h = LN(x; attn_norm); qkv = W_qkv h + b; attention with ALiBi over the row's KV cache;
//              x = W_o attn + b_o + x; h = LN(x; ffn_norm); x = W_down gelu(W_up h + b_up) + b_down + x
//   logits = W_out LN(x; output_norm)        (no bias; W_out = output.weight or token_embd)
// Every matmul takes all rows at once, so each weight is read once per batch. A prompt is a batch
// of rows of one session; --parallel decoding is a batch of one row per session. The matmul gives
// each row the same bits whatever the batch, so both give exactly what one row alone gives.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <memory>
#include <cstdlib>
#include <atomic>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/session.hpp"
#include "ops.hpp"

namespace bloomz {

struct Session::Row {
  Session* session;
  int64_t pos;
  int32_t token;
};

// A heap array left uninitialized: the kernel maps its pages on first write, so a KV cache of
// n_ctx positions costs memory only for the positions actually used (a zero-filled std::vector
// would touch every page up front: 200 MB per 2048-position 560m session). It starts on a 2 MiB
// boundary so that it can later be moved to transparent huge pages (use_huge_pages).
template <typename T>
struct LazyArray {
  static constexpr size_t kHuge = size_t{2} << 20;
  struct Free {
    void operator()(T* q) const { std::free(q); }
  };
  std::unique_ptr<T[], Free> p;
  size_t n = 0, bytes = 0;
  void allocate(size_t count) {
    bytes = (count * sizeof(T) + kHuge - 1) / kHuge * kHuge;
    p.reset(static_cast<T*>(std::aligned_alloc(kHuge, bytes)));
    if (!p) throw Error(ErrorKind::Runtime, fmt::format("out of memory allocating a KV cache of {} bytes", bytes));
    n = count;
  }
  bool empty() const { return n == 0; }
  T* data() { return p.get(); }
  // Asks the kernel to back the whole array with 2 MiB pages, now (MADV_COLLAPSE: the pages
  // touched so far are copied, the rest committed) and for later faults (MADV_HUGEPAGE). Attention
  // streams each head's keys and values, hundreds of KB contiguous: with 4 KiB pages the hardware
  // prefetchers stop at every page and the TLB misses every 4 KiB; on 2 MiB pages it streams ~15 %
  // faster (kernel-bench --attn-depths 1920). A no-op where the kernel refuses (THP off, old Linux).
  void use_huge_pages() {
#if defined(__linux__)
    if (empty()) return;
    constexpr int kMadvCollapse = 25;  // MADV_COLLAPSE (Linux 6.1), missing from older headers
    ::madvise(p.get(), bytes, MADV_HUGEPAGE);
    ::madvise(p.get(), bytes, kMadvCollapse);
#endif
  }
};

// A session's KV cache moves to huge pages once this many positions are in use: from there on
// attention reads more cache than the first touch of the whole cache costs (one copy, ~200 MB for
// a 2048-position 560m f16 cache), and short sessions keep the lazily mapped small footprint.
constexpr int64_t kHugePagesFrom = 512;

// Bytes of its next region each idle worker prefetches while the caller runs the steps between two
// decoding matmuls alone: 512 KB made a Zen 4 token 0.1-0.9 % (1b7) and 2-3 % (560m) faster, 256 KB
// less (docs/performance.md § 3.15). Where L2 is smaller the rest lands in L3.
constexpr int64_t kPrefetchHintBytes = int64_t(512) << 10;

// Activations (sized for the largest batch seen) and the KV cache of a session.
struct Session::Buffers {
  int64_t n_batch = 0;
  std::vector<float> x;       // [rows][n_embd]   residual stream
  std::vector<float> cur;     // [rows][n_embd]   normalized input of a sublayer
  std::vector<float> qkv;     // [rows][3*n_embd] Q | K | V per token
  std::vector<float> attn;    // [rows][n_embd]   attention output, heads concatenated
  std::vector<float> proj;    // [rows][n_embd]   output of attn_output / ffn_down
  std::vector<float> ffn;     // [rows][n_ff]
  std::vector<float> slopes;  // [n_head]
  // KV cache, head-major so that one head's keys (values) are contiguous:
  // [layer][head][pos][head_dim], fp16 (k16, v16), f32 (k32, v32) or q8_0 blocks (k8, v8: a row
  // of head_dim / 32 blocks, kv_row_bytes(Q8_0, head_dim) bytes, per layer, head and position).
  LazyArray<uint16_t> k16, v16;
  LazyArray<float> k32, v32;
  LazyArray<std::byte> k8, v8;
  std::vector<float> scores;          // [n_head][n_ctx]
  // [layer][head]: an upper bound of the norm of every cached key (ops::alibi_first_key), or
  // infinity once a key or value outside the fp16 range was stored (then every key is read: an
  // infinite value times a zero weight would not be zero).
  std::vector<float> key_norm_max;
  std::atomic<int64_t> kv_rows_read{0};  // Session::kv_rows_read
  bool huge_pages = false;            // use_huge_pages done

  void use_huge_pages() {
    huge_pages = true;
    k16.use_huge_pages();
    v16.use_huge_pages();
    k32.use_huge_pages();
    v32.use_huge_pages();
    k8.use_huge_pages();
    v8.use_huge_pages();
  }

  void reserve_rows(int64_t rows, int64_t n_embd, int64_t n_ff) {
    const auto r = static_cast<size_t>(rows), E = static_cast<size_t>(n_embd);
    if (x.size() >= r * E) return;
    x.resize(r * E);
    cur.resize(r * E);
    qkv.resize(r * 3 * E);
    attn.resize(r * E);
    proj.resize(r * E);
    ffn.resize(r * static_cast<size_t>(n_ff));
  }
};

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::Q8_0: return "q8_0";
    default: return "f16";
  }
}

int64_t kv_row_bytes(KvType t, int64_t n) {
  switch (t) {
    case KvType::F32: return 4 * n;
    case KvType::Q8_0: return n / 32 * 34;  // block_q8_0: fp16 scale + 32 int8
    default: return 2 * n;
  }
}

Session::Session(const Model& model, const SessionOptions& options) : model_(model), options_(options) {
  const BloomConfig& c = model.config();
  n_ctx_ = options.n_ctx > 0 ? options.n_ctx : c.n_ctx_train;
  if (options.n_batch < 1) throw Error(ErrorKind::Usage, fmt::format("--batch-size {} must be at least 1", options.n_batch));
  buf_ = std::make_unique<Buffers>();
  Buffers& b = *buf_;
  b.n_batch = std::min(options.n_batch, n_ctx_);  // activation rows are sized by the first evals, up to this
  b.slopes = ops::alibi_slopes(c.n_head, c.max_alibi_bias);
  const size_t E = static_cast<size_t>(c.n_embd);
  const size_t kv = static_cast<size_t>(c.n_layer) * E * static_cast<size_t>(n_ctx_);
  if (options.kv_type == KvType::Q8_0) {
    const int64_t D = c.head_dim();
    if (D % 32 != 0) {
      throw Error(ErrorKind::Usage, fmt::format("--kv-type q8_0: the model's head dimension {} (n_embd {} / n_head {}) is not a multiple of 32",
                                                D, c.n_embd, c.n_head));
    }
    const size_t bytes = static_cast<size_t>(c.n_layer) * static_cast<size_t>(c.n_head) * static_cast<size_t>(n_ctx_) *
                         static_cast<size_t>(kv_row_bytes(KvType::Q8_0, D));
    b.k8.allocate(bytes);
    b.v8.allocate(bytes);
  } else if (options.kv_type == KvType::F16) {
    b.k16.allocate(kv);
    b.v16.allocate(kv);
  } else {
    b.k32.allocate(kv);
    b.v32.allocate(kv);
  }
  b.scores.resize(static_cast<size_t>(c.n_head) * static_cast<size_t>(n_ctx_));
  b.key_norm_max.assign(static_cast<size_t>(c.n_layer) * static_cast<size_t>(c.n_head), 0.0f);
}

Session::~Session() = default;

int64_t Session::kv_rows_read() const { return buf_->kv_rows_read.load(std::memory_order_relaxed); }

void Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_) throw Error(ErrorKind::Runtime, fmt::format("cannot truncate a session of {} tokens to {}", n_past_, n));
  n_past_ = n;
}

namespace {

void check_tokens(std::span<const int32_t> tokens, int64_t n_vocab) {
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) throw Error(ErrorKind::Runtime, fmt::format("token id {} is out of range (n_vocab {})", t, n_vocab));
  }
}

}  // namespace

std::span<const float> Session::eval(std::span<const int32_t> tokens, LogitsMode mode) {
  eval_chunks(tokens, mode, true);
  return logits_;
}

void Session::eval_chunks(std::span<const int32_t> tokens, LogitsMode mode, bool run_head) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t V = model_.config().n_vocab;
  if (n == 0) throw Error(ErrorKind::Runtime, "no tokens to evaluate");
  if (n_past_ + n > n_ctx_) {
    throw Error(ErrorKind::Runtime, fmt::format("{} tokens do not fit in the context: {} already used of {} (-c/--ctx-size)", n, n_past_, n_ctx_));
  }
  check_tokens(tokens, V);
  const size_t rows = !run_head || mode == LogitsMode::None ? 0 : (mode == LogitsMode::All ? static_cast<size_t>(n) : 1);
  logits_.resize(rows * static_cast<size_t>(V));
  std::vector<Row> batch;
  buf_->reserve_rows(std::min(buf_->n_batch, n), model_.config().n_embd, model_.config().n_ff);
  for (int64_t done = 0; done < n; done += buf_->n_batch) {
    const int64_t len = std::min(buf_->n_batch, n - done);
    const bool last_chunk = done + len == n;
    batch.clear();
    for (int64_t i = 0; i < len; ++i) batch.push_back({this, n_past_ + i, tokens[static_cast<size_t>(done + i)]});
    float* out = nullptr;
    if (run_head && mode == LogitsMode::All) out = logits_.data() + static_cast<size_t>(done) * static_cast<size_t>(V);
    if (run_head && mode == LogitsMode::Last && last_chunk) out = logits_.data();
    forward_rows(batch, *buf_, mode == LogitsMode::All, mode == LogitsMode::Last && last_chunk, out);
  }
}

std::optional<int32_t> Session::eval_argmax(std::span<const int32_t> tokens, int32_t banned) {
  const HeadScreen* screen = model_.head_screen();
  if (screen == nullptr) {
    eval(tokens, LogitsMode::Last);
    return std::nullopt;
  }
  eval_chunks(tokens, LogitsMode::Last, false);
  const float* x = buf_->cur.data();  // the last row's head input (forward_rows)
  if (std::optional<int32_t> id = screen->argmax(x, banned, screen_scratch_, ws_)) return id;
  logits_.resize(static_cast<size_t>(model_.config().n_vocab));
  matmul(model_.output, x, 1, logits_.data(), ws_);
  return std::nullopt;
}

std::span<const float> Session::eval_together(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  if (sessions.empty() || sessions.size() != tokens.size()) throw Error(ErrorKind::Runtime, "eval_together: one token per session");
  Session& first = *sessions[0];
  const Model& model = first.model_;
  std::vector<Row> rows;
  for (size_t i = 0; i < sessions.size(); ++i) {
    Session& s = *sessions[i];
    if (&s.model_ != &model) throw Error(ErrorKind::Runtime, "eval_together: sessions of different models");
    if (std::find(sessions.begin(), sessions.begin() + static_cast<long>(i), &s) != sessions.begin() + static_cast<long>(i)) {
      throw Error(ErrorKind::Runtime, "eval_together: a session appears twice");
    }
    if (s.n_past_ + 1 > s.n_ctx_) throw Error(ErrorKind::Runtime, fmt::format("sequence {}: the context of {} is full", i, s.n_ctx_));
    rows.push_back({&s, s.n_past_, tokens[i]});
  }
  check_tokens(tokens, model.config().n_vocab);
  const int64_t V = model.config().n_vocab;
  first.logits_.resize(rows.size() * static_cast<size_t>(V));
  first.buf_->reserve_rows(static_cast<int64_t>(rows.size()), model.config().n_embd, model.config().n_ff);
  forward_rows(rows, *first.buf_, true, false, first.logits_.data());
  return first.logits_;
}

void Session::forward_rows(std::span<const Row> rows, Buffers& b, bool want_all, bool want_last, float* logits_out) {
  const Model& m = rows[0].session->model_;
  MatmulWorkspace& ws = rows[0].session->ws_;
  const BloomConfig& c = m.config();
  const int64_t T = static_cast<int64_t>(rows.size());
  const int64_t E = c.n_embd, F = c.n_ff, H = c.n_head, D = c.head_dim();
  const float eps = c.layer_norm_eps;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(D));

  // Decoding: while the caller runs the steps between two matmuls alone, the idle workers prefetch
  // the first bytes of their regions of the next matrix (matmul_prefetch_hint).
  auto hint = [&](const TensorView& w) {
    if (T < 4) matmul_prefetch_hint(w, kPrefetchHintBytes);
  };
  hint(m.layers[0].attn_qkv);

  // The per-row steps between matmuls run one row per task: with several sequences decoding
  // together they would otherwise leave the other threads waiting.
  // x: [T][E] = LN(token_embd rows)
  parallel_for(0, T, [&](int64_t t) {
    dequantize_matrix_row(m.token_embd, rows[static_cast<size_t>(t)].token, b.cur.data() + t * E);
    ops::layer_norm(b.cur.data() + t * E, b.x.data() + t * E, E, m.token_embd_norm_w, m.token_embd_norm_b, eps);
  });

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = m.layers[static_cast<size_t>(il)];
    // cur: [T][E] = LN(x; attn_norm)
    parallel_for(0, T, [&](int64_t t) { ops::layer_norm(b.x.data() + t * E, b.cur.data() + t * E, E, L.attn_norm_w, L.attn_norm_b, eps); });
    // qkv: [T][3E] = W_qkv cur + b
    matmul(L.attn_qkv, b.cur.data(), T, b.qkv.data(), ws);
    hint(L.attn_output);

    // Add the bias, then store each row's K and V in its session's cache at (layer il, head h, position pos).
    parallel_for(0, T, [&](int64_t t) {
      ops::add_bias(b.qkv.data() + t * 3 * E, L.attn_qkv_b, 3 * E);
      const Row& row = rows[static_cast<size_t>(t)];
      Buffers& kv = *row.session->buf_;
      const size_t n_ctx = static_cast<size_t>(row.session->n_ctx_);
      const size_t layer_base = static_cast<size_t>(il) * static_cast<size_t>(E) * n_ctx;
      const float* k = b.qkv.data() + t * 3 * E + E;
      const float* v = k + E;
      for (int64_t h = 0; h < H; ++h) {
        const size_t at = layer_base + (static_cast<size_t>(h) * n_ctx + static_cast<size_t>(row.pos)) * static_cast<size_t>(D);
        if (!kv.k8.empty()) {  // the same layout in q8_0 rows: byte offset = row index * row bytes
          const size_t at8 = at / static_cast<size_t>(D) * static_cast<size_t>(kv_row_bytes(KvType::Q8_0, D));
          quantize_row_q8_0(k + h * D, kv.k8.data() + at8, D);
          quantize_row_q8_0(v + h * D, kv.v8.data() + at8, D);
        } else if (!kv.k16.empty()) {
          to_fp16(k + h * D, kv.k16.data() + at, D);
          to_fp16(v + h * D, kv.v16.data() + at, D);
        } else {
          std::memcpy(kv.k32.data() + at, k + h * D, static_cast<size_t>(D) * sizeof(float));
          std::memcpy(kv.v32.data() + at, v + h * D, static_cast<size_t>(D) * sizeof(float));
        }
      }
    });

    // Attention, one head per task: score_k = (q . k_k) * scale + slope * -(pos - k) for k <= pos,
    // softmax (max-subtracted, sum in double), out = sum_k p_k v_k. An fp16 or q8_0 cache is read
    // as it is by the kernel table's attention; an f32 cache takes the plain loops below. Keys far
    // enough behind that ALiBi zeroes their weight exactly are not read (ops::alibi_first_key): the
    // kernels see the cache from `first` on, positions shifted by the same amount.
    const size_t norm_at = static_cast<size_t>(il * H);
    parallel_for(0, H, [&](int64_t h) {
      const float slope = b.slopes[static_cast<size_t>(h)];
      for (int64_t t = 0; t < T; ++t) {  // this head's key bound, over the keys just stored
        const float* k = b.qkv.data() + t * 3 * E + E + h * D;
        const float* v = k + E;
        double norm2 = 0;
        bool in_range = true;
        for (int64_t d = 0; d < D; ++d) {
          norm2 += static_cast<double>(k[d]) * static_cast<double>(k[d]);
          in_range = in_range && std::fabs(k[d]) < 65504.0f && std::fabs(v[d]) < 65504.0f;
        }
        float& bound = rows[static_cast<size_t>(t)].session->buf_->key_norm_max[norm_at + static_cast<size_t>(h)];
        const float norm = std::nextafter(static_cast<float>(std::sqrt(norm2)), std::numeric_limits<float>::infinity());
        bound = in_range ? std::max(bound, norm) : std::numeric_limits<float>::infinity();
      }
      // The span of keys read for a run of rows of one session: [lowest first, highest position].
      Session* run_session = nullptr;
      int64_t run_first = 0, run_end = 0;
      auto count_run = [&] {
        if (run_session != nullptr) run_session->buf_->kv_rows_read.fetch_add(run_end - run_first, std::memory_order_relaxed);
      };
      for (int64_t t = 0; t < T; ++t) {
        const Row& row = rows[static_cast<size_t>(t)];
        Buffers& kv = *row.session->buf_;
        const size_t n_ctx = static_cast<size_t>(row.session->n_ctx_);
        const float* q = b.qkv.data() + t * 3 * E + h * D;
        double q_norm2 = 0;
        for (int64_t d = 0; d < D; ++d) q_norm2 += static_cast<double>(q[d]) * static_cast<double>(q[d]);
        const int64_t first = !row.session->options_.alibi_skip
                                  ? 0
                                  : ops::alibi_first_key(row.pos, slope, kq_scale, std::sqrt(q_norm2), kv.key_norm_max[norm_at + static_cast<size_t>(h)]);
        const size_t head_base = ((static_cast<size_t>(il) * static_cast<size_t>(H) + static_cast<size_t>(h)) * n_ctx + static_cast<size_t>(first)) *
                                 static_cast<size_t>(D);
        const int64_t n_kv = row.pos + 1 - first, pos = row.pos - first;
        if (row.session != run_session) {
          count_run();
          run_session = row.session;
          run_first = first;
          run_end = row.pos + 1;
        }
        run_first = std::min(run_first, first);
        run_end = std::max(run_end, row.pos + 1);
        float* scores = kv.scores.data() + static_cast<size_t>(h) * n_ctx;
        float* out = b.attn.data() + t * E + h * D;
        if (!kv.k8.empty()) {
          const size_t base8 = head_base / static_cast<size_t>(D) * static_cast<size_t>(kv_row_bytes(KvType::Q8_0, D));
          attention_q8_0(q, kv.k8.data() + base8, kv.v8.data() + base8, n_kv, D, pos, kq_scale, slope, scores, out);
          continue;
        }
        if (!kv.k16.empty()) {
          attention_f16(q, kv.k16.data() + head_base, kv.v16.data() + head_base, n_kv, D, pos, kq_scale, slope, scores, out);
          continue;
        }
        const float* K = kv.k32.data() + head_base;
        const float* Vv = kv.v32.data() + head_base;
        float max = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < n_kv; ++k) {
          const float* kr = K + k * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; ++d) dot += q[d] * kr[d];
          const float s = dot * kq_scale + slope * static_cast<float>(k - pos);
          scores[k] = s;
          max = std::max(max, s);
        }
        double sum = 0.0;
        for (int64_t k = 0; k < n_kv; ++k) {
          const float e = std::exp(scores[k] - max);
          scores[k] = e;
          sum += e;
        }
        const float inv = static_cast<float>(1.0 / sum);
        std::fill(out, out + D, 0.0f);
        for (int64_t k = 0; k < n_kv; ++k) {
          const float p = scores[k] * inv;
          const float* vr = Vv + k * D;
          for (int64_t d = 0; d < D; ++d) out[d] += p * vr[d];
        }
      }
      count_run();
    });

    // x = W_o attn + b_o + x
    matmul(L.attn_output, b.attn.data(), T, b.proj.data(), ws);
    hint(L.ffn_up);
    // x = W_down gelu(W_up LN(x) + b_up) + b_down + x
    parallel_for(0, T, [&](int64_t t) {
      float* p = b.proj.data() + t * E;
      ops::add_bias(p, L.attn_output_b, E);
      float* xt = b.x.data() + t * E;
      for (int64_t i = 0; i < E; ++i) xt[i] = p[i] + xt[i];
      ops::layer_norm(xt, b.cur.data() + t * E, E, L.ffn_norm_w, L.ffn_norm_b, eps);
    });
    matmul(L.ffn_up, b.cur.data(), T, b.ffn.data(), ws);
    hint(L.ffn_down);
    parallel_for(0, T, [&](int64_t t) { bias_gelu(b.ffn.data() + t * F, L.ffn_up_b, F); });
    matmul(L.ffn_down, b.ffn.data(), T, b.proj.data(), ws);
    if (il + 1 < c.n_layer) {
      hint(m.layers[static_cast<size_t>(il + 1)].attn_qkv);
    } else if ((want_all || want_last) && logits_out != nullptr) {
      hint(m.output);  // not when the head is left to a screen (eval_argmax)
    }
    parallel_for(0, T, [&](int64_t t) {
      float* p = b.proj.data() + t * E;
      ops::add_bias(p, L.ffn_down_b, E);
      float* xt = b.x.data() + t * E;
      for (int64_t i = 0; i < E; ++i) xt[i] = p[i] + xt[i];
    });
  }
  for (const Row& row : rows) {
    Session& s = *row.session;
    s.n_past_ = std::max(s.n_past_, row.pos + 1);
    if (!s.buf_->huge_pages && s.n_past_ >= kHugePagesFrom) s.buf_->use_huge_pages();
  }

  // logits = W_out LN(x; output_norm), for every row or only the last one.
  if (want_all || want_last) {
    const int64_t first = want_all ? 0 : T - 1;
    parallel_for(first, T, [&](int64_t t) {
      ops::layer_norm(b.x.data() + t * E, b.cur.data() + (t - first) * E, E, m.output_norm_w, m.output_norm_b, eps);
    });
    if (logits_out != nullptr) matmul(m.output, b.cur.data(), T - first, logits_out, ws);
  }
}

}  // namespace bloomz
