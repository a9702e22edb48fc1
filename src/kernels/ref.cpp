// The scalar reference table: the ground truth for every other table and the portable fallback.
// Textbook loops: an exact integer sum per block, then float accumulation in block order.
// Compiled without -ffast-math and with -ffp-contract=off (no FMA contraction).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "bloomz/fp16.hpp"
#include "kernels/blocks.hpp"
#include "kernels/kernels.hpp"

namespace bloomz::kernels {
namespace {

float h2f(uint16_t h) { return fp16_to_fp32(h); }

// ---- activation quantizers (ggml's reference quantizers) ----

void quantize_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void quantize_f16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_bf16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_1; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += y[b].qs[j];
    }
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

// ggml's nearest_int: round half to even, valid for |v| < 2^22.
int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

void quantize_q8_K(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < QK_K; ++j) {
      const int v = nearest_int(iscale * x[j]);
      y[b].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[b].qs[16 * g + l];
      y[b].bsums[g] = static_cast<int16_t>(s);
    }
    y[b].d = 1.0f / iscale;
  }
}

// ---- dots: one weight row . one activation row ----

float dot_f32(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const float*>(wv);
  const auto* a = static_cast<const float*>(av);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += w[i] * a[i];
  return s;
}

float dot_f16(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* a = static_cast<const uint16_t*>(av);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += h2f(w[i]) * h2f(a[i]);
  return s;
}

float dot_bf16(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* a = static_cast<const uint16_t*>(av);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_fp32(w[i]) * bf16_to_fp32(a[i]);
  return s;
}

float dot_q4_0(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q4_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((w[b].qs[j] & 0xF) - 8) * a[b].qs[j];
      isum += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
    }
    s += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(isum);
  }
  return s;
}

float dot_q4_1(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q4_1*>(wv);
  const auto* a = static_cast<const block_q8_1*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK4_1; ++b) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += (w[b].qs[j] & 0xF) * a[b].qs[j];
      isum += (w[b].qs[j] >> 4) * a[b].qs[j + 16];
    }
    s += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(isum) + h2f(w[b].m) * h2f(a[b].s);
  }
  return s;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float dot_q5_0(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q5_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK5_0; ++b) {
    const uint32_t qh = load_u32(w[b].qh);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = ((w[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int q1 = ((w[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      isum += q0 * a[b].qs[j] + q1 * a[b].qs[j + 16];
    }
    s += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(isum);
  }
  return s;
}

float dot_q5_1(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q5_1*>(wv);
  const auto* a = static_cast<const block_q8_1*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK5_1; ++b) {
    const uint32_t qh = load_u32(w[b].qh);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = (w[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int q1 = (w[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      isum += q0 * a[b].qs[j] + q1 * a[b].qs[j + 16];
    }
    s += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(isum) + h2f(w[b].m) * h2f(a[b].s);
  }
  return s;
}

float dot_q8_0(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q8_0*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int isum = 0;
    for (int j = 0; j < QK8_0; ++j) isum += w[b].qs[j] * a[b].qs[j];
    s += h2f(w[b].d) * h2f(a[b].d) * static_cast<float>(isum);
  }
  return s;
}

// K-quants. Group g (0..15) of 16 elements in the Q2_K/Q3_K order: half h = g/8, shift s = (g%8)/2,
// second = g%2; quant bytes qs[32h + 16*second + l], activations at 128h + 32s + 16*second + l.
float dot_q2_K(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0, imin = 0;
    for (int g = 0; g < 16; ++g) {
      const int h = g / 8, sh = (g % 8) / 2, second = g % 2;
      const uint8_t* q = w[b].qs + 32 * h + 16 * second;
      const int8_t* x = a[b].qs + 128 * h + 32 * sh + 16 * second;
      int gs = 0;
      for (int l = 0; l < 16; ++l) gs += ((q[l] >> (2 * sh)) & 3) * x[l];
      isum += (w[b].scales[g] & 0xF) * gs;
      imin += (w[b].scales[g] >> 4) * a[b].bsums[g];
    }
    const float d = h2f(w[b].d) * a[b].d;
    const float dmin = h2f(w[b].dmin) * a[b].d;
    s += d * static_cast<float>(isum) - dmin * static_cast<float>(imin);
  }
  return s;
}

float dot_q3_K(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0;
    for (int g = 0; g < 16; ++g) {
      const int h = g / 8, sh = (g % 8) / 2, second = g % 2;
      const uint8_t* q = w[b].qs + 32 * h + 16 * second;
      const uint8_t* hm = w[b].hmask + 16 * second;
      const int8_t* x = a[b].qs + 128 * h + 32 * sh + 16 * second;
      int gs = 0;
      for (int l = 0; l < 16; ++l) {
        const int v = ((q[l] >> (2 * sh)) & 3) - (((hm[l] >> (4 * h + sh)) & 1) ? 0 : 4);
        gs += v * x[l];
      }
      isum += q3k_scale(w[b].scales, g) * gs;
    }
    s += h2f(w[b].d) * a[b].d * static_cast<float>(isum);
  }
  return s;
}

float dot_q4_K(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q4_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0, imin = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, mn;
      get_scale_min_k4(j, w[b].scales, sc, mn);
      const uint8_t* q = w[b].qs + 32 * (j / 2);
      const int8_t* x = a[b].qs + 32 * j;
      int gs = 0;
      for (int l = 0; l < 32; ++l) gs += ((j % 2) ? (q[l] >> 4) : (q[l] & 0xF)) * x[l];
      isum += sc * gs;
      imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    const float d = h2f(w[b].d) * a[b].d;
    const float dmin = h2f(w[b].dmin) * a[b].d;
    s += d * static_cast<float>(isum) - dmin * static_cast<float>(imin);
  }
  return s;
}

float dot_q5_K(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q5_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0, imin = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, mn;
      get_scale_min_k4(j, w[b].scales, sc, mn);
      const uint8_t* q = w[b].qs + 32 * (j / 2);
      const int8_t* x = a[b].qs + 32 * j;
      int gs = 0;
      for (int l = 0; l < 32; ++l) {
        const int lo = (j % 2) ? (q[l] >> 4) : (q[l] & 0xF);
        const int hi = (w[b].qh[l] >> j) & 1;
        gs += (lo | (hi << 4)) * x[l];
      }
      isum += sc * gs;
      imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    const float d = h2f(w[b].d) * a[b].d;
    const float dmin = h2f(w[b].dmin) * a[b].d;
    s += d * static_cast<float>(isum) - dmin * static_cast<float>(imin);
  }
  return s;
}

float dot_q6_K(const void* wv, const void* av, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  float s = 0.0f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int isum = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w[b].ql + 64 * half;
      const uint8_t* qh = w[b].qh + 32 * half;
      for (int k = 0; k < 4; ++k) {
        for (int is = 0; is < 2; ++is) {
          int gs = 0;
          for (int l = 16 * is; l < 16 * is + 16; ++l) {
            const uint8_t lq = ql[l + 32 * (k % 2)];
            const int lo = k < 2 ? (lq & 0xF) : (lq >> 4);
            const int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
            gs += q * a[b].qs[128 * half + 32 * k + l];
          }
          isum += w[b].scales[8 * half + 2 * k + is] * gs;
        }
      }
    }
    s += h2f(w[b].d) * a[b].d * static_cast<float>(isum);
  }
  return s;
}

template <float (*RowDot)(const void*, const void*, int64_t)>
void rect(const DotArgs& p) {
  for (int64_t r = p.r0; r < p.r1; ++r)
    for (int64_t t = 0; t < p.n_tok; ++t)
      p.y[t * p.ldy + r] = RowDot(p.w + r * p.w_stride, p.a + t * p.a_stride, p.n);
}

// sc[k] = exp(sc[k] - max_score) for k < n; returns 1 / their sum (summed in double).
float softmax_exp(float* sc, int64_t n, float max_score) {
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const float e = std::exp(sc[k] - max_score);
    sc[k] = e;
    sum += e;
  }
  return static_cast<float>(1.0 / sum);
}

void attn_f16(const AttnArgs& a) {
  const int64_t D = a.d;
  float* sc = a.scores;
  float max = -INFINITY;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const uint16_t* kr = a.k + k * D;
    float dot = 0.0f;
    for (int64_t j = 0; j < D; ++j) dot += h2f(fp32_to_fp16(a.q[j])) * h2f(kr[j]);
    const float s = dot * a.scale + a.slope * static_cast<float>(k - a.pos);
    sc[k] = s;
    max = s > max ? s : max;
  }
  const float inv = softmax_exp(sc, a.n_kv, max);
  for (int64_t j = 0; j < D; ++j) a.out[j] = 0.0f;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const float p = sc[k] * inv;
    const uint16_t* vr = a.v + k * D;
    for (int64_t j = 0; j < D; ++j) a.out[j] += p * h2f(vr[j]);
  }
}

void attn_q8_0(const AttnQ8Args& a) {
  const int64_t D = a.d, nb = D / QK8_0;
  const auto* K = static_cast<const block_q8_0*>(a.k);
  const auto* V = static_cast<const block_q8_0*>(a.v);
  static thread_local std::vector<block_q8_0> qb;
  qb.resize(static_cast<size_t>(nb));
  quantize_q8_0(a.q, qb.data(), D);
  float* sc = a.scores;
  float max = -INFINITY;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const block_q8_0* kr = K + k * nb;
    float dot = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int isum = 0;
      for (int j = 0; j < QK8_0; ++j) isum += kr[b].qs[j] * qb[static_cast<size_t>(b)].qs[j];
      dot += static_cast<float>(isum) * (h2f(kr[b].d) * h2f(qb[static_cast<size_t>(b)].d));
    }
    const float s = dot * a.scale + a.slope * static_cast<float>(k - a.pos);
    sc[k] = s;
    max = s > max ? s : max;
  }
  const float inv = softmax_exp(sc, a.n_kv, max);
  for (int64_t j = 0; j < D; ++j) a.out[j] = 0.0f;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const float p = sc[k] * inv;
    const block_q8_0* vr = V + k * nb;
    for (int64_t b = 0; b < nb; ++b) {
      const float w = p * h2f(vr[b].d);
      for (int j = 0; j < QK8_0; ++j) a.out[b * QK8_0 + j] += w * static_cast<float>(vr[b].qs[j]);
    }
  }
}

void bias_gelu(float* x, const float* b, int64_t n, const uint16_t* table) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] + b[i];
    x[i] = v <= -10.0f ? 0.0f : (v >= 10.0f ? v : h2f(table[fp32_to_fp16(v)]));
  }
}

bool screen_quantize(const uint16_t* w, int8_t* q, int64_t n, ScreenRowStats* stats) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if ((w[i] & 0x7C00u) == 0x7C00u) return false;  // exponent all ones: Inf or NaN
    amax = std::max(amax, std::fabs(h2f(w[i])));
  }
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  const float scale = amax / 127.0f;
  float err = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = h2f(w[i]);
    const float c = std::nearbyint(v * inv);
    q[i] = static_cast<int8_t>(c);
    err = std::max(err, std::fabs(std::fma(-scale, c, v)));
  }
  *stats = {scale, err, amax};
  return true;
}

void screen_dot(const ScreenDotArgs& a) {
  for (int64_t r = a.r0; r < a.r1; ++r) {
    const int8_t* qr = a.q + r * a.n;
    float sum = 0.0f;
    for (int64_t i = 0; i < a.n; ++i) sum += static_cast<float>(qr[i]) * a.x[i];
    a.out[r] = a.scale[r] * sum;
  }
}

const KernelTable kTable = {
    "ref",
    {quantize_f32, quantize_f16, quantize_bf16, quantize_q8_0, quantize_q8_1, quantize_q8_K},
    {rect<dot_f32>, rect<dot_f16>, rect<dot_bf16>, rect<dot_q4_0>, rect<dot_q4_1>, rect<dot_q5_0>,
     rect<dot_q5_1>, rect<dot_q8_0>, rect<dot_q2_K>, rect<dot_q3_K>, rect<dot_q4_K>, rect<dot_q5_K>,
     rect<dot_q6_K>},
    attn_f16,
    bias_gelu,
    {},  // no x8 kernels: matmul unpacks x8 groups for this table
    attn_q8_0,
    screen_quantize,
    screen_dot,
};

}  // namespace

const KernelTable& table_ref() { return kTable; }

}  // namespace bloomz::kernels
