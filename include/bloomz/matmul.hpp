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
// Notes for callers:
// - w.row_bytes may exceed the packed row size, so an F16 KV cache slice (rows = positions,
//   cols = head_dim, row_bytes = the cache's row stride) is a valid weight: matmul then gives
//   llama.cpp's F16 vec_dot numerics (activations rounded to fp16, f32 accumulation).
// - Quantized types need cols to be a multiple of their block size (32 or 256).

// Dequantize n elements (a multiple of the block size) of any supported type to f32.
void dequantize_row(GgmlType type, const std::byte* src, float* dst, int64_t n);

}  // namespace bloomz
