// Bit-exact IEEE binary16 and bfloat16 conversions (round to nearest even), portable scalar code.
#pragma once

#include <cstdint>

namespace bloomz {

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// Row forms of the same conversions (portable scalar; same bits as the element functions).
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);

}  // namespace bloomz
