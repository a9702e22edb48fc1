// ggml tensor type ids as stored in GGUF tensor infos, and their block geometry
// (elements per block, bytes per block). Values and sizes are ggml's (ggml.h, ggml-common.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bloomz {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
};

struct TypeInfo {
  std::string_view name;  // ggml's spelling: "q4_K", "f16", ...
  int64_t block_size;     // elements per block
  int64_t type_size;      // bytes per block
  bool supported;         // bloomz has kernels for it (can be a weight of a model)
};

// Geometry of a ggml type id, or nullopt for ids ggml does not define (or removed ones).
std::optional<TypeInfo> type_info(uint32_t id);
// Same for a known enum value (always succeeds).
TypeInfo type_info(GgmlType type);
std::string_view type_name(GgmlType type);
// Parse ggml's spelling ("q4_K", case-insensitive); nullopt when unknown.
std::optional<GgmlType> type_from_name(std::string_view name);
// Bytes of one row of n elements (n must be a multiple of the block size).
int64_t row_size(GgmlType type, int64_t n);

}  // namespace bloomz
