// The small element-wise and row operations of the BLOOM forward pass, with llama.cpp's CPU
// numerics (ggml-cpu ops.cpp / vec.h): LayerNorm, bias add, the fp16-table GELU, ALiBi slopes,
// and fp16 conversions through a lookup table for the KV cache.
#pragma once

#include <cstdint>
#include <vector>

namespace bloomz::ops {

// y = (x - mean) / sqrt(var + eps) * w + b; mean and variance accumulated in double, the
// population variance, eps inside the square root (ggml_compute_forward_norm_f32, then mul, add).
void layer_norm(const float* x, float* y, int64_t n, const float* w, const float* b, float eps);

// y[i] += b[i]
void add_bias(float* y, const float* b, int64_t n);

// In place GELU, tanh form, evaluated as llama.cpp's CPU backend does: x <= -10 -> 0,
// x >= 10 -> x, else the fp16 table entry of fp16(x) (GGML_GELU_FP16).
void gelu(float* x, int64_t n);
// The GELU table: entry h = fp16(gelu(fp32(h))) for every fp16 bit pattern h, followed by
// padding, so that 32-bit gathers at any entry stay inside the allocation.
const uint16_t* gelu_fp16_table();
// The exact f32 formula the table is built from (for tests).
float gelu_f32(float x);

// ALiBi slopes for n_head heads (ggml soft_max: m0 = 2^(-max_bias/n2), m1 = 2^(-max_bias/2/n2),
// n2 = 2^floor(log2 n_head); head h < n2: m0^(h+1), else m1^(2(h-n2)+1)), computed with powf.
std::vector<float> alibi_slopes(int64_t n_head, float max_bias);

// The first key (a multiple of 8, at most pos) that ALiBi attention at position pos must read: every
// earlier key's score lies more than kAlibiDrop below the maximum, so its exponential is exactly 0 in
// every kernel table (the reference's expf is 0 below -104, the SIMD ones below -87.3) and adds
// nothing to the sum or the output. It bounds each score by |q.k| scale <= B = 1.25 |q| |k|max scale
// (1.25 covers the fp16 or q8_0 rounding of q and k, under 3 % each, and the dot's float rounding)
// minus slope (pos - k), and the maximum from below by the score of key pos, >= -B; a key is
// skipped when slope (pos - k) > 2 B + kAlibiDrop. Rounding down to a multiple of 8 keeps each key
// in the same lane of the SIMD tables' 8-wide sums, so the result is the same bits as reading all
// keys. Returns 0 when any input is not finite or the slope is not positive.
inline constexpr double kAlibiDrop = 110.0;
int64_t alibi_first_key(int64_t pos, float slope, float scale, double q_norm, double key_norm_max);

// fp16 -> f32 through a 65536-entry table (exact); f32 -> fp16 round to nearest even.
void fp16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_fp16(const float* src, uint16_t* dst, int64_t n);
// Round each value to the nearest fp16 and back (llama.cpp converts Q to fp16 for an F16 cache).
void round_to_fp16(float* x, int64_t n);

}  // namespace bloomz::ops
