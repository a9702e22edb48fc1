// The matrix-multiplication driver used by the forward pass:
//   y[t * w.rows + r] = dot(w.row(r), x[t * w.cols ...])   for t < n_tok, r < w.rows
// Each activation row is quantized once per call to the weight type's vec_dot_type (as
// llama.cpp does), output rows are split over threads, and the bits of every output do not
// depend on the thread count, on n_tok or on the other rows of the batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "bloomz/cpu_features.hpp"
#include "bloomz/tensor.hpp"

namespace bloomz {

// Scratch memory for quantized activations; owned by a session, grows on demand, reused.
class MatmulWorkspace {
 public:
  std::byte* reserve(size_t bytes);

 private:
  struct FreeDeleter { void operator()(std::byte* p) const; };
  std::unique_ptr<std::byte, FreeDeleter> buf_;
  size_t capacity_ = 0;
};

void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y, MatmulWorkspace& ws);
// The same with an explicit kernel set (tests, kernel-bench); throws Error(Usage) when `isa` is not
// runnable here. Results are bit-identical to matmul() when isa == active_isa().
void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y, MatmulWorkspace& ws, Isa isa);
// Decoding (n_tok < 4) splits w's rows into one region per thread (src/kernels/row_regions.hpp).
// This hints the idle workers to prefetch the first max_bytes of their regions (prefetch_hint)
// while the caller runs a step alone before the matmul. Changes no result.
void matmul_prefetch_hint(const TensorView& w, int64_t max_bytes);
// Notes for callers:
// - w.row_bytes may exceed the packed row size, so an F16 KV cache slice (rows = positions,
//   cols = head_dim, row_bytes = the cache's row stride) is a valid weight: matmul then gives
//   llama.cpp's F16 vec_dot numerics (activations rounded to fp16, f32 accumulation).
// - Quantized types need cols to be a multiple of their block size (32 or 256).

// Forward-pass kernels beyond matmul, served by the active ISA's kernel table.
// Attention of one query (d floats) against one head of an fp16 cache (n_kv rows of d values for
// K and for V): llama.cpp's F16-cache numerics (q rounded to fp16, f32 accumulation), ALiBi bias
// slope * (k - pos), softmax with the sum in double; scores: n_kv floats of scratch; out: d floats.
void attention_f16(const float* q, const uint16_t* k, const uint16_t* v, int64_t n_kv, int64_t d, int64_t pos,
                   float scale, float slope, float* scores, float* out);
// Attention of one query against one head of a q8_0 cache (n_kv rows of d/32 blocks of
// llama.cpp's q8_0 for K and for V; d a multiple of 32): the query quantized to q8_0 and int8 dots
// for the scores, V dequantized on the fly (see kernels::AttnQ8Args); otherwise as attention_f16.
void attention_q8_0(const float* q, const void* k, const void* v, int64_t n_kv, int64_t d, int64_t pos, float scale,
                    float slope, float* scores, float* out);
// n floats (a multiple of 32) -> n / 32 q8_0 blocks (ggml's reference quantizer, d = amax / 127).
void quantize_row_q8_0(const float* x, void* y, int64_t n);
// x[i] = gelu(x[i] + b[i]) (the fp16-table GELU of ops::gelu).
void bias_gelu(float* x, const float* b, int64_t n);
// f32 -> fp16, round to nearest even.
void to_fp16(const float* x, uint16_t* y, int64_t n);

// LM-head screening (head_screen.hpp; src/kernels/kernels.hpp has the arithmetic). One fp16 row of
// n values -> n int8 codes round(w * 127 / amax), with scale = amax / 127, err = the largest
// |w - scale * code| (as one fused multiply-add gives it) and amax = max |w|; false when the row
// holds Inf or NaN. The same bits on every kernel table.
bool screen_quantize_row(const uint16_t* w, int8_t* q, int64_t n, float& scale, float& err, float& amax);
// out[r] = scale[r] * sum_i q[r * n + i] * x[i] for r in [r0, r1), summed in any order.
void screen_dot(const int8_t* q, const float* scale, const float* x, int64_t n, int64_t r0, int64_t r1, float* out);

// Dequantize n elements (a multiple of the block size) of any supported type to f32.
void dequantize_row(GgmlType type, const std::byte* src, float* dst, int64_t n);
// Row r of a matrix (w.cols floats), whatever its layout (x8 matrices: through their 8-row group).
void dequantize_matrix_row(const TensorView& w, int64_t r, float* dst);

}  // namespace bloomz
