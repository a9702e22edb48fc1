// The matmul driver: quantize each activation row once, then split output rows over threads in
// fixed blocks; each block walks the tokens in chunks so the block's weights stay in cache.
#include "bloomz/matmul.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"
#include "kernels/kernels.hpp"
#include "kernels/repack.hpp"
#include "kernels/row_regions.hpp"
#include "ops.hpp"

namespace bloomz {

void MatmulWorkspace::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

std::byte* MatmulWorkspace::reserve(size_t bytes) {
  if (bytes > capacity_ || !buf_) {
    const size_t cap = (std::max<size_t>(bytes, 4096) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, cap);
    if (!p) throw Error(ErrorKind::Runtime, "out of memory for the matmul workspace");
    buf_.reset(static_cast<std::byte*>(p));
    capacity_ = cap;
  }
  return buf_.get();
}

namespace {

constexpr int64_t kRowsPerItemBatch = 32;   // T large: rows whose weights stay in L1/L2
constexpr int64_t kTokensPerChunk = 64;     // tokens per kernel call within an item

// Item boundaries for x8 weights in a prompt chunk (T >= 4). Each item costs a shared-counter
// fetch, a kernel entry and a cold start of the kernel's prefetch stream, so items shrink towards
// the end of the matrix only (guided scheduling: each item an even share of the rows left, 32 at
// least), and the last one does not keep the other threads waiting. They stop at 256 rows, which
// keeps their weights in L2 across the chunk's tokens. Decoding (T < 4) reads each weight once and
// takes one region of rows per thread instead (RowRegions): with guided items of up to 2048 rows
// it was 2.5-5 % slower per token where the read probe gave 58-62 GB/s (Zen 4, 560m Q4_0 and
// Q4_K_M, tokens alternating between the two in one bench run; docs/performance.md § 3.14).
constexpr int64_t kMaxItemRowsPrompt = 256;

// Decoding's regions start on multiples of 16 rows in the file's layout, of one 8-row group in x8.
constexpr int64_t kRegionAlignPlain = 16, kRegionAlignX8 = 8;

void x8_item_bounds(int64_t rows, int64_t max_item_rows, std::vector<int64_t>& bounds) {
  bounds.clear();
  const int64_t share = num_threads();
  for (int64_t r = 0; r < rows;) {
    bounds.push_back(r);
    r += std::min(rows - r, std::clamp<int64_t>((rows - r) / share / 8 * 8, 32, max_item_rows));
  }
  bounds.push_back(rows);
}

void matmul_table(const kernels::KernelTable& kt, const TensorView& w, const float* x, int64_t n_tok,
                  float* y, MatmulWorkspace& ws) {
  using namespace kernels;
  WType wt;
  if (!wtype_of(w.type, wt))
    throw Error(ErrorKind::Unsupported, std::string("matmul: no kernel for weight type ") +
                                            std::string(type_name(w.type)));
  if (n_tok <= 0 || w.rows <= 0) return;
  const AType at = vec_dot_type(wt);
  const int64_t n = w.cols;
  if (n % w_block_size(wt) != 0 || w.row_bytes < n / w_block_size(wt) * w_block_bytes(wt))
    throw Error(ErrorKind::Config, std::string("matmul: a ") + std::string(type_name(w.type)) + " matrix with " +
                                       std::to_string(n) + " columns and " + std::to_string(w.row_bytes) +
                                       " bytes per row is not a whole number of blocks");
  const int64_t a_row = act_row_bytes(at, n);
  const std::byte* a = nullptr;
  if (at == AType::F32) {
    a = reinterpret_cast<const std::byte*>(x);
  } else {
    std::byte* buf = ws.reserve(static_cast<size_t>(a_row * n_tok));
    const QuantizeFn q = kt.quantize[static_cast<int>(at)];
    parallel_for(0, n_tok, [&](int64_t t) { q(x + t * n, buf + t * a_row, n); });
    a = buf;
  }
  static std::atomic<uint64_t> next_a_id{0};
  DotArgs base{};
  base.a_id = next_a_id.fetch_add(1, std::memory_order_relaxed) + 1;
  base.a_stride = a_row;
  base.ldy = w.rows;
  base.n = n;
  // Rows [r0, r1) of the weights at wp (w_stride apart) for every token, in chunks of tokens;
  // y0 = the output for row 0 of wp (y itself, or y + 8g for an unpacked copy of group g).
  auto rectangle = [&](DotFn dot, const std::byte* wp, int64_t w_stride, int64_t r0, int64_t r1, float* y0, int64_t pf_r1 = 0) {
    DotArgs p = base;
    p.w = wp;
    p.w_stride = w_stride;
    p.r0 = r0;
    p.r1 = r1;
    p.pf_r1 = pf_r1;
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTokensPerChunk) {
      p.a = a + t0 * a_row;
      p.n_tok = std::min(kTokensPerChunk, n_tok - t0);
      p.y = y0 + t0 * w.rows;
      dot(p);
    }
  };
  // Decoding: one region of rows per thread (RowRegions).
  auto by_regions = [&](DotFn dot, const std::byte* wp, int64_t w_stride, int64_t align) {
    static thread_local RowRegions regions_of_this_thread;
    RowRegions& regions = regions_of_this_thread;  // the team reads this thread's copy
    regions.reset(w.rows, num_threads(), align);
    parallel_for(0, regions.size(), [&](int64_t i) {
      regions.run(static_cast<int>(i), [&](int64_t r0, int64_t r1, int64_t stream_end) {
        rectangle(dot, wp, w_stride, r0, r1, y, stream_end);
      });
    });
  };
  if (!w.x8) {
    const DotFn dot = kt.dot[static_cast<int>(wt)];
    if (n_tok < 4) {
      by_regions(dot, w.data, w.row_bytes, kRegionAlignPlain);
      return;
    }
    parallel_for(0, (w.rows + kRowsPerItemBatch - 1) / kRowsPerItemBatch, [&](int64_t i) {
      const int64_t r0 = i * kRowsPerItemBatch;
      rectangle(dot, w.data, w.row_bytes, r0, std::min(w.rows, r0 + kRowsPerItemBatch), y);
    });
    return;
  }
  if (!kernels::x8_supported(w.type, w.cols, w.rows, w.row_bytes))
    throw Error(ErrorKind::Runtime, "matmul: an x8 matrix of an unsupported type or shape");
  if (const DotFn dot_x8 = kt.dot_x8[static_cast<int>(wt)]) {
    if (n_tok < 4) {
      by_regions(dot_x8, w.data, 8 * w.row_bytes, kRegionAlignX8);
      return;
    }
    static thread_local std::vector<int64_t> bounds_of_this_thread;
    std::vector<int64_t>& bounds = bounds_of_this_thread;  // the team reads this thread's copy
    x8_item_bounds(w.rows, kMaxItemRowsPrompt, bounds);
    parallel_for(0, static_cast<int64_t>(bounds.size()) - 1, [&](int64_t i) {
      const auto k = static_cast<size_t>(i);
      rectangle(dot_x8, w.data, 8 * w.row_bytes, bounds[k], bounds[k + 1], y);
    });
    return;
  }
  // A table without x8 kernels: unpack each 8-row group into plain rows, then its usual dot.
  const DotFn dot = kt.dot[static_cast<int>(wt)];
  parallel_for(0, w.rows / 8, [&](int64_t g) {
    static thread_local std::vector<std::byte> plain;
    plain.resize(static_cast<size_t>(8 * w.row_bytes));
    kernels::unpack_x8(w.type, w.data + g * 8 * w.row_bytes, w.row_bytes, plain.data());
    rectangle(dot, plain.data(), w.row_bytes, 0, 8, y + g * 8);
  });
}

}  // namespace

void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y, MatmulWorkspace& ws) {
  const kernels::KernelTable* kt = kernels::table_for(active_isa());
  matmul_table(kt ? *kt : kernels::table_ref(), w, x, n_tok, y, ws);
}

void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y, MatmulWorkspace& ws, Isa isa) {
  const kernels::KernelTable* kt = kernels::table_for(isa);
  if (!kt || !isa_runnable(isa))
    throw Error(ErrorKind::Usage, std::string("matmul: ISA ") + std::string(isa_name(isa)) +
                                      " is not runnable here");
  matmul_table(*kt, w, x, n_tok, y, ws);
}

void matmul_prefetch_hint(const TensorView& w, int64_t max_bytes) {
  const int n = num_threads();
  const kernels::KernelTable* kt = kernels::table_for(active_isa());
  kernels::WType wt;
  if (n <= 1 || n > 64 || w.rows <= 0 || !kernels::wtype_of(w.type, wt)) return;
  if (w.x8 && (kt == nullptr || kt->dot_x8[static_cast<int>(wt)] == nullptr)) return;  // no regions there
  const int64_t align = w.x8 ? kRegionAlignX8 : kRegionAlignPlain;
  PrefetchSpan spans[64];
  for (int k = 1; k < n; ++k) {
    const int64_t r0 = kernels::RowRegions::region_begin(w.rows, n, align, k), r1 = kernels::RowRegions::region_begin(w.rows, n, align, k + 1);
    spans[k] = {w.data + r0 * w.row_bytes, std::min(max_bytes, (r1 - r0) * w.row_bytes)};
  }
  prefetch_hint(spans, n);
}

namespace {
const kernels::KernelTable& active_table() {
  const kernels::KernelTable* kt = kernels::table_for(active_isa());
  return kt ? *kt : kernels::table_ref();
}
}  // namespace

void attention_f16(const float* q, const uint16_t* k, const uint16_t* v, int64_t n_kv, int64_t d, int64_t pos,
                   float scale, float slope, float* scores, float* out) {
  kernels::AttnFn f = active_table().attn_f16;  // a table without the entry: the reference
  if (!f) f = kernels::table_ref().attn_f16;
  f(kernels::AttnArgs{q, k, v, n_kv, d, pos, scale, slope, scores, out});
}

void attention_q8_0(const float* q, const void* k, const void* v, int64_t n_kv, int64_t d, int64_t pos, float scale,
                    float slope, float* scores, float* out) {
  kernels::AttnQ8Fn f = active_table().attn_q8_0;  // the NEON tables: the reference
  if (!f) f = kernels::table_ref().attn_q8_0;
  f(kernels::AttnQ8Args{q, k, v, n_kv, d, pos, scale, slope, scores, out});
}

void quantize_row_q8_0(const float* x, void* y, int64_t n) {
  active_table().quantize[static_cast<int>(kernels::AType::Q8_0)](x, y, n);
}

void bias_gelu(float* x, const float* b, int64_t n) {
  kernels::BiasGeluFn f = active_table().bias_gelu;
  if (!f) f = kernels::table_ref().bias_gelu;
  f(x, b, n, ops::gelu_fp16_table());
}

void dequantize_matrix_row(const TensorView& w, int64_t r, float* dst) {
  if (r < 0 || r >= w.rows) throw Error(ErrorKind::Runtime, "dequantize_matrix_row: row out of range");
  if (!w.x8) {
    dequantize_row(w.type, w.row(r), dst, w.cols);
    return;
  }
  static thread_local std::vector<std::byte> plain;
  plain.resize(static_cast<size_t>(8 * w.row_bytes));
  kernels::unpack_x8(w.type, w.data + r / 8 * 8 * w.row_bytes, w.row_bytes, plain.data());
  dequantize_row(w.type, plain.data() + r % 8 * w.row_bytes, dst, w.cols);
}

bool screen_quantize_row(const uint16_t* w, int8_t* q, int64_t n, float& scale, float& err, float& amax) {
  kernels::ScreenQuantizeFn f = active_table().screen_quantize;  // the NEON tables: the reference
  if (!f) f = kernels::table_ref().screen_quantize;
  kernels::ScreenRowStats st{};
  if (!f(w, q, n, &st)) return false;
  scale = st.scale;
  err = st.err;
  amax = st.amax;
  return true;
}

void screen_dot(const int8_t* q, const float* scale, const float* x, int64_t n, int64_t r0, int64_t r1, float* out) {
  kernels::ScreenDotFn f = active_table().screen_dot;
  if (!f) f = kernels::table_ref().screen_dot;
  f(kernels::ScreenDotArgs{q, scale, x, n, r0, r1, out});
}

void to_fp16(const float* x, uint16_t* y, int64_t n) {
  active_table().quantize[static_cast<int>(kernels::AType::F16)](x, y, n);
}

}  // namespace bloomz
