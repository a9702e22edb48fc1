// Row dequantization to f32 for every weight type (the embedding lookup), in portable scalar code
// that follows ggml's dequantize_row_* formulas operation for operation (bit-exact with ggml).
#include <cstring>

#include "bloomz/error.hpp"
#include "bloomz/fp16.hpp"
#include "bloomz/matmul.hpp"
#include "kernels/blocks.hpp"
#include "kernels/kernels.hpp"

namespace bloomz::kernels {
namespace {

float h2f(uint16_t h) { return fp16_to_fp32(h); }

void deq_q4_0(const block_q4_0* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    const float d = h2f(x[b].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((x[b].qs[j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void deq_q4_1(const block_q4_1* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    const float d = h2f(x[b].d), m = h2f(x[b].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(x[b].qs[j] & 0xF) * d + m;
      y[j + 16] = static_cast<float>(x[b].qs[j] >> 4) * d + m;
    }
  }
}

void deq_q5_0(const block_q5_0* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    const float d = h2f(x[b].d);
    uint32_t qh;
    std::memcpy(&qh, x[b].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int q0 = ((x[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int q1 = ((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      y[j] = static_cast<float>(q0) * d;
      y[j + 16] = static_cast<float>(q1) * d;
    }
  }
}

void deq_q5_1(const block_q5_1* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    const float d = h2f(x[b].d), m = h2f(x[b].m);
    uint32_t qh;
    std::memcpy(&qh, x[b].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[b].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int q1 = (x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(q0) * d + m;
      y[j + 16] = static_cast<float>(q1) * d + m;
    }
  }
}

void deq_q8_0(const block_q8_0* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += 32) {
    const float d = h2f(x[b].d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void deq_q2_K(const block_q2_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
    int is = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = x[b].qs + 32 * h;
      for (int s = 0; s < 4; ++s) {
        for (int second = 0; second < 2; ++second) {
          const uint8_t sc = x[b].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l)
            *y++ = dl * static_cast<float>((q[l + 16 * second] >> (2 * s)) & 3) - ml;
        }
      }
    }
  }
}

void deq_q3_K(const block_q3_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float d_all = h2f(x[b].d);
    int is = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = x[b].qs + 32 * h;
      for (int s = 0; s < 4; ++s) {
        const uint8_t m = static_cast<uint8_t>(1u << (4 * h + s));
        for (int second = 0; second < 2; ++second) {
          const float dl = d_all * static_cast<float>(q3k_scale(x[b].scales, is++));
          for (int l = 0; l < 16; ++l) {
            const int v = static_cast<int8_t>((q[l + 16 * second] >> (2 * s)) & 3) -
                          ((x[b].hmask[l + 16 * second] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void deq_q4_K(const block_q4_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, mn;
      get_scale_min_k4(2 * c, x[b].scales, sc, mn);
      const float d1 = d * sc, m1 = dmin * mn;
      get_scale_min_k4(2 * c + 1, x[b].scales, sc, mn);
      const float d2 = d * sc, m2 = dmin * mn;
      const uint8_t* q = x[b].qs + 32 * c;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void deq_q5_K(const block_q5_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, mn;
      get_scale_min_k4(2 * c, x[b].scales, sc, mn);
      const float d1 = d * sc, m1 = dmin * mn;
      get_scale_min_k4(2 * c + 1, x[b].scales, sc, mn);
      const float d2 = d * sc, m2 = dmin * mn;
      const uint8_t* q = x[b].qs + 32 * c;
      const uint8_t u1 = static_cast<uint8_t>(1u << (2 * c)), u2 = static_cast<uint8_t>(2u << (2 * c));
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((q[l] & 0xF) + ((x[b].qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((q[l] >> 4) + ((x[b].qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void deq_q6_K(const block_q6_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float d = h2f(x[b].d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[b].ql + 64 * half;
      const uint8_t* qh = x[b].qh + 32 * half;
      const int8_t* sc = x[b].scales + 8 * half;
      float* yy = y + 128 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yy[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        yy[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        yy[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        yy[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
    y += QK_K;
  }
}

void deq_q8_K(const block_q8_K* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b)
    for (int j = 0; j < QK_K; ++j) *y++ = x[b].d * static_cast<float>(x[b].qs[j]);
}

}  // namespace

bool dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return true;
    case GgmlType::F16: fp16_to_fp32_row(static_cast<const uint16_t*>(src), dst, n); return true;
    case GgmlType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return true;
    }
    case GgmlType::Q4_0: deq_q4_0(static_cast<const block_q4_0*>(src), dst, n / 32); return true;
    case GgmlType::Q4_1: deq_q4_1(static_cast<const block_q4_1*>(src), dst, n / 32); return true;
    case GgmlType::Q5_0: deq_q5_0(static_cast<const block_q5_0*>(src), dst, n / 32); return true;
    case GgmlType::Q5_1: deq_q5_1(static_cast<const block_q5_1*>(src), dst, n / 32); return true;
    case GgmlType::Q8_0: deq_q8_0(static_cast<const block_q8_0*>(src), dst, n / 32); return true;
    case GgmlType::Q2_K: deq_q2_K(static_cast<const block_q2_K*>(src), dst, n / QK_K); return true;
    case GgmlType::Q3_K: deq_q3_K(static_cast<const block_q3_K*>(src), dst, n / QK_K); return true;
    case GgmlType::Q4_K: deq_q4_K(static_cast<const block_q4_K*>(src), dst, n / QK_K); return true;
    case GgmlType::Q5_K: deq_q5_K(static_cast<const block_q5_K*>(src), dst, n / QK_K); return true;
    case GgmlType::Q6_K: deq_q6_K(static_cast<const block_q6_K*>(src), dst, n / QK_K); return true;
    case GgmlType::Q8_K: deq_q8_K(static_cast<const block_q8_K*>(src), dst, n / QK_K); return true;
    default: return false;
  }
}

}  // namespace bloomz::kernels

namespace bloomz {

void dequantize_row(GgmlType type, const std::byte* src, float* dst, int64_t n) {
  if (!kernels::dequantize_row_ref(type, src, dst, n))
    throw Error(ErrorKind::Unsupported, "dequantize_row: no dequantization for this tensor type");
}

}  // namespace bloomz
