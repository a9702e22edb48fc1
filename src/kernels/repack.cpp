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

}  // namespace

bool x8_supported(GgmlType type, int64_t cols, int64_t rows, int64_t row_bytes) {
  if (rows <= 0 || rows % 8 != 0 || cols <= 0 || cols % 32 != 0) return false;
  switch (type) {
    case GgmlType::Q4_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q4_0));
    case GgmlType::Q8_0: return row_bytes == cols / 32 * static_cast<int64_t>(sizeof(block_q8_0));
    default: return false;
  }
}

void repack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  if (type == GgmlType::Q4_0) convert<block_q4_0>(src, row_bytes, dst, true);
  else if (type == GgmlType::Q8_0) convert<block_q8_0>(src, row_bytes, dst, true);
}

void unpack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst) {
  if (type == GgmlType::Q4_0) convert<block_q4_0>(src, row_bytes, dst, false);
  else if (type == GgmlType::Q8_0) convert<block_q8_0>(src, row_bytes, dst, false);
}

}  // namespace bloomz::kernels
