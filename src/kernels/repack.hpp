// The "x8" weight layout: 8 consecutive rows of a Q4_0, Q8_0, Q4_K or Q6_K matrix interleaved block by block,
// so that a SIMD kernel reads one sequential stream per 8 rows and finds, in each 32-byte vector,
// the same 4 elements of all 8 rows (lane r = row r). Same bytes as the plain rows, rearranged:
//
//   per 8-row group, per block b (in row order of blocks):
//     d[8]                 the 8 rows' fp16 scales, row 0 first
//     Q4_0: 4 x 32 bytes   vector j, bytes 4r..4r+3 = qs[4j..4j+3] of row r
//                          (low nibbles: elements 4j..4j+3; high nibbles: elements 16+4j..16+4j+3)
//     Q8_0: 8 x 32 bytes   vector j, bytes 4r..4r+3 = qs[4j..4j+3] of row r (elements 4j..4j+3)
//   Q6_K, per 8-row group and superblock (8 x 210 bytes): d[8] (fp16); scales as 16 x 8 int8
//     (half-group h of row r at 16 + 8h + r); ql as 32 vectors (n, m, j) whose lane r holds
//     ql[64n + 32m + 4j ..+3] of row r; qh as 16 vectors (n, j) with qh[32n + 4j ..+3] of row r.
//   Q4_K, per 8-row group and superblock (8 x 144 bytes): d[8], dmin[8] (fp16); row r's 12 scale
//     bytes (as in the file) at 32 + 12r; qs as 32 vectors (j, m) whose lane r holds
//     qs[32j + 4m ..+3] of row r (low nibbles: sub-block 2j, high nibbles: sub-block 2j + 1).
//
// Model::load repacks layer matrices into it when the active kernel table has a dot kernel for the
// layout; any other table still works on such a matrix through unpack_x8 (matmul.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "bloomz/ggml_types.hpp"

namespace bloomz::kernels {

// Whether a matrix of this type, shape and row stride can be stored x8.
bool x8_supported(GgmlType type, int64_t cols, int64_t rows, int64_t row_bytes);

// One 8-row group: src = 8 plain rows of row_bytes each; dst = 8 * row_bytes bytes.
void repack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst);
// The inverse: one x8 group back to 8 plain rows.
void unpack_x8(GgmlType type, const std::byte* src, int64_t row_bytes, std::byte* dst);

}  // namespace bloomz::kernels
