// The AArch64 NEON tables, one body compiled twice (see arm_neon.cpp and arm_neon_dotprod.cpp):
//   BLOOMZ_NEON_NS        the namespace of this copy (neon / neondot), everything inside has
//                         internal linkage; only the table accessor is exported by the includer
//   BLOOMZ_NEON_DOTPROD   1: int8 dots with SDOT (armv8.2-a+dotprod); 0: SMULL + SADALP
// Compiled with -ffp-contract=off.
//
// Quantized dots: the integer part of every block is computed with NEON (exact int32 sums, so the
// lane order never matters) and the float part is the reference's own scalar expression, per
// output, block after block: these tables give the reference's bits for every quantized type.
// Float dots (F32/F16/BF16): 16 lanes of f32 fused multiply-adds over the row, a fixed-order
// horizontal sum, then the scalar tail. Each weight row is streamed once per group of up to 4
// tokens; per output the operations are those of the 1x1 call (see kernels.hpp).
#include <arm_neon.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "bloomz/fp16.hpp"
#include "kernels/blocks.hpp"
#include "kernels/kernels.hpp"

#if !defined(BLOOMZ_NEON_NS) || !defined(BLOOMZ_NEON_DOTPROD)
#error "define BLOOMZ_NEON_NS and BLOOMZ_NEON_DOTPROD before including arm_neon.inl"
#endif
#if BLOOMZ_NEON_DOTPROD && !defined(__ARM_FEATURE_DOTPROD)
#error "the dot-product table must be compiled with -march=armv8.2-a+dotprod"
#endif

namespace bloomz::kernels::BLOOMZ_NEON_NS {
namespace {

// Scalar fp16 <-> f32 through the hardware conversions (IEEE, round to nearest even, the same bits
// as bloomz::fp16_to_fp32 / fp32_to_fp16 for every non-NaN value).
inline float h2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
inline uint16_t f2h(float f) { return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0); }

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc + the 16 products x[i]*y[i] folded into 4 int32 lanes (exact; which products land in which
// lane differs between the two variants, the lane total never does).
inline int32x4_t dot16(int32x4_t acc, int8x16_t x, int8x16_t y) {
#if BLOOMZ_NEON_DOTPROD
  return vdotq_s32(acc, x, y);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
  return vpadalq_s16(acc, vmull_high_s8(x, y));
#endif
}

inline int8x16_t load_s8(const int8_t* p) { return vld1q_s8(p); }

// 16 bits -> 16 bytes, 0x10 where the bit is set (bit i -> byte i).
inline uint8x16_t bits16_to_0x10(uint32_t bits16) {
  const uint8x8_t lo = vdup_n_u8(static_cast<uint8_t>(bits16 & 0xFF));
  const uint8x8_t hi = vdup_n_u8(static_cast<uint8_t>((bits16 >> 8) & 0xFF));
  static const uint8_t kSel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t set = vtstq_u8(vcombine_u8(lo, hi), vld1q_u8(kSel));
  return vandq_u8(set, vdupq_n_u8(0x10));
}

// ---------------------------------------------------------------------------------------------
// 32-element block types. unpack() gives the 32 signed codes (value = code, the offset already
// subtracted) as two vectors in element order; fma() adds one block of one token to its sum with
// the reference's float expression.

struct W8_0 {
  using Block = block_q8_0;
  using ABlock = block_q8_0;
  static inline void unpack(const Block& b, int8x16_t c[2]) {
    c[0] = load_s8(b.qs);
    c[1] = load_s8(b.qs + 16);
  }
  static inline void fma(const Block& w, const ABlock& a, int isum, float& s) {
    s += h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
  }
};

template <int Offset>
inline void unpack_nibbles(const uint8_t* qs, int8x16_t c[2]) {
  const uint8x16_t q = vld1q_u8(qs);
  const int8x16_t off = vdupq_n_s8(static_cast<int8_t>(Offset));
  c[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), off);
  c[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), off);
}

template <int Offset>
inline void unpack_nibbles5(const uint8_t* qs, const uint8_t* qh, int8x16_t c[2]) {
  const uint32_t h = load_u32(qh);
  const uint8x16_t q = vld1q_u8(qs);
  const int8x16_t off = vdupq_n_s8(static_cast<int8_t>(Offset));
  const uint8x16_t lo = vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), bits16_to_0x10(h & 0xFFFF));
  const uint8x16_t hi = vorrq_u8(vshrq_n_u8(q, 4), bits16_to_0x10(h >> 16));
  c[0] = vsubq_s8(vreinterpretq_s8_u8(lo), off);
  c[1] = vsubq_s8(vreinterpretq_s8_u8(hi), off);
}

struct W4_0 {
  using Block = block_q4_0;
  using ABlock = block_q8_0;
  static inline void unpack(const Block& b, int8x16_t c[2]) { unpack_nibbles<8>(b.qs, c); }
  static inline void fma(const Block& w, const ABlock& a, int isum, float& s) {
    s += h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
  }
};
struct W5_0 {
  using Block = block_q5_0;
  using ABlock = block_q8_0;
  static inline void unpack(const Block& b, int8x16_t c[2]) { unpack_nibbles5<16>(b.qs, b.qh, c); }
  static inline void fma(const Block& w, const ABlock& a, int isum, float& s) {
    s += h2f(w.d) * h2f(a.d) * static_cast<float>(isum);
  }
};
struct W4_1 {
  using Block = block_q4_1;
  using ABlock = block_q8_1;
  static inline void unpack(const Block& b, int8x16_t c[2]) { unpack_nibbles<0>(b.qs, c); }
  static inline void fma(const Block& w, const ABlock& a, int isum, float& s) {
    s += h2f(w.d) * h2f(a.d) * static_cast<float>(isum) + h2f(w.m) * h2f(a.s);
  }
};
struct W5_1 {
  using Block = block_q5_1;
  using ABlock = block_q8_1;
  static inline void unpack(const Block& b, int8x16_t c[2]) { unpack_nibbles5<0>(b.qs, b.qh, c); }
  static inline void fma(const Block& w, const ABlock& a, int isum, float& s) {
    s += h2f(w.d) * h2f(a.d) * static_cast<float>(isum) + h2f(w.m) * h2f(a.s);
  }
};

template <typename Wt>
struct K32 {
  using Block = typename Wt::Block;
  using ABlock = typename Wt::ABlock;
  template <int NT>
  static void row(const Block* w, const ABlock* const* a, float* out, int64_t nb) {
    float s[NT];
    for (int t = 0; t < NT; ++t) s[t] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int8x16_t c[2];
      Wt::unpack(w[b], c);
      for (int t = 0; t < NT; ++t) {
        int32x4_t acc = dot16(vdupq_n_s32(0), c[0], load_s8(a[t][b].qs));
        acc = dot16(acc, c[1], load_s8(a[t][b].qs + 16));
        Wt::fma(w[b], a[t][b], vaddvq_s32(acc), s[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
  }
};

// ---------------------------------------------------------------------------------------------
// K-quants against Q8_K. unpack() gives the 256 signed codes as 16 vectors in element order and
// the 16 integer scales of the 16-element groups (Q4_K/Q5_K: each 32-element scale twice); the
// block's integer sum is sum_g scale_g * dot(codes_g, q8_g), exact in int32.

struct KBlock {
  int8x16_t c[16];
  int32_t sc[16];
  int imin;  // sum of min_j * bsums (Q2_K/Q4_K/Q5_K), from the activation: set in fma()
};

inline int ksum(const KBlock& k, const block_q8_K& a) {
  int32x4_t tot = vdupq_n_s32(0);
  for (int g = 0; g < 16; g += 4) {
    int32x4_t p[4];
    for (int i = 0; i < 4; ++i) p[i] = dot16(vdupq_n_s32(0), k.c[g + i], load_s8(a.qs + 16 * (g + i)));
    const int32x4_t sums = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));  // lane i: group g+i
    tot = vmlaq_s32(tot, sums, vld1q_s32(k.sc + g));
  }
  return vaddvq_s32(tot);
}

// 16 bytes -> the 2-bit field at `shift` of each byte.
inline uint8x16_t field2(uint8x16_t q, int shift) {
  return vandq_u8(vshlq_u8(q, vdupq_n_s8(static_cast<int8_t>(-shift))), vdupq_n_u8(3));
}

struct Q2K {
  using Block = block_q2_K;
  static inline void unpack(const Block& b, KBlock& k) {
    for (int h = 0; h < 2; ++h)
      for (int second = 0; second < 2; ++second) {
        const uint8x16_t q = vld1q_u8(b.qs + 32 * h + 16 * second);
        for (int sh = 0; sh < 4; ++sh) k.c[8 * h + 2 * sh + second] = vreinterpretq_s8_u8(field2(q, 2 * sh));
      }
    for (int g = 0; g < 16; ++g) k.sc[g] = b.scales[g] & 0xF;
  }
  static inline void fma(const Block& w, const KBlock& k, const block_q8_K& a, float& s) {
    const int isum = ksum(k, a);
    int imin = 0;
    for (int g = 0; g < 16; ++g) imin += (w.scales[g] >> 4) * a.bsums[g];
    const float d = h2f(w.d) * a.d;
    const float dmin = h2f(w.dmin) * a.d;
    s += d * static_cast<float>(isum) - dmin * static_cast<float>(imin);
  }
};

struct Q3K {
  using Block = block_q3_K;
  static inline void unpack(const Block& b, KBlock& k) {
    for (int second = 0; second < 2; ++second) {
      const uint8x16_t hm = vld1q_u8(b.hmask + 16 * second);
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t q = vld1q_u8(b.qs + 32 * h + 16 * second);
        for (int sh = 0; sh < 4; ++sh) {
          const uint8x16_t set = vtstq_u8(hm, vdupq_n_u8(static_cast<uint8_t>(1u << (4 * h + sh))));
          const uint8x16_t minus = vbicq_u8(vdupq_n_u8(4), set);  // 4 where the high bit is clear
          k.c[8 * h + 2 * sh + second] = vsubq_s8(vreinterpretq_s8_u8(field2(q, 2 * sh)), vreinterpretq_s8_u8(minus));
        }
      }
    }
    for (int g = 0; g < 16; ++g) k.sc[g] = q3k_scale(b.scales, g);
  }
  static inline void fma(const Block& w, const KBlock& k, const block_q8_K& a, float& s) {
    s += h2f(w.d) * a.d * static_cast<float>(ksum(k, a));
  }
};

template <bool Five>
struct Q45K {
  using Block = std::conditional_t<Five, block_q5_K, block_q4_K>;
  static inline void unpack(const Block& b, KBlock& k) {
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = b.qs + 32 * (j / 2);
      for (int half = 0; half < 2; ++half) {
        const uint8x16_t v = vld1q_u8(q + 16 * half);
        uint8x16_t u = (j % 2) ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F));
        if constexpr (Five) {
          const uint8x16_t set = vtstq_u8(vld1q_u8(b.qh + 16 * half), vdupq_n_u8(static_cast<uint8_t>(1u << j)));
          u = vorrq_u8(u, vandq_u8(set, vdupq_n_u8(0x10)));
        }
        k.c[2 * j + half] = vreinterpretq_s8_u8(u);
      }
      uint8_t sc, mn;
      get_scale_min_k4(j, b.scales, sc, mn);
      k.sc[2 * j] = k.sc[2 * j + 1] = sc;
    }
  }
  static inline void fma(const Block& w, const KBlock& k, const block_q8_K& a, float& s) {
    const int isum = ksum(k, a);
    int imin = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, mn;
      get_scale_min_k4(j, w.scales, sc, mn);
      imin += mn * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    }
    const float d = h2f(w.d) * a.d;
    const float dmin = h2f(w.dmin) * a.d;
    s += d * static_cast<float>(isum) - dmin * static_cast<float>(imin);
  }
};

using Q4K = Q45K<false>;
using Q5K = Q45K<true>;

struct Q6K {
  using Block = block_q6_K;
  static inline void unpack(const Block& b, KBlock& k) {
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      for (int kk = 0; kk < 4; ++kk)
        for (int is = 0; is < 2; ++is) {
          const uint8x16_t lq = vld1q_u8(ql + 16 * is + 32 * (kk % 2));
          const uint8x16_t lo = kk < 2 ? vandq_u8(lq, vdupq_n_u8(0x0F)) : vshrq_n_u8(lq, 4);
          const uint8x16_t hi = vshlq_n_u8(field2(vld1q_u8(qh + 16 * is), 2 * kk), 4);
          k.c[8 * half + 2 * kk + is] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hi)), vdupq_n_s8(32));
        }
    }
    for (int g = 0; g < 16; ++g) k.sc[g] = b.scales[g];
  }
  static inline void fma(const Block& w, const KBlock& k, const block_q8_K& a, float& s) {
    s += h2f(w.d) * a.d * static_cast<float>(ksum(k, a));
  }
};

template <typename Kt>
struct KQK {
  using Block = typename Kt::Block;
  using ABlock = block_q8_K;
  template <int NT>
  static void row(const Block* w, const ABlock* const* a, float* out, int64_t nb) {
    float s[NT];
    for (int t = 0; t < NT; ++t) s[t] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      KBlock k;
      Kt::unpack(w[b], k);
      for (int t = 0; t < NT; ++t) Kt::fma(w[b], k, a[t][b], s[t]);
    }
    for (int t = 0; t < NT; ++t) out[t] = s[t];
  }
};

// ---------------------------------------------------------------------------------------------
// Float types: 4 x 4 f32 lanes of FMAs, lane sums in a fixed order, then the scalar tail.

struct LoadF32 {
  using T = float;
  static inline float32x4_t load4(const float* p) { return vld1q_f32(p); }
  static inline float one(const float* p) { return *p; }
};
struct LoadF16 {
  using T = uint16_t;
  static inline float32x4_t load4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static inline float one(const uint16_t* p) { return h2f(*p); }
};
struct LoadBF16 {
  using T = uint16_t;
  static inline float32x4_t load4(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static inline float one(const uint16_t* p) { return bf16_to_fp32(*p); }
};

template <typename L>
struct KFloat {
  using Block = typename L::T;
  using ABlock = typename L::T;
  template <int NT>
  static void row(const Block* w, const ABlock* const* a, float* out, int64_t n) {
    float32x4_t acc[NT][4];
    for (int t = 0; t < NT; ++t)
      for (int j = 0; j < 4; ++j) acc[t][j] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      float32x4_t wv[4];
      for (int j = 0; j < 4; ++j) wv[j] = L::load4(w + i + 4 * j);
      for (int t = 0; t < NT; ++t)
        for (int j = 0; j < 4; ++j) acc[t][j] = vfmaq_f32(acc[t][j], wv[j], L::load4(a[t] + i + 4 * j));
    }
    for (int t = 0; t < NT; ++t) {
      const float32x4_t v = vaddq_f32(vaddq_f32(acc[t][0], acc[t][1]), vaddq_f32(acc[t][2], acc[t][3]));
      const float32x2_t p = vadd_f32(vget_low_f32(v), vget_high_f32(v));
      float s = vget_lane_f32(p, 0) + vget_lane_f32(p, 1);
      for (int64_t j = i; j < n; ++j) s += L::one(w + j) * L::one(a[t] + j);
      out[t] = s;
    }
  }
};

// ---- the rectangle driver: every row of the rectangle against token groups of 4 (then 3/2/1).

template <typename K, int NT>
void run_group(const DotArgs& p, int64_t t0, int64_t nb) {
  using ABlock = typename K::ABlock;
  const ABlock* a[NT];
  for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const ABlock*>(p.a + (t0 + t) * p.a_stride);
  for (int64_t r = p.r0; r < p.r1; ++r) {
    float out[NT];
    K::template row<NT>(reinterpret_cast<const typename K::Block*>(p.w + r * p.w_stride), a, out, nb);
    for (int t = 0; t < NT; ++t) p.y[(t0 + t) * p.ldy + r] = out[t];
  }
}

// BlockElems: elements per weight block (1 for the float types: `nb` is then n).
template <typename K, int BlockElems>
void rect(const DotArgs& p) {
  const int64_t nb = p.n / BlockElems;
  int64_t t = 0;
  for (; t + 4 <= p.n_tok; t += 4) run_group<K, 4>(p, t, nb);
  switch (p.n_tok - t) {
    case 3: run_group<K, 3>(p, t, nb); break;
    case 2: run_group<K, 2>(p, t, nb); break;
    case 1: run_group<K, 1>(p, t, nb); break;
    default: break;
  }
}

// ---------------------------------------------------------------------------------------------
// Activation quantizers: the reference's bytes (Q8_0/Q8_1 round ties away from zero with FCVTAS,
// Q8_K rounds ties to even with FCVTNS like ggml's nearest_int).

void quantize_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void quantize_f16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_bf16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  const uint32x4_t bias = vdupq_n_u32(0x7FFF), one = vdupq_n_u32(1), inf = vdupq_n_u32(0x7F800000);
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
    const uint32x4_t hi = vshrq_n_u32(u, 16);
    const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(vaddq_u32(u, bias), vandq_u32(hi, one)), 16);
    const uint32x4_t is_nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7FFFFFFF)), inf);
    const uint32x4_t v = vbslq_u32(is_nan, vorrq_u32(hi, vdupq_n_u32(64)), rounded);
    vst1_u16(y + i, vmovn_u32(v));
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// max |x| over 32 floats (maxnm: NaN ignored, as std::fmax in the reference)
inline float amax32(const float* x) {
  float32x4_t m = vabsq_f32(vld1q_f32(x));
  for (int k = 4; k < 32; k += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + k)));
  return vmaxnmvq_f32(m);
}

template <bool WithSum>
inline void quantize_q8_block(const float* x, int8_t* qs, uint16_t& dh, uint16_t* sh) {
  const float amax = amax32(x);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  dh = fp32_to_fp16(d);
  const float32x4_t vid = vdupq_n_f32(id);
  int32x4_t q[8];
  for (int k = 0; k < 8; ++k) q[k] = vcvtaq_s32_f32(vmulq_f32(vld1q_f32(x + 4 * k), vid));
  for (int k = 0; k < 2; ++k) {
    const int16x8_t a = vcombine_s16(vqmovn_s32(q[4 * k]), vqmovn_s32(q[4 * k + 1]));
    const int16x8_t b = vcombine_s16(vqmovn_s32(q[4 * k + 2]), vqmovn_s32(q[4 * k + 3]));
    vst1q_s8(qs + 16 * k, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
  }
  if constexpr (WithSum) {
    int32x4_t s = q[0];
    for (int k = 1; k < 8; ++k) s = vaddq_s32(s, q[k]);
    *sh = fp32_to_fp16(static_cast<float>(vaddvq_s32(s)) * d);
  }
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b) quantize_q8_block<false>(x + 32 * b, y[b].qs, y[b].d, nullptr);
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / QK8_1; ++b) quantize_q8_block<true>(x + 32 * b, y[b].qs, y[b].d, &y[b].s);
}

void quantize_q8_K(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float amax = 0.0f;
    for (int k = 0; k < QK_K; k += 32) amax = std::fmax(amax, amax32(x + k));
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    float max = 0.0f;  // the first element of the largest magnitude, as in the reference
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) == amax) {
        max = x[j];
        break;
      }
    const float iscale = -127.0f / max;
    const float32x4_t vs = vdupq_n_f32(iscale);
    const int32x4_t lim = vdupq_n_s32(127);
    for (int k = 0; k < QK_K; k += 16) {
      int32x4_t q[4];
      for (int m = 0; m < 4; ++m) q[m] = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k + 4 * m), vs)), lim);
      const int16x8_t a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
      const int16x8_t c = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
      const int8x16_t v = vcombine_s8(vqmovn_s16(a), vqmovn_s16(c));
      vst1q_s8(y[b].qs + k, v);
      y[b].bsums[k / 16] = vaddlvq_s8(v);
    }
    y[b].d = 1.0f / iscale;
  }
}

// ---------------------------------------------------------------------------------------------
// Attention over an fp16 cache: scores with 4 x 4 f32 lanes per key over the head dimension and a
// fixed-order lane sum; output rows accumulated with keys in ascending order. Head dimensions that
// are not a multiple of 16 (or above 256) take the reference path.

inline float32x4_t h4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

void attn_f16(const AttnArgs& a) {
  const int64_t D = a.d;
  if (D % 16 != 0 || D > 256 || D == 0) {
    table_ref().attn_f16(a);
    return;
  }
  float q[256];
  for (int64_t j = 0; j < D; j += 4) vst1q_f32(q + j, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(a.q + j))));
  float* sc = a.scores;
  float max = -INFINITY;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const uint16_t* kr = a.k + k * D;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t j = 0; j < D; j += 16) {
      acc0 = vfmaq_f32(acc0, vld1q_f32(q + j), h4(kr + j));
      acc1 = vfmaq_f32(acc1, vld1q_f32(q + j + 4), h4(kr + j + 4));
      acc2 = vfmaq_f32(acc2, vld1q_f32(q + j + 8), h4(kr + j + 8));
      acc3 = vfmaq_f32(acc3, vld1q_f32(q + j + 12), h4(kr + j + 12));
    }
    const float32x4_t v = vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3));
    const float32x2_t p = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    const float s = (vget_lane_f32(p, 0) + vget_lane_f32(p, 1)) * a.scale + a.slope * static_cast<float>(k - a.pos);
    sc[k] = s;
    max = s > max ? s : max;
  }
  double sum = 0.0;
  for (int64_t k = 0; k < a.n_kv; ++k) {
    const float e = std::exp(sc[k] - max);
    sc[k] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t d0 = 0; d0 < D; d0 += 32) {  // 8 accumulators of 4 columns per pass over the keys
    const int64_t m = D - d0 < 32 ? (D - d0) / 4 : 8;
    float32x4_t acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = vdupq_n_f32(0.0f);
    const uint16_t* vr = a.v + d0;
    for (int64_t k = 0; k < a.n_kv; ++k, vr += D) {
      const float32x4_t p = vdupq_n_f32(sc[k] * inv);
      for (int64_t j = 0; j < m; ++j) acc[j] = vfmaq_f32(acc[j], p, h4(vr + 4 * j));
    }
    for (int64_t j = 0; j < m; ++j) vst1q_f32(a.out + d0 + 4 * j, acc[j]);
  }
}

// Bias + fp16-table GELU, 4 at a time: the fp16 index with FCVTN, the table read per lane.
void bias_gelu(float* x, const float* b, int64_t n, const uint16_t* table) {
  int64_t i = 0;
  const float32x4_t lo = vdupq_n_f32(-10.0f), hi = vdupq_n_f32(10.0f);
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vaddq_f32(vld1q_f32(x + i), vld1q_f32(b + i));
    uint16_t idx[4], g[4];
    vst1_u16(idx, vreinterpret_u16_f16(vcvt_f16_f32(v)));
    for (int l = 0; l < 4; ++l) g[l] = table[idx[l]];
    float32x4_t r = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(g)));
    r = vbslq_f32(vcgeq_f32(v, hi), v, r);
    r = vbslq_f32(vcleq_f32(v, lo), vdupq_n_f32(0.0f), r);
    vst1q_f32(x + i, r);
  }
  for (; i < n; ++i) {
    const float v = x[i] + b[i];
    x[i] = v <= -10.0f ? 0.0f : (v >= 10.0f ? v : h2f(table[f2h(v)]));
  }
}

const KernelTable kTable = {
#if BLOOMZ_NEON_DOTPROD
    "neon-dot",
#else
    "neon",
#endif
    {quantize_f32, quantize_f16, quantize_bf16, quantize_q8_0, quantize_q8_1, quantize_q8_K},
    {rect<KFloat<LoadF32>, 1>, rect<KFloat<LoadF16>, 1>, rect<KFloat<LoadBF16>, 1>, rect<K32<W4_0>, 32>,
     rect<K32<W4_1>, 32>, rect<K32<W5_0>, 32>, rect<K32<W5_1>, 32>, rect<K32<W8_0>, 32>, rect<KQK<Q2K>, QK_K>,
     rect<KQK<Q3K>, QK_K>, rect<KQK<Q4K>, QK_K>, rect<KQK<Q5K>, QK_K>, rect<KQK<Q6K>, QK_K>},
    attn_f16,
    bias_gelu,
    {},  // no x8 kernels: matmul unpacks x8 groups for this table
};

}  // namespace
}  // namespace bloomz::kernels::BLOOMZ_NEON_NS
