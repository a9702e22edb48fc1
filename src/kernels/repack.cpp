// Portable repacking between plain rows and the x8 layout (see repack.hpp).
#include "kernels/repack.hpp"

#include <cstring>

#include "kernels/blocks.hpp"

namespace bloomz::kernels {

namespace {

// One 8-row group, either way. Offsets are computed in the x8 group and in the plain rows; the
// copy direction is the only difference between repacking and unpacking.
template <typename Block>
void convert(const std::byte* src, int64_t row_bytes, std::byte* dst, bool to_x8) {
  constexpr int64_t kBlock = static_cast<int64_t>(sizeof(Block));
  constexpr int64_t kQ = static_cast<int64_t>(sizeof(Block::qs));  // 16 (Q4_0) or 32 (Q8_0)
  const auto copy = [&](int64_t x8_off, int64_t plain_off, size_t n) {
    if (to_x8) std::memcpy(dst + x8_off, src + plain_off, n);
    else std::memcpy(dst + plain_off, src + x8_off, n);
  };
  const int64_t nb = row_bytes / kBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t group = b * 8 * kBlock;
    for (int64_t r = 0; r < 8; ++r) {
      const int64_t plain = r * row_bytes + b * kBlock;
      copy(group + 2 * r, plain, 2);  // d
      for (int64_t j = 0; j < kQ / 4; ++j) copy(group + 16 + 32 * j + 4 * r, plain + (kBlock - kQ) + 4 * j, 4);
    }
  }
}

// Q6_K: per superblock of 8 rows (8 x 210 bytes): d[8] (fp16), scales[16][8] (int8, half-group h
// of row r at 16 + 8h + r), then ql as vectors (n, m, j) = 64n + 32m + 4j.. of each row
// (n: 128-element half, m: which 32 bytes, j: word), then qh as vectors (n, j) = 32n + 4j.. .
void convert_q6_K(const std::byte* src, int64_t row_bytes, std::byte* dst, bool to_x8) {
  constexpr int64_t kBlock = static_cast<int64_t>(sizeof(block_q6_K));
  constexpr int64_t kQl = 0, kQh = 128, kScales = 192, kD = 208;  // offsets in block_q6_K
  const auto copy = [&](int64_t x8_off, int64_t plain_off, size_t n) {
    if (to_x8) std::memcpy(dst + x8_off, src + plain_off, n);
    else std::memcpy(dst + plain_off, src + x8_off, n);
  };
  const int64_t nb = row_bytes / kBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t group = b * 8 * kBlock;
    for (int64_t r = 0; r < 8; ++r) {
      const int64_t plain = r * row_bytes + b * kBlock;
      copy(group + 2 * r, plain + kD, 2);
      for (int64_t h = 0; h < 16; ++h) copy(group + 16 + 8 * h + r, plain + kScales + h, 1);
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t m = 0; m < 2; ++m)
          for (int64_t j = 0; j < 8; ++j)
            copy(group + 144 + ((2 * n + m) * 8 + j) * 32 + 4 * r, plain + kQl + 64 * n + 32 * m + 4 * j, 4);
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t j = 0; j < 8; ++j) copy(group + 1168 + (8 * n + j) * 32 + 4 * r, plain + kQh + 32 * n + 4 * j, 4);
    }
  }
}

}  // namespace

bool x8_supported(GgmlType type, int64_t cols, int64_t rows, int64_t row_bytes) {
  if (rows <= 0 || rows % 8 != 0 || cols <= 0 || cols % 32 != 0) return false;
  switch (type) {
    case GgmlType::Q4_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q4_0));
    case GgmlType::Q8_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q8_0));
    case GgmlType::Q6_K: return cols % QK_K == 0 && row_bytes == cols / QK_K * static_cast<int64_t>(sizeof(block_q6_K));
    default: return false;
  }
}

void repack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  if (type == GgmlType::Q4_0) convert<block_q4_0>(src, row_bytes, dst, true);
  else if (type == GgmlType::Q8_0) convert<block_q8_0>(src, row_bytes, dst, true);
  else if (type == GgmlType::Q6_K) convert_q6_K(src, row_bytes, dst, true);
}

void unpack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  if (type == GgmlType::Q4_0) convert<block_q4_0>(src, row_bytes, dst, false);
  else if (type == GgmlType::Q8_0) convert<block_q8_0>(src, row_bytes, dst, false);
  else if (type == GgmlType::Q6_K) convert_q6_K(src, row_bytes, dst, false);
}

}  // namespace bloomz::kernels
