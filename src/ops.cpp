// Element-wise and row operations of the forward pass; see ops.hpp for the numerics followed.
#include "ops.hpp"

#include <array>
#include <cmath>

#include "bloomz/fp16.hpp"

namespace bloomz::ops {

namespace {

// GELU constants from ggml-cpu vec.h (the tanh approximation BLOOM was trained with).
constexpr float kGeluCoefA = 0.044715f;
constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;

struct Fp16Tables {
  std::array<float, 65536> to_f32;
  std::array<uint16_t, 65536> gelu;  // fp16(gelu(fp32(h)))
  std::array<uint16_t, 16> gelu_pad{};  // 32-bit gathers of the last entries stay in bounds
  Fp16Tables() {
    for (uint32_t h = 0; h < 65536; ++h) {
      to_f32[h] = fp16_to_fp32(static_cast<uint16_t>(h));
      gelu[h] = fp32_to_fp16(gelu_f32(to_f32[h]));
    }
  }
};

const Fp16Tables& tables() {
  static const Fp16Tables t;
  return t;
}

}  // namespace

const uint16_t* gelu_fp16_table() { return tables().gelu.data(); }

float gelu_f32(float x) {
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x)));
}

void layer_norm(const float* x, float* y, int64_t n, const float* w, const float* b, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double sum2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] - mean;
    y[i] = v;
    sum2 += static_cast<double>(v * v);
  }
  const float variance = static_cast<float>(sum2 / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (y[i] * scale) * w[i] + b[i];
}

void add_bias(float* y, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += b[i];
}

void gelu(float* x, int64_t n) {
  const Fp16Tables& t = tables();
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (v <= -10.0f) {
      x[i] = 0.0f;
    } else if (v >= 10.0f) {
      x[i] = v;
    } else {
      x[i] = t.to_f32[t.gelu[fp32_to_fp16(v)]];
    }
  }
}

std::vector<float> alibi_slopes(int64_t n_head, float max_bias) {
  const int64_t n2 = int64_t(1) << static_cast<int>(std::floor(std::log2(static_cast<double>(n_head))));
  const float m0 = std::pow(2.0f, -max_bias / static_cast<float>(n2));
  const float m1 = std::pow(2.0f, -(max_bias / 2.0f) / static_cast<float>(n2));
  std::vector<float> s(static_cast<size_t>(n_head));
  for (int64_t h = 0; h < n_head; ++h) {
    s[static_cast<size_t>(h)] = h < n2 ? std::pow(m0, static_cast<float>(h + 1))
                                       : std::pow(m1, static_cast<float>(2 * (h - n2) + 1));
  }
  return s;
}

int64_t alibi_first_key(int64_t pos, float slope, float scale, double q_norm, double key_norm_max) {
  const double bound = 1.25 * q_norm * key_norm_max * static_cast<double>(scale);
  if (!(slope > 0.0f) || !std::isfinite(bound) || !std::isfinite(static_cast<double>(slope))) return 0;
  const double reach = (2.0 * bound + kAlibiDrop) / static_cast<double>(slope);  // keys skipped beyond this distance
  if (!(reach < static_cast<double>(pos))) return 0;
  const int64_t first = pos - static_cast<int64_t>(std::floor(reach)) - 1;
  return first <= 0 ? 0 : first / 8 * 8;
}

void fp16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  const Fp16Tables& t = tables();
  for (int64_t i = 0; i < n; ++i) dst[i] = t.to_f32[src[i]];
}

void f32_to_fp16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

void round_to_fp16(float* x, int64_t n) {
  const Fp16Tables& t = tables();
  for (int64_t i = 0; i < n; ++i) x[i] = t.to_f32[fp32_to_fp16(x[i])];
}

}  // namespace bloomz::ops
