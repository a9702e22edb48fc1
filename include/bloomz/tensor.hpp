// TensorView: a non-owning 2-D view of a weight matrix in the mapped file (or a repacked copy).
// cols = ne[0] (the contiguous dimension, "in"), rows = ne[1] ("out").
#pragma once

#include <cstddef>
#include <cstdint>

#include "bloomz/ggml_types.hpp"

namespace bloomz {

struct TensorView {
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  int64_t row_bytes = 0;
  const std::byte* data = nullptr;
  // Stored in the x8 layout (src/kernels/repack.hpp: 8 rows interleaved block by block, same
  // bytes): only matmul reads such a matrix; row() is meaningless for it.
  bool x8 = false;

  const std::byte* row(int64_t r) const { return data + r * row_bytes; }
  bool empty() const { return data == nullptr; }
};

}  // namespace bloomz
