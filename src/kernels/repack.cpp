// Portable repacking between plain rows and the x8 layout (see repack.hpp).
#include "kernels/repack.hpp"

#include <cstring>

#include "kernels/blocks.hpp"

namespace bloomz::kernels {

namespace {

// Copies between an x8 group and plain rows: repacking and unpacking differ only in direction.
struct Copy {
  const std::byte* src;
  std::byte* dst;
  bool to_x8;
  void operator()(int64_t x8_off, int64_t plain_off, size_t n) const {
    if (to_x8) std::memcpy(dst + x8_off, src + plain_off, n);
    else std::memcpy(dst + plain_off, src + x8_off, n);
  }
};

// One 8-row group, either way: for each block b and row r, place(copy, x8 offset of the block's
// group, plain offset of row r's block, r) moves the block's pieces.
template <typename Block, typename Place>
void convert(const std::byte* src, int64_t row_bytes, std::byte* dst, bool to_x8, Place place) {
  constexpr int64_t kBlock = static_cast<int64_t>(sizeof(Block));
  const Copy copy{src, dst, to_x8};
  for (int64_t b = 0; b < row_bytes / kBlock; ++b)
    for (int64_t r = 0; r < 8; ++r) place(copy, b * 8 * kBlock, r * row_bytes + b * kBlock, r);
}

// Q4_0 / Q8_0: d[8], then quant word j of row r at 16 + 32j + 4r.
template <typename Block>
void place_32(const Copy& copy, int64_t group, int64_t plain, int64_t r) {
  constexpr int64_t kQ = static_cast<int64_t>(sizeof(Block::qs));  // 16 (Q4_0) or 32 (Q8_0)
  constexpr int64_t kQOff = static_cast<int64_t>(sizeof(Block)) - kQ;
  copy(group + 2 * r, plain, 2);  // d
  for (int64_t j = 0; j < kQ / 4; ++j) copy(group + 16 + 32 * j + 4 * r, plain + kQOff + 4 * j, 4);
}

// Q6_K: d[8] (fp16), scales[16][8] (int8, half-group h of row r at 16 + 8h + r), then ql as
// vectors (n, m, j) = 64n + 32m + 4j.. of each row (n: 128-element half, m: which 32 bytes,
// j: word), then qh as vectors (n, j) = 32n + 4j.. .
void place_q6_K(const Copy& copy, int64_t group, int64_t plain, int64_t r) {
  constexpr int64_t kQl = 0, kQh = 128, kScales = 192, kD = 208;  // offsets in block_q6_K
  copy(group + 2 * r, plain + kD, 2);
  for (int64_t h = 0; h < 16; ++h) copy(group + 16 + 8 * h + r, plain + kScales + h, 1);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t m = 0; m < 2; ++m)
      for (int64_t j = 0; j < 8; ++j)
        copy(group + 144 + ((2 * n + m) * 8 + j) * 32 + 4 * r, plain + kQl + 64 * n + 32 * m + 4 * j, 4);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t j = 0; j < 8; ++j) copy(group + 1168 + (8 * n + j) * 32 + 4 * r, plain + kQh + 32 * n + 4 * j, 4);
}

// Q4_K: d[8], dmin[8] (fp16), row r's 12 scale bytes at 32 + 12r, then the codes as vectors
// (j, m) = 32j + 4m.. of each row (j: 64-element chunk, m: word).
void place_q4_K(const Copy& copy, int64_t group, int64_t plain, int64_t r) {
  constexpr int64_t kD = 0, kDmin = 2, kScales = 4, kQs = 16;  // offsets in block_q4_K
  copy(group + 2 * r, plain + kD, 2);
  copy(group + 16 + 2 * r, plain + kDmin, 2);
  copy(group + 32 + 12 * r, plain + kScales, 12);
  for (int64_t j = 0; j < 4; ++j)
    for (int64_t m = 0; m < 8; ++m) copy(group + 128 + (8 * j + m) * 32 + 4 * r, plain + kQs + 32 * j + 4 * m, 4);
}

void convert_any(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst, bool to_x8) {
  switch (type) {
    case GgmlType::Q4_0: convert<block_q4_0>(src, row_bytes, dst, to_x8, place_32<block_q4_0>); break;
    case GgmlType::Q8_0: convert<block_q8_0>(src, row_bytes, dst, to_x8, place_32<block_q8_0>); break;
    case GgmlType::Q4_K: convert<block_q4_K>(src, row_bytes, dst, to_x8, place_q4_K); break;
    case GgmlType::Q6_K: convert<block_q6_K>(src, row_bytes, dst, to_x8, place_q6_K); break;
    default: break;
  }
}

}  // namespace

bool x8_supported(GgmlType type, int64_t cols, int64_t rows, int64_t row_bytes) {
  if (rows <= 0 || rows % 8 != 0 || cols <= 0 || cols % 32 != 0) return false;
  switch (type) {
    case GgmlType::Q4_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q4_0));
    case GgmlType::Q8_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q8_0));
    case GgmlType::Q4_K: return cols % QK_K == 0 && row_bytes == cols / QK_K * static_cast<int64_t>(sizeof(block_q4_K));
    case GgmlType::Q6_K: return cols % QK_K == 0 && row_bytes == cols / QK_K * static_cast<int64_t>(sizeof(block_q6_K));
    default: return false;
  }
}

void repack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  convert_any(type, src, row_bytes, dst, true);
}

void unpack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  convert_any(type, src, row_bytes, dst, false);
}

}  // namespace bloomz::kernels
