// The x86-64 kernel body, compiled once per table by a small translation unit that sets:
//   BLOOMZ_X86_NS      the table's namespace (avx2, avx512, avx512vnni; *_emu for the SIMDe builds)
//   BLOOMZ_X86_NAME    the table's name
//   BLOOMZ_X86_AVX512  1: AVX-512 F/BW/VL/DQ (512-bit kernels where they pay, AVX-512VL helpers)
//   BLOOMZ_X86_VNNI    1: AVX-512 VNNI (vpdpbusd for the int8 dots)
// and exactly its compiler flags. Everything here has internal linkage inside
// bloomz::kernels::BLOOMZ_X86_NS (see style.md 4.4); the ISA differences live in small helpers
// (x86_simd_ops.inl), so every table runs the same kernels with the same per-output arithmetic.
//
// Dots (small batches): each weight row is streamed once per group of up to 4 tokens; every weight block is
// unpacked once and multiplied with the group's activation blocks (32-element types: 8 rows x 4
// tokens per call; K-quants and float types: 1 row x 4 tokens). Per output, the float operations
// do not depend on the group size or on the neighbouring rows, so results are bit-identical for any
// batch size and thread count. Compiled with -ffp-contract=off as well, so that no template
// instantiation contracts differently from another.
#include "kernels/x86_intrin.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "bloomz/fp16.hpp"
#include "kernels/blocks.hpp"
#include "kernels/kernels.hpp"
#include "kernels/repack.hpp"

namespace bloomz::kernels::BLOOMZ_X86_NS {
namespace {

// Per-thread scratch memory. Deliberately not std::vector: a standard-library template instantiated
// here would be compiled with AVX2 flags and could be merged by the linker with the baseline
// copies (style.md 4.4); this type has internal linkage.
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(p); }
  template <typename T>
  T* get(size_t count) {
    const size_t bytes = count * sizeof(T);
    if (bytes > cap) {
      std::free(p);
      cap = (bytes + 4095) / 4096 * 4096;
      p = std::aligned_alloc(64, cap);
      if (!p) std::abort();
    }
    return static_cast<T*>(p);
  }
};

#include "kernels/x86_simd_ops.inl"

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

#if BLOOMZ_X86_AVX512
// 16 lanes -> 8: lane i + lane i + 8.
inline __m256 fold16(__m512 v) {
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
#endif

// Fixed-order horizontal sum of 8 lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles (ggml's element order).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// Output byte i = 0xFF where bit i % 8 of source byte idx[i] (within its 128-bit lane) is set.
inline __m256i spread_bits(__m256i src, __m256i idx) {
  const __m256i bitsel = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(src, idx), bitsel), bitsel);
}

// 32 bits -> 32 bytes, 0xFF where the bit is set.
inline __m256i bits_to_bytes(uint32_t bits) {
  const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  return spread_bits(_mm256_set1_epi32(static_cast<int>(bits)), idx);
}

// signed x signed bytes -> 8 lanes of i32 sums of four products (x may be -128; y never is).
inline __m256i dot_s8(__m256i x, __m256i y) {
  return dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// The sum of 32 signed bytes: sad of (q + 128) against zero, minus 32 * 128.
inline int sum_q8(const int8_t* qs) {
  const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(loadu(qs), _mm256_set1_epi8(static_cast<char>(0x80))), _mm256_setzero_si256());
  const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
  return _mm_cvtsi128_si32(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2))) - 32 * 128;
}

// unsigned (<= 63) x signed bytes -> 16 lanes of i16.
inline __m256i dot_u8_16(__m256i u, __m256i y) { return _mm256_maddubs_epi16(u, y); }

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Kernels: K::Ctx<NT> is built once per token group (and rectangle), then either
// K::rows8<NT>(8 weight rows, ctx, NT vectors of 8 row outputs, n), K::rows<NT, R>(R weight rows,
// stride, ctx, outputs, ldy, n) or K::row<NT>(weight row, ctx, NT outputs, n).

// 32-element block types, register-tiled as 8 weight rows x up to 4 tokens: for every block, the
// integer dots of the 8 rows with one token are reduced into one vector whose lane i is row i's exact
// block sum, so the float work (scale, convert, FMA) is one vector op per 8 rows. Per output the
// float operations are acc = fma(d_w * d_a, isum_b, acc) in block order (+ for Q8_1 activations a
// separate m_w * s_a accumulator), whatever the number of tokens or rows around it.
//
// Codes: unsigned 0..15 / 0..31 with an offset (Q4_0: -8, Q5_0: -16) subtracted as offset * sum(q8)
// per block (exact integers), or signed int8 (Q8_0, via the sign trick).
struct W8_0 {
  using Block = block_q8_0;
  using ABlock = block_q8_0;
  static constexpr int kOffset = 0;
  static constexpr bool kSignedCodes = true;
  static constexpr bool kMin = false;
  static __m256i codes(const Block& b) { return loadu(b.qs); }
};
struct W4_0 {
  using Block = block_q4_0;
  using ABlock = block_q8_0;
  static constexpr int kOffset = 8;
  static constexpr bool kSignedCodes = false;
  static constexpr bool kMin = false;
  static __m256i codes(const Block& b) { return unpack_nibbles(b.qs); }
};
struct W5_0 {
  using Block = block_q5_0;
  using ABlock = block_q8_0;
  static constexpr int kOffset = 16;
  static constexpr bool kSignedCodes = false;
  static constexpr bool kMin = false;
  static __m256i codes(const Block& b) {
    return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(load_u32(b.qh)), _mm256_set1_epi8(0x10)));
  }
};
struct W4_1 {
  using Block = block_q4_1;
  using ABlock = block_q8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kSignedCodes = false;
  static constexpr bool kMin = true;
  static __m256i codes(const Block& b) { return unpack_nibbles(b.qs); }
};
struct W5_1 {
  using Block = block_q5_1;
  using ABlock = block_q8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kSignedCodes = false;
  static constexpr bool kMin = true;
  static __m256i codes(const Block& b) {
    return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(load_u32(b.qh)), _mm256_set1_epi8(0x10)));
  }
};

// Activation rows of a token group (kernels build their per-group context from it).
template <int NT>
struct Acts {
  const std::byte* a[NT];
};

// The rows of the next 8-row group are read as 8 short interleaved streams, too short for the
// hardware prefetchers to ramp up; so each block step prefetches a slice of the next group.
struct Prefetch {
  const char* base;
  int64_t lines_per_block;
  inline void operator()(int64_t b) const {
    const char* q = base + b * lines_per_block * 64;
    for (int64_t i = 0; i < lines_per_block; ++i) _mm_prefetch(q + 64 * i, _MM_HINT_T0);
  }
};

// Lane i of the result = sum of the 8 lanes of p[i] (exact integer sums).
inline __m256i reduce8(const __m256i* p) {
  const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
  const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

template <typename Wt>
struct K32 {
  using W = Wt;
  using Block = typename Wt::Block;
  using ABlock = typename Wt::ABlock;
  static constexpr bool kTiled8 = true;
  static constexpr bool kRows16 = std::is_same_v<Wt, W4_0>;  // AVX-512 tables: Rows16Q4_0

  template <int NT>
  struct Ctx {
    const ABlock* a[NT];
    const float* d[NT];
    const float* s[NT];   // Q8_1: the stored s = fp16(d * sum q)
    const int32_t* off[NT];  // offset * sum q (Q4_0, Q5_0)
    Ctx(const Acts<NT>& acts, int64_t n) {
      static thread_local Scratch fbuf, ibuf;
      const int64_t nb = n / 32;
      float* fb = fbuf.get<float>(static_cast<size_t>(2 * NT * nb));
      int32_t* ib = ibuf.get<int32_t>(static_cast<size_t>(NT * nb));
      for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const ABlock*>(acts.a[t]);
        float* dd = fb + 2 * t * nb;
        float* ss = dd + nb;
        int32_t* oo = ib + t * nb;
        for (int64_t b = 0; b < nb; ++b) {
          dd[b] = h2f(a[t][b].d);
          if constexpr (Wt::kMin) ss[b] = h2f(a[t][b].s);
          if constexpr (Wt::kOffset != 0) {
            oo[b] = Wt::kOffset * sum_q8(a[t][b].qs);
          }
        }
        d[t] = dd;
        s[t] = ss;
        off[t] = oo;
      }
    }
  };

  // 8 weight rows (pointers; duplicates allowed for a ragged tail) x NT tokens -> out[t] lanes = rows.
  template <int NT>
  static void rows8(const Block* const* w, const Ctx<NT>& c, __m256* out, int64_t n, const Prefetch& pf) {
    __m256 acc[NT], macc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b) {
      pf(b);
      __m256i u[8];
      for (int r = 0; r < 8; ++r) u[r] = Wt::codes(w[r][b]);
      const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
          static_cast<short>(w[0][b].d), static_cast<short>(w[1][b].d), static_cast<short>(w[2][b].d),
          static_cast<short>(w[3][b].d), static_cast<short>(w[4][b].d), static_cast<short>(w[5][b].d),
          static_cast<short>(w[6][b].d), static_cast<short>(w[7][b].d)));
      __m256 mw = _mm256_setzero_ps();
      if constexpr (Wt::kMin)
        mw = _mm256_cvtph_ps(_mm_setr_epi16(
            static_cast<short>(w[0][b].m), static_cast<short>(w[1][b].m), static_cast<short>(w[2][b].m),
            static_cast<short>(w[3][b].m), static_cast<short>(w[4][b].m), static_cast<short>(w[5][b].m),
            static_cast<short>(w[6][b].m), static_cast<short>(w[7][b].m)));
      for (int t = 0; t < NT; ++t) {
        const __m256i qa = loadu(c.a[t][b].qs);
        __m256i p[8];
        for (int r = 0; r < 8; ++r) {
          if constexpr (Wt::kSignedCodes) p[r] = dot_s8(u[r], qa);
          else p[r] = dpbusd(_mm256_setzero_si256(), u[r], qa);
        }
        __m256i isum = reduce8(p);
        if constexpr (Wt::kOffset != 0) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(c.off[t][b]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(c.d[t] + b)), _mm256_cvtepi32_ps(isum), acc[t]);
        if constexpr (Wt::kMin) macc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(c.s[t] + b), macc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = Wt::kMin ? _mm256_add_ps(acc[t], macc[t]) : acc[t];
  }
};

// Nibble types (Q4_0, Q4_1, Q5_0, Q5_1): two rows share one register, [row r | row r+1] for the low
// nibbles and the same for the high nibbles, against the activation halves broadcast to both
// lanes; then 3 horizontal adds give the 8 rows' exact block sums in lane order 0,2,4,6,1,3,5,7
// (scales are gathered in that order, and the result is put back in row order at the end).
template <typename Wt>
struct KNib : K32<Wt> {
  using Block = typename Wt::Block;
  template <int NT>
  using Ctx = typename K32<Wt>::template Ctx<NT>;

  static inline void pair_codes(const Block& b0, const Block& b1, __m256i& lo, __m256i& hi) {
    const __m256i v = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b1.qs), reinterpret_cast<const __m128i*>(b0.qs));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    lo = _mm256_and_si256(v, m4);
    hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if constexpr (std::is_same_v<Block, block_q5_0> || std::is_same_v<Block, block_q5_1>) {
      // Both rows' 32 fifth bits in one broadcast (row b0: bytes 0-3, row b1: bytes 4-7); the low
      // lane takes row b0's bytes, the high lane row b1's: bytes 0-1 / 4-5 for elements 0-15 (lo),
      // bytes 2-3 / 6-7 for elements 16-31 (hi); each byte spread over 8 lanes, one bit per lane.
      const __m256i h = _mm256_set1_epi64x(static_cast<long long>(load_u32(b0.qh) | (uint64_t{load_u32(b1.qh)} << 32)));
      const __m256i lo_bytes = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
      const __m256i hi_bytes = _mm256_add_epi8(lo_bytes, _mm256_set1_epi8(2));
      const __m256i b5 = _mm256_set1_epi8(0x10);
      lo = _mm256_or_si256(lo, _mm256_and_si256(spread_bits(h, lo_bytes), b5));
      hi = _mm256_or_si256(hi, _mm256_and_si256(spread_bits(h, hi_bytes), b5));
    }
  }

  template <int NT>
  static void rows8(const Block* const* w, const Ctx<NT>& c, __m256* out, int64_t n, const Prefetch& pf) {
    __m256 acc[NT], macc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n / 32; ++b) {
      pf(b);
      __m256i lo[4], hi[4];
      for (int k = 0; k < 4; ++k) pair_codes(w[2 * k][b], w[2 * k + 1][b], lo[k], hi[k]);
      const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
          static_cast<short>(w[0][b].d), static_cast<short>(w[2][b].d), static_cast<short>(w[4][b].d),
          static_cast<short>(w[6][b].d), static_cast<short>(w[1][b].d), static_cast<short>(w[3][b].d),
          static_cast<short>(w[5][b].d), static_cast<short>(w[7][b].d)));
      __m256 mw = _mm256_setzero_ps();
      if constexpr (Wt::kMin)
        mw = _mm256_cvtph_ps(_mm_setr_epi16(
            static_cast<short>(w[0][b].m), static_cast<short>(w[2][b].m), static_cast<short>(w[4][b].m),
            static_cast<short>(w[6][b].m), static_cast<short>(w[1][b].m), static_cast<short>(w[3][b].m),
            static_cast<short>(w[5][b].m), static_cast<short>(w[7][b].m)));
      for (int t = 0; t < NT; ++t) {
        const __m256i qlo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.a[t][b].qs)));
        const __m256i qhi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.a[t][b].qs + 16)));
        __m256i pr[4];
        for (int k = 0; k < 4; ++k)
          pr[k] = kVnni ? dpbusd(dpbusd(_mm256_setzero_si256(), lo[k], qlo), hi[k], qhi)
                        : _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[k], qlo), _mm256_maddubs_epi16(hi[k], qhi)), ones);
        __m256i isum = _mm256_hadd_epi32(_mm256_hadd_epi32(pr[0], pr[1]), _mm256_hadd_epi32(pr[2], pr[3]));
        if constexpr (Wt::kOffset != 0) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(c.off[t][b]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(c.d[t] + b)), _mm256_cvtepi32_ps(isum), acc[t]);
        if constexpr (Wt::kMin) macc[t] = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(c.s[t] + b), macc[t]);
      }
    }
    const __m256i to_rows = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int t = 0; t < NT; ++t)
      out[t] = _mm256_permutevar8x32_ps(Wt::kMin ? _mm256_add_ps(acc[t], macc[t]) : acc[t], to_rows);
  }
};

#if BLOOMZ_X86_AVX512
// Small token groups (decoding) over Q4_0 rows in the file's layout, AVX-512 tables: 16 rows per
// step, four rows per register (128-bit chunk k = row k of the four); two unpack+add rounds leave
// one exact block sum per row, with the rows in a fixed lane order (lane_row) that the gathered
// scales follow, put back in row order at the end. Per output the integer sums and float steps are
// those of rows8. (A Q8_0 twin, two rows per register, ran 12 % slower than the 8-row loop: dropped.)
inline __m512i load4x16(const void* p0, const void* p1, const void* p2, const void* p3) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu2_m128i(static_cast<const __m128i*>(p1), static_cast<const __m128i*>(p0))),
                            _mm256_loadu2_m128i(static_cast<const __m128i*>(p3), static_cast<const __m128i*>(p2)), 1);
}
// Per 128-bit chunk: [a, b, c, d] lane sums -> element e = the sum of register e's four lanes.
inline __m512i reduce4x4(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

struct Rows16Q4_0 {
  using Block = W4_0::Block;
  // Lane L = 4c + e (128-bit chunk c, element e) holds register e's chunk c: row 4e + c.
  static constexpr int lane_row(int L) { return 4 * (L % 4) + L / 4; }

  template <int NT>
  static void run(const Block* const* w, const typename K32<W4_0>::template Ctx<NT>& c, __m512* out, int64_t n,
                  const Prefetch& pf) {
    alignas(64) int32_t off[16];
    for (int L = 0; L < 16; ++L)
      off[L] = static_cast<int32_t>(reinterpret_cast<const char*>(w[lane_row(L)]) - reinterpret_cast<const char*>(w[0]));
    const __m512i idx = _mm512_load_si512(off);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b) {
      pf(b);
      // the 16 rows' fp16 scales (the low half of a 32-bit gather at each block start), in lane order
      const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(idx, &w[0][b].d, 1)));
      __m512i lo[4], hi[4];
      for (int j = 0; j < 4; ++j) {
        const __m512i v = load4x16(w[4 * j][b].qs, w[4 * j + 1][b].qs, w[4 * j + 2][b].qs, w[4 * j + 3][b].qs);
        lo[j] = _mm512_and_si512(v, m4);
        hi[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      }
      for (int t = 0; t < NT; ++t) {
        const __m512i qlo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.a[t][b].qs)));
        const __m512i qhi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.a[t][b].qs + 16)));
        __m512i pr[4];
        for (int j = 0; j < 4; ++j) pr[j] = V16::dpbusd(V16::dpbusd(_mm512_setzero_si512(), lo[j], qlo), hi[j], qhi);
        const __m512i isum = _mm512_sub_epi32(reduce4x4(pr[0], pr[1], pr[2], pr[3]), _mm512_set1_epi32(c.off[t][b]));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(c.d[t][b])), _mm512_cvtepi32_ps(isum), acc[t]);
      }
    }
    alignas(64) int32_t to_rows[16];
    for (int L = 0; L < 16; ++L) to_rows[lane_row(L)] = L;
    const __m512i perm = _mm512_load_si512(to_rows);
    for (int t = 0; t < NT; ++t) out[t] = _mm512_permutexvar_ps(perm, acc[t]);
  }
};
template <typename K>
concept HasRows16 = K::kRows16;
#endif

// Kernels without per-group preparation just see the activation pointers.
template <int NT>
struct PlainCtx {
  const std::byte* a[NT];
  PlainCtx(const Acts<NT>& acts, int64_t) {
    for (int t = 0; t < NT; ++t) a[t] = acts.a[t];
  }
};

// ---- K-quants. Every block is seen as 8 groups of 32 unsigned codes u (in element order) with 16
// signed 16-bit scales (one per 16 elements); isum = sum_g sc_g * sum u*q8 - offset * sum_g sc_g*bsum_g.

// The 16 block scales (int16, one per 16 elements) rearranged once per block so that one
// shuffle gives the scale vector of a 32-element group: the low lane holds the even-numbered
// scales (the first 16 elements of each group), the high lane the odd-numbered ones.
inline __m256i split_scales(__m256i sc16) {
  const __m256i evens_odds = _mm256_shuffle_epi8(sc16, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                                                        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
  // quads: e0-6 o1-7 | e8-14 o9-15  ->  e0-6 e8-14 | o1-7 o9-15
  return _mm256_permute4x64_epi64(evens_odds, 0xD8);
}

// Scale vector for 32-element group k from split_scales(): lanes 0..7 = sc[2k], 8..15 = sc[2k+1].
inline __m256i group_scales(__m256i split, int k) {
  return _mm256_shuffle_epi8(split, _mm256_set1_epi16(static_cast<short>((2 * k) | ((2 * k + 1) << 8))));
}

inline __m256i srl16(__m256i v, int s) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(s)); }

// v shifted per 16-bit lane by s bits, left for s > 0 and right for s < 0 (s is a constant once
// the group loop is unrolled). Moving bit k of every byte to bit p is then one shift and one mask
// (shift16(v, p - k) & bit p) for k, p < 8: bits crossing into the neighbouring byte are masked off.
inline __m256i shift16(__m256i v, int s) {
  return s >= 0 ? _mm256_sll_epi16(v, _mm_cvtsi32_si128(s)) : _mm256_srl_epi16(v, _mm_cvtsi32_si128(-s));
}

// Q2_K: u = (qs[32h + l] >> 2s) & 3 for group k = 4h + s.
struct UnpackQ2K {
  __m256i q[2];
  explicit UnpackQ2K(const block_q2_K& b) : q{loadu(b.qs), loadu(b.qs + 32)} {}
  __m256i operator()(int k) const { return _mm256_and_si256(srl16(q[k / 4], 2 * (k % 4)), _mm256_set1_epi8(3)); }
};

// Q3_K: u = ((qs >> 2s) & 3) | hbit << 2 (value + 4), hbit = bit (4h + s) of hmask[l].
struct UnpackQ3K {
  __m256i q[2], hm;
  explicit UnpackQ3K(const block_q3_K& b) : q{loadu(b.qs), loadu(b.qs + 32)}, hm(loadu(b.hmask)) {}
  __m256i operator()(int k) const {
    const __m256i lo = _mm256_and_si256(srl16(q[k / 4], 2 * (k % 4)), _mm256_set1_epi8(3));
    const __m256i hb = _mm256_and_si256(shift16(hm, 2 - k), _mm256_set1_epi8(4));
    return _mm256_or_si256(lo, hb);
  }
};

// Q4_K: group 2c = low nibbles of qs[32c..], 2c + 1 = high nibbles.
struct UnpackQ4K {
  const uint8_t* qs;
  explicit UnpackQ4K(const block_q4_K& b) : qs(b.qs) {}
  __m256i operator()(int k) const {
    return _mm256_and_si256(srl16(loadu(qs + 32 * (k / 2)), 4 * (k % 2)), _mm256_set1_epi8(0x0F));
  }
};

// Q5_K: as Q4_K plus bit k of qh[l] as the 5th bit.
struct UnpackQ5K {
  const uint8_t* qs;
  __m256i qh;
  explicit UnpackQ5K(const block_q5_K& b) : qs(b.qs), qh(loadu(b.qh)) {}
  __m256i operator()(int k) const {
    const __m256i lo = _mm256_and_si256(srl16(loadu(qs + 32 * (k / 2)), 4 * (k % 2)), _mm256_set1_epi8(0x0F));
    const __m256i hb = _mm256_and_si256(shift16(qh, 4 - k), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(lo, hb);
  }
};

// Q6_K: u = q6 (0..63); group k = 4n + j of half n.
struct UnpackQ6K {
  const block_q6_K& b;
  explicit UnpackQ6K(const block_q6_K& blk) : b(blk) {}
  __m256i operator()(int k) const {
    const int n = k / 4, j = k % 4;
    const __m256i l = loadu(b.ql + 64 * n + 32 * (j % 2));
    const __m256i lo = _mm256_and_si256(srl16(l, 4 * (j / 2)), _mm256_set1_epi8(0x0F));
    const __m256i h = loadu(b.qh + 32 * n);
    const __m256i hb = _mm256_and_si256(shift16(h, 4 - 2 * j), _mm256_set1_epi8(0x30));
    return _mm256_or_si256(lo, hb);
  }
};

#if BLOOMZ_X86_AVX512
// Two consecutive 32-element groups of a K-quant block in one 512-bit register (AVX-512 tables):
// group 2p in the low half, 2p + 1 in the high half, each half the codes the 256-bit unpacker gives.
inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

struct UnpackQ4KPair {
  const uint8_t* qs;
  explicit UnpackQ4KPair(const block_q4_K& b) : qs(b.qs) {}
  __m512i operator()(int p) const {
    const __m256i v = loadu(qs + 32 * p);
    return _mm512_and_si512(join256(v, _mm256_srli_epi16(v, 4)), _mm512_set1_epi8(0x0F));
  }
};

struct UnpackQ5KPair {
  const uint8_t* qs;
  __m256i qh;
  explicit UnpackQ5KPair(const block_q5_K& b) : qs(b.qs), qh(loadu(b.qh)) {}
  __m512i operator()(int p) const {
    const __m256i v = loadu(qs + 32 * p);
    const __m512i lo = _mm512_and_si512(join256(v, _mm256_srli_epi16(v, 4)), _mm512_set1_epi8(0x0F));
    const __m512i hb = _mm512_and_si512(join256(shift16(qh, 4 - 2 * p), shift16(qh, 3 - 2 * p)), _mm512_set1_epi8(0x10));
    return _mm512_or_si512(lo, hb);
  }
};

struct UnpackQ6KPair {  // groups 2p, 2p + 1 = j 2(p%2), 2(p%2) + 1 of half p/2: one 64-byte ql run
  const block_q6_K& b;
  explicit UnpackQ6KPair(const block_q6_K& blk) : b(blk) {}
  __m512i operator()(int p) const {
    const int n = p / 2, jj = p % 2;
    const __m512i l = _mm512_loadu_si512(b.ql + 64 * n);
    const __m512i lo = _mm512_and_si512(jj ? _mm512_srli_epi16(l, 4) : l, _mm512_set1_epi8(0x0F));
    // qh in both halves; bits 2j, 2j + 1 of each byte to bits 4-5 by one shift per 64-bit lane
    // (j = 0, 1: left 4, 2; j = 2, 3: none, right 2), the bits crossing bytes masked off
    const __m512i h = _mm512_broadcast_i64x4(loadu(b.qh + 32 * n));
    const __m512i sh = jj ? _mm512_srlv_epi64(h, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2))
                          : _mm512_sllv_epi64(h, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
    return _mm512_or_si512(lo, _mm512_and_si512(sh, _mm512_set1_epi8(0x30)));
  }
};
#endif

// Per-type block facts for the shared K-quant loop.
struct Q2KTraits {
  using Block = block_q2_K;
  using Unpack = UnpackQ2K;
  static constexpr int kOffsetShift = -1;  // no offset
  static constexpr bool kHasMin = true;
  static __m256i scales(const Block& b, __m256i& mins16) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F)));
    return _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(0x0F)));
  }
  static float d(const Block& b) { return h2f(b.d); }
  static float dmin(const Block& b) { return h2f(b.dmin); }
};

struct Q3KTraits {
  using Block = block_q3_K;
  using Unpack = UnpackQ3K;
  static constexpr int kOffsetShift = 2;  // u = q + 4
  static constexpr bool kHasMin = false;
  static __m256i scales(const Block& b, __m256i&) {
    uint32_t s0, s1, s2;
    std::memcpy(&s0, b.scales, 4);
    std::memcpy(&s1, b.scales + 4, 4);
    std::memcpy(&s2, b.scales + 8, 4);
    const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
    // word w holds the 6-bit codes of groups 4w..4w+3 (see q3k_scale in blocks.hpp)
    const __m128i codes = _mm_setr_epi32(static_cast<int>((s0 & m4) | ((s2 & m2) << 4)),
                                         static_cast<int>((s1 & m4) | (((s2 >> 2) & m2) << 4)),
                                         static_cast<int>(((s0 >> 4) & m4) | (((s2 >> 4) & m2) << 4)),
                                         static_cast<int>(((s1 >> 4) & m4) | (((s2 >> 6) & m2) << 4)));
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(codes), _mm256_set1_epi16(32));
  }
  static float d(const Block& b) { return h2f(b.d); }
  static float dmin(const Block&) { return 0.0f; }
};

// The 12 packed scale bytes of a Q4_K/Q5_K superblock (get_scale_min_k4, four at a time): the
// 8 sub-block scales, each twice (one per 16 elements), as 16 int16; the mins likewise in mins16.
inline __m256i scales_k4(const uint8_t* scales, __m256i& mins16) {
  uint32_t s0, s1, s2;
  std::memcpy(&s0, scales, 4);
  std::memcpy(&s1, scales + 4, 4);
  std::memcpy(&s2, scales + 8, 4);
  const uint32_t m6 = 0x3F3F3F3Fu, m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
  // bytes 0..7: scales of sub-blocks 0..7; bytes 8..15: mins
  const __m128i v = _mm_setr_epi32(static_cast<int>(s0 & m6),
                                   static_cast<int>((s2 & m4) | (((s0 >> 6) & m2) << 4)),
                                   static_cast<int>(s1 & m6),
                                   static_cast<int>(((s2 >> 4) & m4) | (((s1 >> 6) & m2) << 4)));
  mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
}

template <typename B>
struct Q45KTraitsBase {
  static constexpr int kOffsetShift = -1;
  static constexpr bool kHasMin = true;
  static __m256i scales(const B& b, __m256i& mins16) { return scales_k4(b.scales, mins16); }
  static float d(const B& b) { return h2f(b.d); }
  static float dmin(const B& b) { return h2f(b.dmin); }
};
struct Q4KTraits : Q45KTraitsBase<block_q4_K> {
  using Block = block_q4_K;
  using Unpack = UnpackQ4K;
#if BLOOMZ_X86_AVX512
  using UnpackPair = UnpackQ4KPair;
#endif
};
struct Q5KTraits : Q45KTraitsBase<block_q5_K> {
  using Block = block_q5_K;
  using Unpack = UnpackQ5K;
#if BLOOMZ_X86_AVX512
  using UnpackPair = UnpackQ5KPair;
#endif
};

struct Q6KTraits {
  using Block = block_q6_K;
  using Unpack = UnpackQ6K;
#if BLOOMZ_X86_AVX512
  using UnpackPair = UnpackQ6KPair;
#endif
  static constexpr int kOffsetShift = 5;  // u = q + 32
  static constexpr bool kHasMin = false;
  static __m256i scales(const Block& b, __m256i&) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  }
  static float d(const Block& b) { return h2f(b.d); }
  static float dmin(const Block&) { return 0.0f; }
};

// Per output the float operations are the reference's (ref.cpp): per superblock the exact integer
// sums isum and imin, then s = s + (d * isum - dmin * imin) with d = d_w * d_a, dmin = dmin_w * d_a
// (s = s + d * isum without mins). The tiled prompt kernels (x86_simd_tiles.inl) do the same.
//
// Wide (AVX-512 tables, Q4_K/Q5_K/Q6_K): two groups per 512-bit step, the same exact sums.
#if BLOOMZ_X86_AVX512
// vpermw indices of pair p (wide K-quant steps): int16 lane i <- sub-block scale 4p + i / 8.
inline __m512i pair_scale_index(int p) {
  const __m512i i = _mm512_setr_epi32(0, 0, 0, 0, 0x00010001, 0x00010001, 0x00010001, 0x00010001,
                                      0x00020002, 0x00020002, 0x00020002, 0x00020002, 0x00030003, 0x00030003, 0x00030003, 0x00030003);
  return _mm512_add_epi16(i, _mm512_set1_epi16(static_cast<short>(4 * p)));
}
#endif

template <typename Tr, bool kWide = false>
struct KQK {
  template <int NT>
  using Ctx = PlainCtx<NT>;
  template <int NT>
  static void row(const std::byte* wr, const Ctx<NT>& c, float* out, int64_t n) {
    const std::byte* const* ar = c.a;
    using Block = typename Tr::Block;
    const auto* w = reinterpret_cast<const Block*>(wr);
    const block_q8_K* a[NT];
    float acc[NT];
    for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const block_q8_K*>(ar[t]), acc[t] = 0.0f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
      // Stay 6.75 KB ahead of the row stream (it continues into the next row): decode A/B runs on
      // Zen 5 (560m Q4_K_M and Q6_K, file layout) measured 1.5 KB 8-10 % slower per token, 3 KB
      // 3 %, 4.5 KB 1-2 %, 9 KB 1 %.
      const char* ahead = reinterpret_cast<const char*>(w + b) + 6912;
      for (size_t off = 0; off < sizeof(Block); off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
      __m256i mins16 = _mm256_setzero_si256();
      const __m256i sc16 = Tr::scales(w[b], mins16);
      __m256i isum[NT];
#if BLOOMZ_X86_AVX512
      if constexpr (kWide) {
        const typename Tr::UnpackPair unpack2(w[b]);
        __m512i isum2[NT];
        for (int t = 0; t < NT; ++t) isum2[t] = _mm512_setzero_si512();
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
          const __m512i u = unpack2(p);
          // int16 lane i: the scale of sub-block 4p + i / 8 (groups 2p and 2p + 1)
          const __m512i scv = _mm512_permutexvar_epi16(pair_scale_index(p), sc512);
          for (int t = 0; t < NT; ++t)
            isum2[t] = V16::dpwssd(isum2[t], _mm512_maddubs_epi16(u, _mm512_loadu_si512(a[t][b].qs + 64 * p)), scv);
        }
        for (int t = 0; t < NT; ++t)
          isum[t] = _mm256_add_epi32(_mm512_castsi512_si256(isum2[t]), _mm512_extracti64x4_epi64(isum2[t], 1));
      } else
#endif
      {
        const __m256i split = split_scales(sc16);
        const typename Tr::Unpack unpack(w[b]);
        for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          const __m256i u = unpack(k);
          const __m256i scv = group_scales(split, k);
          for (int t = 0; t < NT; ++t)
            isum[t] = dpwssd(isum[t], dot_u8_16(u, loadu(a[t][b].qs + 32 * k)), scv);
        }
      }
      // lanes 0, 1: the weight's d and dmin (times d_a below)
      const __m128 dw = _mm_setr_ps(Tr::d(w[b]), Tr::dmin(w[b]), 0.0f, 0.0f);
      for (int t = 0; t < NT; ++t) {
        const __m256i bs = loadu(a[t][b].bsums);
        __m256i s = isum[t];
        if constexpr (Tr::kOffsetShift >= 0)
          s = _mm256_sub_epi32(s, _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), Tr::kOffsetShift));
        const __m256i m = Tr::kHasMin ? _mm256_madd_epi16(mins16, bs) : _mm256_setzero_si256();
        // both exact sums at once: lane 0 = sum of s, lane 1 = sum of m
        const __m256i h = _mm256_hadd_epi32(s, m);  // s01 s23 m01 m23 | s45 s67 m45 m67
        __m128i h2 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        h2 = _mm_hadd_epi32(h2, h2);               // S M S M
        const __m128 prod = _mm_mul_ps(_mm_mul_ps(dw, _mm_set1_ps(a[t][b].d)), _mm_cvtepi32_ps(h2));  // d*S, dmin*M
        if constexpr (Tr::kHasMin) acc[t] += _mm_cvtss_f32(prod) - _mm_cvtss_f32(_mm_shuffle_ps(prod, prod, 1));
        else acc[t] += _mm_cvtss_f32(prod);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

// ---- float weights: 16 elements per step in two 8-lane accumulators, then a serial tail.

struct LoadF32 {
  static constexpr int64_t kBytes = 4;
  static __m256 load8(const void* p, int64_t i) { return _mm256_loadu_ps(static_cast<const float*>(p) + i); }
#if BLOOMZ_X86_AVX512
  static __m512 load16(const void* p, int64_t i) { return _mm512_loadu_ps(static_cast<const float*>(p) + i); }
#endif
  static float one(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
};
struct LoadF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load8(const void* p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
  }
#if BLOOMZ_X86_AVX512
  static __m512 load16(const void* p, int64_t i) { return _mm512_cvtph_ps(loadu(static_cast<const uint16_t*>(p) + i)); }
#endif
  static float one(const void* p, int64_t i) { return h2f(static_cast<const uint16_t*>(p)[i]); }
};
struct LoadBF16 {
  static constexpr int64_t kBytes = 2;
  static __m256 load8(const void* p, int64_t i) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
#if BLOOMZ_X86_AVX512  // bf16 -> f32 is a 16-bit shift; vdpbf16ps would round differently (DAZ/FTZ)
  static __m512 load16(const void* p, int64_t i) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(loadu(static_cast<const uint16_t*>(p) + i)), 16));
  }
#endif
  static float one(const void* p, int64_t i) { return bf16_to_fp32(static_cast<const uint16_t*>(p)[i]); }
};

// Activations of F16/BF16 weights are converted to f32 once per token group (exactly: every fp16 /
// bf16 value is a float), so the inner loop converts only the weights.
template <typename L>
struct FloatCtx {
  template <int NT>
  struct Ctx {
    const float* a[NT];
    Ctx(const Acts<NT>& acts, int64_t n) {
      static thread_local Scratch buf;
      float* base = buf.get<float>(static_cast<size_t>(NT * n));
      for (int t = 0; t < NT; ++t) {
        float* dst = base + t * n;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, L::load8(acts.a[t], i));
        for (; i < n; ++i) dst[i] = L::one(acts.a[t], i);
        a[t] = dst;
      }
    }
  };
};
template <>
struct FloatCtx<LoadF32> {
  template <int NT>
  struct Ctx {
    const float* a[NT];
    Ctx(const Acts<NT>& acts, int64_t) {
      for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const float*>(acts.a[t]);
    }
  };
};

template <typename L>
struct KFloat {
  template <int NT>
  using Ctx = typename FloatCtx<L>::template Ctx<NT>;
#if BLOOMZ_X86_AVX512
  // AVX-512 tables: R rows x NT tokens at once, one 16-lane chain per output. Each weight vector
  // serves NT tokens and each activation vector R rows: 8 loads per 16 FMAs at R = NT = 4, where
  // one row at a time took 20. At T = 1 one row at a time: the rows follow each other in memory,
  // so the weights are one stream per thread, prefetched into L2 4 KB past the next row group
  // (the stream's own addresses: one line per row every 64 bytes of the row). On a Zen 4 guest
  // (avx512vnni table), 560m F16 decode: 24.3-25.4 t/s with the next row prefetched into L1 at the same offset, 45-48
  // this way (2 KB ahead 0.8x, 16 KB alike); 2 and 4 rows at once 39 and 38 (docs § 3.9, § 3.10).
  // Per output: the chain over 16-element steps, folded to 8 lanes, summed, then the serial
  // tail; the same for every R and NT.
  template <int NT>
  static constexpr int kRows = NT == 1 ? 1 : 4;
  template <int NT, int R>
  static void rows(const std::byte* w, int64_t w_stride, const Ctx<NT>& c, float* y, int64_t ldy, int64_t n) {
    __m512 z[R][NT];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < NT; ++t) z[r][t] = _mm512_setzero_ps();
    int64_t i = 0;
    const std::byte* next = w + R * w_stride;  // the next row group, fetched a line per row every 64 bytes
    const char* ahead = reinterpret_cast<const char*>(next) + 4096;  // T = 1: R lines per 64 bytes, into L2
    for (; i + 16 <= n; i += 16) {
      __m512 a[NT];
      for (int t = 0; t < NT; ++t) a[t] = _mm512_loadu_ps(c.a[t] + i);
      if ((i * L::kBytes) % 64 == 0) {
        if constexpr (NT == 1)
          for (int r = 0; r < R; ++r) _mm_prefetch(ahead + i * L::kBytes * R + 64 * r, _MM_HINT_T1);
        else
          for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * w_stride) + i * L::kBytes, _MM_HINT_T0);
      }
      for (int r = 0; r < R; ++r) {
        const __m512 wv = L::load16(w + r * w_stride, i);
        for (int t = 0; t < NT; ++t) z[r][t] = _mm512_fmadd_ps(wv, a[t], z[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < NT; ++t) {
        float s = hsum(fold16(z[r][t]));
        for (int64_t j = i; j < n; ++j) s += L::one(w + r * w_stride, j) * c.a[t][j];
        y[t * ldy + r] = s;
      }
    }
  }
#endif
  template <int NT>
  static void row(const std::byte* wr, const Ctx<NT>& c, float* out, int64_t n) {
    // AVX2 table: four independent FMA chains per output (one chain's 4-cycle latency would cap a
    // core near the memory bandwidth at T = 1), then single-vector steps into the first, then a
    // serial tail.
    __m256 acc0[NT], acc1[NT], acc2[NT], acc3[NT];
    int64_t i = 0;
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = acc2[t] = acc3[t] = _mm256_setzero_ps();
    for (; i + 32 <= n; i += 32) {
      const __m256 w0 = L::load8(wr, i), w1 = L::load8(wr, i + 8), w2 = L::load8(wr, i + 16), w3 = L::load8(wr, i + 24);
      for (int t = 0; t < NT; ++t) {
        acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(c.a[t] + i), acc0[t]);
        acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(c.a[t] + i + 8), acc1[t]);
        acc2[t] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(c.a[t] + i + 16), acc2[t]);
        acc3[t] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(c.a[t] + i + 24), acc3[t]);
      }
    }
    for (; i + 8 <= n; i += 8) {
      const __m256 w0 = L::load8(wr, i);
      for (int t = 0; t < NT; ++t) acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(c.a[t] + i), acc0[t]);
    }
    for (int t = 0; t < NT; ++t) {
      float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0[t], acc1[t]), _mm256_add_ps(acc2[t], acc3[t])));
      for (int64_t j = i; j < n; ++j) s += L::one(wr, j) * c.a[t][j];
      out[t] = s;
    }
  }
};

// ---- the rectangle driver: token groups of 4 (then 3/2/1), every row of the rectangle.

template <typename K>
concept Tiled8 = requires { K::kTiled8; };
template <typename K>
concept RowBlocked = requires { K::template kRows<1>; };

// One token against Q4_0 / Q8_0 rows in the file's layout. A matrix's rows follow each other in
// memory, so a thread that takes its rows in order reads one stream, where the 8-row kernels read
// eight. Every row keeps the float steps each lane of rows8 does for its row, block by block,
// acc = fma(d_w * d_a, isum, acc), so the outputs are the same bits; that chain costs one fma
// latency per block, so several rows run side by side to hide it.
template <typename Wt>
constexpr bool kHasOneTokenPath = std::is_same_v<Wt, W8_0> || (kAvx512 && std::is_same_v<Wt, W4_0>);

// AVX2 table: one row at a time, per 8 blocks the 8 exact block sums in 8 lanes (reduce8), then the
// row's 8 fma steps. Zen 4 running this table (`--isa avx2`), 560m `--no-repack bench` tg64: Q8_0
// 45.0 -> 52.5 t/s against rows8; Q4_0 70.9 -> 61.0, so Q4_0 keeps the 8-row kernel here
// (docs/performance.md § 3.9).
template <typename Wt>
void rows_one_token_1(const typename Wt::Block* w, const typename K32<Wt>::template Ctx<1>& c, float* y, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; b += 8) {
    __m256i pr[8];
    for (int k = 0; k < 8; ++k) {
      const __m256i qa = loadu(c.a[0][b + k].qs);
      if constexpr (Wt::kSignedCodes) pr[k] = dot_s8(Wt::codes(w[b + k]), qa);
      else pr[k] = dpbusd(_mm256_setzero_si256(), Wt::codes(w[b + k]), qa);
    }
    __m256i isum = reduce8(pr);
    if constexpr (Wt::kOffset != 0) isum = _mm256_sub_epi32(isum, loadu(c.off[0] + b));
    const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
        static_cast<short>(w[b].d), static_cast<short>(w[b + 1].d), static_cast<short>(w[b + 2].d),
        static_cast<short>(w[b + 3].d), static_cast<short>(w[b + 4].d), static_cast<short>(w[b + 5].d),
        static_cast<short>(w[b + 6].d), static_cast<short>(w[b + 7].d)));
    alignas(32) float scale[8], sums[8];
    _mm256_store_ps(scale, _mm256_mul_ps(dw, _mm256_loadu_ps(c.d[0] + b)));
    _mm256_store_ps(sums, _mm256_cvtepi32_ps(isum));
    // a plain scalar fma: _mm_fmadd_ss on _mm_set_ss operands put a lane merge into the chain
    for (int k = 0; k < 8; ++k) acc = __builtin_fmaf(scale[k], sums[k], acc);
  }
  *y = acc;
}

// A one-token kernel K with what it derives from the token (K::prepare(a, n)): derived once per
// call and kept by each thread for the other row ranges of the same call (DotArgs::a_id), as
// rect_x8_t1 does.
template <typename K, typename A>
const K& token_kernel_for(const DotArgs& p, const A* a, int64_t n) {
  static thread_local K k;
  static thread_local uint64_t prepared_id = 0;
  static thread_local const A* prepared_a = nullptr;
  if (p.a_id == 0 || p.a_id != prepared_id || a != prepared_a) {
    k.prepare(a, n);
    prepared_id = p.a_id;
    prepared_a = a;
  }
  return k;
}

#if BLOOMZ_X86_AVX512
// AVX-512 tables: four neighbouring rows per pass, 8 blocks of each per step. Each row's 8 block
// sums come out of 512-bit dot products as two registers, one block per 128-bit lane (4 partial
// sums each); one transpose-and-add turns the four rows' registers into lane 4k + i = block k of
// row i, so the four float chains step together in one 128-bit register, lane i doing row i's
// operations. The activations are regrouped once per call to meet the weight registers.
// Zen 4, avx512vnni table, 560m `--no-repack bench` tg64 against rows8 (the page cache re-read,
// docs/performance.md § 3.10): Q4_0 86-90 -> 102-103 t/s, Q8_0 53 -> 82-84; kernel-bench, one
// thread, weights in L2:
// Q4_0 26.1 -> 28.6 GB/s, Q8_0 36.7 -> 40.0 (one row at a time: 13.7 and 27).
//
// Q4_0 (18-byte blocks, 144 bytes per step): three 64-byte loads; word permutes gather the four
// blocks' nibbles of each half of the step into one register, and the 8 block scales.
struct OneTokenQ4_0Src {
  using W = W4_0;
  static constexpr int64_t kStepBytes = 144;
  static constexpr int kOffset = 8;  // codes u = q + 8
  // activations per 4 blocks: the 4 x 16 elements the low nibbles meet, then the 4 x 16 of the high ones
  static void regroup(const block_q8_0* a, int64_t b, std::byte* g) {
    std::byte* lo = g + 128 * (b / 4) + 16 * (b % 4);
    std::memcpy(lo, a[b].qs, 16);
    std::memcpy(lo + 64, a[b].qs + 16, 16);
  }
  static __m512i words(int (*f)(int)) {
    alignas(64) int16_t v[32];
    for (int j = 0; j < 32; ++j) v[j] = static_cast<int16_t>(f(j));
    return _mm512_load_si512(v);
  }
  // blocks 0-3 from (r0, r1) = bytes 0..127; blocks 4-7 from (r1, r2 = bytes 80..143)
  const __m512i codes_lo = words([](int j) { return 9 * (j / 8) + 1 + j % 8; });
  const __m512i codes_hi = words([](int j) {
    const int w = 9 * (4 + j / 8) + 1 + j % 8;  // word of the step
    return w < 64 ? w - 32 : w - 8;
  });
  const __m512i scales = words([](int j) { return j < 8 ? 9 * j : 0; });
  // One step of one row: p0 / p1 = blocks 0-3 / 4-7, one per 128-bit lane; dw = the 8 fp16 scales.
  void step(const char* base, const __m512i* a, __m512i& p0, __m512i& p1, __m128i& dw) const {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i r0 = _mm512_loadu_si512(base), r1 = _mm512_loadu_si512(base + 64), r2 = _mm512_loadu_si512(base + 80);
    const __m512i q0 = _mm512_permutex2var_epi16(r0, codes_lo, r1), q1 = _mm512_permutex2var_epi16(r1, codes_hi, r2);
    p0 = V16::dpbusd(V16::dpbusd(_mm512_setzero_si512(), _mm512_and_si512(q0, m4), a[0]),
                     _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), a[1]);
    p1 = V16::dpbusd(V16::dpbusd(_mm512_setzero_si512(), _mm512_and_si512(q1, m4), a[2]),
                     _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4), a[3]);
    dw = _mm512_castsi512_si128(_mm512_permutex2var_epi16(r0, scales, r1));
  }
};

// Q8_0 (34-byte blocks, 272 bytes per step): two blocks' codes per register. With VNNI they are
// made unsigned by flipping the sign bit (u = q + 128, one vpdpbusd), the offset taken back exactly
// per block; without, |q| meets the activations with q's sign (the pairs of maddubs stay in int16).
struct OneTokenQ8_0Src {
  using W = W8_0;
  static constexpr int64_t kStepBytes = 272;
  static constexpr int kOffset = kVnni ? 128 : 0;
  static void regroup(const block_q8_0* a, int64_t b, std::byte* g) { std::memcpy(g + 32 * b, a[b].qs, 32); }
  // the scales of blocks 0-3 sit at words 0, 17, 34, 51 of bytes 0..127, those of 4-7 likewise from byte 136
  const __m512i scales = _mm512_setr_epi32(17 << 16, (51 << 16) | 34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  void step(const char* base, const __m512i* a, __m512i& p0, __m512i& p1, __m128i& dw) const {
    [[maybe_unused]] const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512i p[4];
    for (int j = 0; j < 4; ++j) {
      const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(loadu(base + 68 * j + 2)), loadu(base + 68 * j + 36), 1);
      if constexpr (kVnni) p[j] = V16::dpbusd(_mm512_setzero_si512(), _mm512_xor_si512(z, flip), a[j]);
      else p[j] = V16::dpbusd(_mm512_setzero_si512(), _mm512_abs_epi8(z), V16::apply_sign(a[j], z));
    }
    // block 2j in lanes 0-7, 2j + 1 in 8-15 -> one block per 128-bit lane
    p0 = _mm512_add_epi32(_mm512_shuffle_i32x4(p[0], p[1], 0x88), _mm512_shuffle_i32x4(p[0], p[1], 0xDD));
    p1 = _mm512_add_epi32(_mm512_shuffle_i32x4(p[2], p[3], 0x88), _mm512_shuffle_i32x4(p[2], p[3], 0xDD));
    const __m512i d0 = _mm512_permutex2var_epi16(_mm512_loadu_si512(base), scales, _mm512_loadu_si512(base + 64));
    const __m512i d1 = _mm512_permutex2var_epi16(_mm512_loadu_si512(base + 136), scales, _mm512_loadu_si512(base + 200));
    dw = _mm_unpacklo_epi64(_mm512_castsi512_si128(d0), _mm512_castsi512_si128(d1));
  }
};

// Per 128-bit lane k: p[0..3] x 4 partial sums -> lane 4k + i = the sum of lane k of p[i].
inline __m512i transpose_add4(const __m512i* p) {
  const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
  const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}

template <typename Src>
class OneToken4 {
 public:
  using Block = typename Src::W::Block;
  // The token's activations as rows4 reads them (token_kernel_for keeps them per call): regrouped
  // codes; d_a and the offset term of each block, repeated for the four rows' lanes.
  void prepare(const block_q8_0* a, int64_t nb) {
    auto* g = abuf_.get<std::byte>(static_cast<size_t>(32 * nb));
    auto* d4 = dbuf_.get<float>(static_cast<size_t>(4 * nb));
    auto* off4 = obuf_.get<int32_t>(static_cast<size_t>(4 * nb));
    for (int64_t b = 0; b < nb; ++b) {
      Src::regroup(a, b, g);
      const float d = h2f(a[b].d);
      const int32_t off = Src::kOffset == 0 ? 0 : Src::kOffset * sum_q8(a[b].qs);
      for (int i = 0; i < 4; ++i) d4[4 * b + i] = d, off4[4 * b + i] = off;
    }
    a_ = reinterpret_cast<const __m512i*>(g);
    d4_ = d4;
    off4_ = off4;
  }

  // Rows w[0..3] (repeats allowed for a ragged tail) -> y4[0..3]; pf: the bytes to prefetch, at
  // the rate the four rows are read.
  void rows4(const Block* const* w, float* y4, int64_t nb, const char* pf) const {
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b += 8) {
      // into L2 (prefetcht1): prefetcht0 at these distances left Q8_0 at 28.5 GB/s in the decoder, t1 52-55
      for (int64_t o = 0; o < 4 * Src::kStepBytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T1);
      pf += 4 * Src::kStepBytes;
      __m512i p0[4], p1[4];
      __m128i dw[4];
      for (int i = 0; i < 4; ++i) src_.step(reinterpret_cast<const char*>(w[i] + b), a_ + b / 2, p0[i], p1[i], dw[i]);
      const __m512 x0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(transpose_add4(p0), _mm512_loadu_si512(off4_ + 4 * b)));
      const __m512 x1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(transpose_add4(p1), _mm512_loadu_si512(off4_ + 4 * b + 16)));
      // the fp16 weight scales (row i, block k) in the same order
      const __m128i d01l = _mm_unpacklo_epi16(dw[0], dw[1]), d01h = _mm_unpackhi_epi16(dw[0], dw[1]);
      const __m128i d23l = _mm_unpacklo_epi16(dw[2], dw[3]), d23h = _mm_unpackhi_epi16(dw[2], dw[3]);
      const __m256i h0 = _mm256_setr_m128i(_mm_unpacklo_epi32(d01l, d23l), _mm_unpackhi_epi32(d01l, d23l));
      const __m256i h1 = _mm256_setr_m128i(_mm_unpacklo_epi32(d01h, d23h), _mm_unpackhi_epi32(d01h, d23h));
      const __m512 s0 = _mm512_mul_ps(_mm512_cvtph_ps(h0), _mm512_loadu_ps(d4_ + 4 * b));
      const __m512 s1 = _mm512_mul_ps(_mm512_cvtph_ps(h1), _mm512_loadu_ps(d4_ + 4 * b + 16));
      acc = chain4(s0, x0, acc);
      acc = chain4(s1, x1, acc);
    }
    _mm_storeu_ps(y4, acc);
  }

 private:
  // four blocks in order: acc = fma(s_k, x_k, acc) per 128-bit lane k
  static __m128 chain4(__m512 s, __m512 x, __m128 acc) {
    acc = _mm_fmadd_ps(_mm512_castps512_ps128(s), _mm512_castps512_ps128(x), acc);
    acc = _mm_fmadd_ps(_mm512_extractf32x4_ps(s, 1), _mm512_extractf32x4_ps(x, 1), acc);
    acc = _mm_fmadd_ps(_mm512_extractf32x4_ps(s, 2), _mm512_extractf32x4_ps(x, 2), acc);
    return _mm_fmadd_ps(_mm512_extractf32x4_ps(s, 3), _mm512_extractf32x4_ps(x, 3), acc);
  }

  Src src_;
  Scratch abuf_, dbuf_, obuf_;
  const __m512i* a_ = nullptr;
  const float* d4_ = nullptr;
  const int32_t* off4_ = nullptr;
};

template <typename Wt>
using OneTokenSrc = std::conditional_t<std::is_same_v<Wt, W4_0>, OneTokenQ4_0Src, OneTokenQ8_0Src>;
#endif

#include "kernels/x86_simd_one_token_k.inl"

// Prefetch distance of the 4-row passes, past the next four rows. Zen 4 (avx512vnni), 560m
// decode: 4 KB and 12 KB alike (Q4_0 102.8 / 102.3 t/s, Q8_0 83.5 / 80.8); kernel-bench from
// memory: 4-28 KB alike, none beyond the next four rows 0.4-0.65x.
constexpr int64_t kOneTokenPrefetch = 4096;

// Token t0 of the call against rows [r0, r1).
template <typename Wt>
void rows_one_token(const DotArgs& p, int64_t t0) {
  using Block = typename Wt::Block;
  const int64_t nb = p.n / 32;
  const std::byte* a = p.a + t0 * p.a_stride;
  float* y = p.y + t0 * p.ldy;
  auto row = [&](int64_t r) { return reinterpret_cast<const Block*>(p.w + r * p.w_stride); };
#if BLOOMZ_X86_AVX512
  const auto& k = token_kernel_for<OneToken4<OneTokenSrc<Wt>>>(p, reinterpret_cast<const block_q8_0*>(a), nb);
  for (int64_t r = p.r0; r < p.r1; r += 4) {
    const int64_t nr = p.r1 - r < 4 ? p.r1 - r : 4;
    const Block* w[4];
    for (int i = 0; i < 4; ++i) w[i] = row(r + (i < nr ? i : nr - 1));
    const char* pf = reinterpret_cast<const char*>(w[0]) + 4 * p.w_stride + kOneTokenPrefetch;
    if (nr == 4) {
      k.rows4(w, y + r, nb, pf);
    } else {
      float y4[4];
      k.rows4(w, y4, nb, pf);
      for (int64_t i = 0; i < nr; ++i) y[r + i] = y4[i];
    }
  }
#else
  Acts<1> acts;
  acts.a[0] = a;
  const typename K32<Wt>::template Ctx<1> c(acts, p.n);
  for (int64_t r = p.r0; r < p.r1; ++r) rows_one_token_1<Wt>(row(r), c, y + r, nb);
#endif
}

template <typename K, int NT>
void run_group(const DotArgs& p, int64_t t0) {
  if constexpr (NT == 1 && !std::is_void_v<typename OneTokenKOf<K>::type>) {
    if ((p.n / QK_K) % kOneTokenKStep == 0) {
      rows_one_token_k<typename OneTokenKOf<K>::type>(p, t0);
      return;
    }
  }
  if constexpr (Tiled8<K>) {
    if constexpr (NT == 1 && kHasOneTokenPath<typename K::W>) {
      if ((p.n / 32) % 8 == 0) {
        rows_one_token<typename K::W>(p, t0);
        return;
      }
    }
  }
  Acts<NT> acts;
  for (int t = 0; t < NT; ++t) acts.a[t] = p.a + (t0 + t) * p.a_stride;
  const typename K::template Ctx<NT> ctx(acts, p.n);
  if constexpr (Tiled8<K>) {
    using Block = typename K::Block;
    int64_t r = p.r0;
#if BLOOMZ_X86_AVX512
    if constexpr (HasRows16<K> && NT < 4) {
      if (16 * p.w_stride < (int64_t{1} << 31)) {  // gather offsets are int32
        for (; r < p.r1; r += 16) {
          const int nr = static_cast<int>(p.r1 - r < 16 ? p.r1 - r : 16);
          const Block* w[16];
          for (int i = 0; i < 16; ++i)
            w[i] = reinterpret_cast<const Block*>(p.w + (r + (i < nr ? i : nr - 1)) * p.w_stride);
          const int64_t nb = p.n / 32;
          const Prefetch pf{reinterpret_cast<const char*>(p.w + (r + 16) * p.w_stride),
                            (16 * p.w_stride + 64 * nb - 1) / (64 * nb)};
          __m512 out[NT];
          Rows16Q4_0::template run<NT>(w, ctx, out, p.n, pf);
          for (int t = 0; t < NT; ++t) V16::store(p.y + (t0 + t) * p.ldy + r, out[t], nr);
        }
      }
    }
#endif
    for (; r < p.r1; r += 8) {
      const int nr = static_cast<int>(p.r1 - r < 8 ? p.r1 - r : 8);
      const Block* w[8];
      for (int i = 0; i < 8; ++i)
        w[i] = reinterpret_cast<const Block*>(p.w + (r + (i < nr ? i : nr - 1)) * p.w_stride);
      __m256 out[NT];
      const int64_t nb = p.n / 32;
      const Prefetch pf{reinterpret_cast<const char*>(p.w + (r + 8) * p.w_stride),
                        (8 * p.w_stride + 64 * nb - 1) / (64 * nb)};
      K::template rows8<NT>(w, ctx, out, p.n, pf);
      for (int t = 0; t < NT; ++t) {
        float* y = p.y + (t0 + t) * p.ldy + r;
        if (nr == 8) {
          _mm256_storeu_ps(y, out[t]);
        } else {
          alignas(32) float tmp[8];
          _mm256_store_ps(tmp, out[t]);
          for (int i = 0; i < nr; ++i) y[i] = tmp[i];
        }
      }
    }
  } else if constexpr (RowBlocked<K>) {
    float* y = p.y + t0 * p.ldy;
    int64_t r = p.r0;
    constexpr int R = K::template kRows<NT>;
    for (; r + R <= p.r1; r += R) K::template rows<NT, R>(p.w + r * p.w_stride, p.w_stride, ctx, y + r, p.ldy, p.n);
    for (; r < p.r1; ++r) K::template rows<NT, 1>(p.w + r * p.w_stride, p.w_stride, ctx, y + r, p.ldy, p.n);
  } else {
    for (int64_t r = p.r0; r < p.r1; ++r) {
      float out[NT];
      K::template row<NT>(p.w + r * p.w_stride, ctx, out, p.n);
      for (int t = 0; t < NT; ++t) p.y[(t0 + t) * p.ldy + r] = out[t];
    }
  }
}

template <typename K>
void rect(const DotArgs& p) {
  int64_t t = 0;
  for (; t + 4 <= p.n_tok; t += 4) run_group<K, 4>(p, t);
  switch (p.n_tok - t) {
    case 3: run_group<K, 3>(p, t); break;
    case 2: run_group<K, 2>(p, t); break;
    case 1: run_group<K, 1>(p, t); break;
    default: break;
  }
}

#include "kernels/x86_simd_tiles.inl"
#include "kernels/x86_simd_x8.inl"

// ---------------------------------------------------------------------------------------------
// Activation quantizers: the same bytes as the reference (ties away from zero for Q8_0/Q8_1).

void quantize_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void quantize_f16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_bf16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1);
  const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), 16);
    const __m256i nanv = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
    const __m256i v = _mm256_blendv_epi8(r, _mm256_and_si256(nanv, _mm256_set1_epi32(0xFFFF)), is_nan);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// max |x| over 32 floats
inline float amax32(const float* x) {
#if BLOOMZ_X86_AVX512
  const __m512 m16 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_abs_ps(_mm512_loadu_ps(x + 16)));
  const __m256 m = _mm256_max_ps(_mm512_castps512_ps256(m16), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m16), 1)));
#else
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
  m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
  m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
  m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
#endif
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// roundf (ties away from zero), exact for |v| < 2^23: trunc, then add sign(v) when |frac| >= 0.5.
inline __m256i roundf_epi32(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_sub_ps(v, t);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ge = _mm256_cmp_ps(_mm256_andnot_ps(sign, frac), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_and_ps(ge, _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign, v)));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

#if BLOOMZ_X86_AVX512
inline __m512i roundf_epi32(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 ge = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 step = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(_mm512_set1_ps(-0.0f), v));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, ge, t, step));
}

// Sum of the 16 int32 lanes (fixed order: lo + hi halves, then hsum_i32).
inline int hsum16_i32(__m512i v) { return hsum_i32(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))); }
#endif

// Four vectors of 8 int32 (in [-127, 127]) -> 32 int8 in order.
inline __m256i pack_i32x4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <bool WithSum>
inline void quantize_q8_block(const float* x, int8_t* qs, uint16_t& dh, uint16_t* sh) {
  const float amax = amax32(x);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  dh = f2h(d);
#if BLOOMZ_X86_AVX512  // 16 lanes at a time; vpmovdb narrows (the values are in [-127, 127])
  const __m512 vid16 = _mm512_set1_ps(id);
  const __m512i q0 = roundf_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), vid16));
  const __m512i q1 = roundf_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16), vid16));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtepi32_epi8(q1));
  if constexpr (WithSum) *sh = f2h(static_cast<float>(hsum16_i32(_mm512_add_epi32(q0, q1))) * d);
  return;
#endif
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid));
  const __m256i packed = pack_i32x4(q[0], q[1], q[2], q[3]);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), packed);
  if constexpr (WithSum) {
    const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    *sh = f2h(static_cast<float>(sum) * d);
  }
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / 32; ++b) quantize_q8_block<false>(x + 32 * b, y[b].qs, y[b].d, nullptr);
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / 32; ++b) quantize_q8_block<true>(x + 32 * b, y[b].qs, y[b].d, &y[b].s);
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
    float max = 0.0f;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) == amax) {
        max = x[j];
        break;
      }
    const float iscale = -127.0f / max;
#if BLOOMZ_X86_AVX512  // one 16-element group per vector: its bsum is the vector's sum
    const __m512 vs16 = _mm512_set1_ps(iscale);
    for (int g = 0; g < QK_K / 16; ++g) {  // cvtps rounds half to even, like ggml's nearest_int
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vs16)), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * g), _mm512_cvtepi32_epi8(q));
      y[b].bsums[g] = static_cast<int16_t>(hsum16_i32(q));
    }
    y[b].d = 1.0f / iscale;
    continue;
#endif
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int k = 0; k < QK_K; k += 32) {
      __m256i q[4];
      for (int m = 0; m < 4; ++m)  // cvtps rounds half to even, like ggml's nearest_int
        q[m] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * m), vs)), lim);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + k), pack_i32x4(q[0], q[1], q[2], q[3]));
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[b].qs + 16 * g));
      const __m256i w = _mm256_cvtepi8_epi16(v);
      const __m256i s = _mm256_madd_epi16(w, _mm256_set1_epi16(1));
      y[b].bsums[g] = static_cast<int16_t>(hsum_i32(s));
    }
    y[b].d = 1.0f / iscale;
  }
}

// ---------------------------------------------------------------------------------------------
// Attention over an fp16 cache. Scores: eight keys at a time, each with 8-lane f32 accumulators
// (16-lane with AVX-512, folded to 8) over the head dimension, reduced together by one 8x8
// transpose-add (per key the same additions, whichever group it falls in: a short last group
// repeats its last key). Softmax: a vectorized exp (below), sums in double. Output: the head's
// accumulators held in registers (a template per vector count), keys in ascending order. K and V
// are streamed once per head with software prefetch kAttnAhead keys ahead (a head's rows are
// contiguous; at long contexts the two streams are most of the decode's memory traffic). Head dims
// that are not a multiple of 8 (or above 256) take the reference path.

// Lane i of the result = the sum of the 8 lanes of p[i]: ((x0+x1)+(x2+x3)) + ((x4+x5)+(x6+x7)).
inline __m256 reduce8_ps(const __m256* p) {
  const __m256 h01 = _mm256_hadd_ps(p[0], p[1]), h23 = _mm256_hadd_ps(p[2], p[3]);
  const __m256 h45 = _mm256_hadd_ps(p[4], p[5]), h67 = _mm256_hadd_ps(p[6], p[7]);
  const __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// e^x for x <= 0 (Cephes' expf: n = round(x log2 e), r = x - n ln 2 in two parts, a degree-6
// polynomial, times 2^n); relative error below 2e-7; 0 below -87.3 (where e^x is subnormal).
inline __m256 exp8_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_setzero_ps());
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

// Keys (rows) ahead of the current one that the attention loops prefetch: far enough to cover the
// memory latency at the loops' rate, near enough to stay in L1 until used.
constexpr int64_t kAttnAhead = 64;

// Prefetches the rows [row, row + n) of d fp16 values (contiguous): one hint per cache line.
inline void prefetch_rows(const uint16_t* base, int64_t row, int64_t n, int64_t d) {
  const char* p = reinterpret_cast<const char*>(base + row * d);
  for (int64_t off = 0; off < n * d * 2; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

inline __m256 cvt8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// out[0, 8 NV) = sum_i p_i V_i over the head's rows, for NV 8-lane vectors of V starting at v
// (rows d apart): NV accumulators in registers, keys ascending.
template <int NV>
void attn_out8(const uint16_t* v, int64_t d, int64_t n_kv, const float* sc, float inv, float* out) {
  __m256 acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n_kv; ++i, v += d) {
    if (i + kAttnAhead < n_kv) {
      const char* ahead = reinterpret_cast<const char*>(v + kAttnAhead * d);
      for (int j = 0; j < NV; j += 4) _mm_prefetch(ahead + 16 * j, _MM_HINT_T0);
    }  // 4 vectors = one line
    const __m256 p = _mm256_set1_ps(sc[i] * inv);
    for (int j = 0; j < NV; ++j) acc[j] = _mm256_fmadd_ps(p, cvt8(v + 8 * j), acc[j]);
  }
  for (int j = 0; j < NV; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

#if BLOOMZ_X86_AVX512
inline __m512 cvt16(const uint16_t* p) { return _mm512_cvtph_ps(loadu(p)); }

// As attn_out8 with NV 16-lane vectors.
template <int NV>
void attn_out16(const uint16_t* v, int64_t d, int64_t n_kv, const float* sc, float inv, float* out) {
  __m512 acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n_kv; ++i, v += d) {
    if (i + kAttnAhead < n_kv) {
      const char* ahead = reinterpret_cast<const char*>(v + kAttnAhead * d);
      for (int j = 0; j < NV; j += 2) _mm_prefetch(ahead + 32 * j, _MM_HINT_T0);
    }  // 2 vectors = one line
    const __m512 p = _mm512_set1_ps(sc[i] * inv);
    for (int j = 0; j < NV; ++j) acc[j] = _mm512_fmadd_ps(p, cvt16(v + 16 * j), acc[j]);
  }
  for (int j = 0; j < NV; ++j) _mm512_storeu_ps(out + 16 * j, acc[j]);
}
#endif

// Calls F<NV>(args...) for NV = n in 1..8.
template <template <int> class F, typename... Args>
void with_count(int64_t n, Args... args) {
  switch (n) {
    case 1: F<1>::run(args...); break;
    case 2: F<2>::run(args...); break;
    case 3: F<3>::run(args...); break;
    case 4: F<4>::run(args...); break;
    case 5: F<5>::run(args...); break;
    case 6: F<6>::run(args...); break;
    case 7: F<7>::run(args...); break;
    default: F<8>::run(args...); break;
  }
}
template <int NV>
struct Out8 {
  static void run(const uint16_t* v, int64_t d, int64_t n_kv, const float* sc, float inv, float* out) {
    attn_out8<NV>(v, d, n_kv, sc, inv, out);
  }
};
#if BLOOMZ_X86_AVX512
template <int NV>
struct Out16 {
  static void run(const uint16_t* v, int64_t d, int64_t n_kv, const float* sc, float inv, float* out) {
    attn_out16<NV>(v, d, n_kv, sc, inv, out);
  }
};
#endif

// Scores of keys [k, k + 8) (a short last group repeats its last key), unscaled: lane i = dot(q, K_i).
template <bool Wide>
inline __m256 attn_dots8(const float* q, const uint16_t* kbase, int64_t k, int m, int64_t D) {
  const uint16_t* kr[8];
  for (int i = 0; i < 8; ++i) kr[i] = kbase + (k + (i < m ? i : m - 1)) * D;
  __m256 acc[8];
#if BLOOMZ_X86_AVX512
  if constexpr (Wide) {  // 16-lane accumulators, folded to 8 lanes before the same reduction
    __m512 z[8];
    for (int i = 0; i < 8; ++i) z[i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < D / 16; ++j) {
      const __m512 qv = _mm512_load_ps(q + 16 * j);
      for (int i = 0; i < 8; ++i) z[i] = _mm512_fmadd_ps(qv, cvt16(kr[i] + 16 * j), z[i]);
    }
    for (int i = 0; i < 8; ++i) acc[i] = fold16(z[i]);
    return reduce8_ps(acc);
  }
#endif
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t j = 0; j < D / 8; ++j) {
    const __m256 qv = _mm256_load_ps(q + 8 * j);
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(qv, cvt8(kr[i] + 8 * j), acc[i]);
  }
  return reduce8_ps(acc);
}

// Scores of all keys into sc (scaled, with the ALiBi bias); returns their maximum. dots(k, m) gives
// the unscaled scores of keys [k, k + 8) (the first m of them real) in lanes.
template <typename Dots>
float attn_scores(int64_t n_kv, int64_t pos, float scale, float slope, float* sc, Dots&& dots) {
  const __m256 vscale = _mm256_set1_ps(scale), vslope = _mm256_set1_ps(slope);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (int64_t k = 0; k < n_kv; k += 8) {
    const int m = n_kv - k < 8 ? static_cast<int>(n_kv - k) : 8;
    const __m256 d8 = dots(k, m);
    const __m256 rel = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(k - pos)), iota));
    const __m256 s8 = _mm256_add_ps(_mm256_mul_ps(d8, vscale), _mm256_mul_ps(vslope, rel));
    if (m == 8) {
      _mm256_storeu_ps(sc + k, s8);
      vmax = _mm256_max_ps(vmax, s8);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, s8);
      for (int i = 0; i < m; ++i) sc[k + i] = tmp[i];
      for (int i = m; i < 8; ++i) tmp[i] = -INFINITY;
      vmax = _mm256_max_ps(vmax, _mm256_load_ps(tmp));
    }
  }
  __m128 mx4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  mx4 = _mm_max_ps(mx4, _mm_movehl_ps(mx4, mx4));
  mx4 = _mm_max_ss(mx4, _mm_movehdup_ps(mx4));
  return _mm_cvtss_f32(mx4);
}

// sc[i] = exp(sc[i] - max); returns the sum in double.
double attn_exp(float* sc, int64_t n_kv, float max_score) {
  const __m256 max = _mm256_set1_ps(max_score);
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  for (int64_t i = 0; i < n_kv; i += 8) {
    const int m = n_kv - i < 8 ? static_cast<int>(n_kv - i) : 8;
    __m256 x;
    alignas(32) float tmp[8];
    if (m == 8) {
      x = _mm256_loadu_ps(sc + i);
    } else {
      for (int j = 0; j < 8; ++j) tmp[j] = j < m ? sc[i + j] : -INFINITY;
      x = _mm256_load_ps(tmp);
    }
    const __m256 e = exp8_nonpositive(_mm256_sub_ps(x, max));  // padding lanes: exactly 0
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    if (m == 8) {
      _mm256_storeu_ps(sc + i, e);
    } else {
      _mm256_store_ps(tmp, e);
      for (int j = 0; j < m; ++j) sc[i + j] = tmp[j];
    }
  }
  const __m256d s4 = _mm256_add_pd(sum_lo, sum_hi);
  __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

void attn_f16(const AttnArgs& a) {
  const int64_t D = a.d;
  if (D % 8 != 0 || D > 256 || D == 0) {
    table_ref().attn_f16(a);
    return;
  }
  alignas(64) float q[256];
  for (int64_t j = 0; j < D / 8; ++j)
    _mm256_store_ps(q + 8 * j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(a.q + 8 * j),
                                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
#if BLOOMZ_X86_AVX512
  const bool wide = D % 16 == 0;
#else
  const bool wide = false;
#endif
  auto dots = [&](auto wide_tag) {
    return [&, wide_tag](int64_t k, int m) {
      if (k + kAttnAhead + 8 <= a.n_kv) prefetch_rows(a.k, k + kAttnAhead, 8, D);
      return attn_dots8<decltype(wide_tag)::value>(q, a.k, k, m, D);
    };
  };
  const float max = wide ? attn_scores(a.n_kv, a.pos, a.scale, a.slope, a.scores, dots(std::true_type{}))
                         : attn_scores(a.n_kv, a.pos, a.scale, a.slope, a.scores, dots(std::false_type{}));
  const float inv = static_cast<float>(1.0 / attn_exp(a.scores, a.n_kv, max));
#if BLOOMZ_X86_AVX512
  if (wide) {  // up to 8 16-lane vectors (128 dimensions) per pass over the values
    for (int64_t d0 = 0; d0 < D / 16; d0 += 8) with_count<Out16>(D / 16 - d0, a.v + 16 * d0, D, a.n_kv, a.scores, inv, a.out + 16 * d0);
    return;
  }
#endif
  for (int64_t d0 = 0; d0 < D / 8; d0 += 8) with_count<Out8>(D / 8 - d0, a.v + 8 * d0, D, a.n_kv, a.scores, inv, a.out + 8 * d0);
}

// ---------------------------------------------------------------------------------------------
// Attention over a q8_0 cache (kernels.hpp, AttnQ8Args). Scores: eight keys at a time; per block
// the exact int8 dot of each key with the quantized query (|q| times K with q's signs, so the
// maddubs pairs of the non-VNNI tables stay within int16), the eight sums reduced together, then
// float(isum) * (d_K * d_q) added in block order: the reference's operations. Output: (p_k * d_V) times the widened int8 values, accumulated in registers
// (a template per block count). Head dims that are not a multiple of 32 (or above 256) take the
// reference path.

// Lane i of the result = the sum of the 8 int32 lanes of p[i] (the integer reduce8_ps).
inline __m256i reduce8_epi32(const __m256i* p) {
  const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
  const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

constexpr int kAttnQ8MaxBlocks = 8;  // head dims up to 256

// The quantized query, ready for the sign trick: |q| and q per block, and the block scales.
struct Q8Query {
  __m256i abs[kAttnQ8MaxBlocks], sgn[kAttnQ8MaxBlocks];
  float d[kAttnQ8MaxBlocks];
};

// Unscaled scores of keys [k, k + 8) (a short last group repeats its last key) in lanes.
inline __m256 attn_dots8_q8(const Q8Query& qq, const block_q8_0* K, int64_t nb, int64_t k, int m) {
  const block_q8_0* kr[8];
  for (int i = 0; i < 8; ++i) kr[i] = K + (k + (i < m ? i : m - 1)) * nb;
  __m256 s = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = dpbusd(_mm256_setzero_si256(), qq.abs[b], _mm256_sign_epi8(loadu(kr[i][b].qs), qq.sgn[b]));
    // the eight scales inserted into a register (eight 16-bit stores read back as one load stall
    // store forwarding)
    const __m128i dk = _mm_setr_epi16(static_cast<short>(kr[0][b].d), static_cast<short>(kr[1][b].d), static_cast<short>(kr[2][b].d),
                                      static_cast<short>(kr[3][b].d), static_cast<short>(kr[4][b].d), static_cast<short>(kr[5][b].d),
                                      static_cast<short>(kr[6][b].d), static_cast<short>(kr[7][b].d));
    const __m256 dkq = _mm256_mul_ps(_mm256_cvtph_ps(dk), _mm256_set1_ps(qq.d[b]));
    s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_cvtepi32_ps(reduce8_epi32(acc)), dkq));
  }
  return s;
}

// Prefetches bytes [0, n) from p: one hint per cache line.
inline void prefetch_bytes(const void* p, int64_t n) {
  for (int64_t off = 0; off < n; off += 64) _mm_prefetch(static_cast<const char*>(p) + off, _MM_HINT_T0);
}

// out[0, 32 NB) = sum_i sum_b (p_i d_ib) V_ib for NB blocks starting at v (rows nb blocks apart).
template <int NB>
struct OutQ8 {
  static void run(const block_q8_0* v, int64_t nb, int64_t n_kv, const float* sc, float inv, float* out) {
#if BLOOMZ_X86_AVX512
    __m512 acc[2 * NB];
    for (int j = 0; j < 2 * NB; ++j) acc[j] = _mm512_setzero_ps();
#else
    __m256 acc[4 * NB];
    for (int j = 0; j < 4 * NB; ++j) acc[j] = _mm256_setzero_ps();
#endif
    for (int64_t i = 0; i < n_kv; ++i, v += nb) {
      if (i + kAttnAhead < n_kv) prefetch_bytes(v + kAttnAhead * nb, NB * static_cast<int64_t>(sizeof(block_q8_0)));
      const float p = sc[i] * inv;
      for (int b = 0; b < NB; ++b) {
        const float w = p * h2f(v[b].d);
#if BLOOMZ_X86_AVX512
        const __m512 wv = _mm512_set1_ps(w);
        for (int g = 0; g < 2; ++g) {
          const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v[b].qs + 16 * g)));
          acc[2 * b + g] = _mm512_fmadd_ps(wv, _mm512_cvtepi32_ps(q), acc[2 * b + g]);
        }
#else
        const __m256 wv = _mm256_set1_ps(w);
        for (int g = 0; g < 4; ++g) {
          const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v[b].qs + 8 * g)));
          acc[4 * b + g] = _mm256_fmadd_ps(wv, _mm256_cvtepi32_ps(q), acc[4 * b + g]);
        }
#endif
      }
    }
#if BLOOMZ_X86_AVX512
    for (int j = 0; j < 2 * NB; ++j) _mm512_storeu_ps(out + 16 * j, acc[j]);
#else
    for (int j = 0; j < 4 * NB; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
#endif
  }
};

void attn_q8_0(const AttnQ8Args& a) {
  const int64_t D = a.d, nb = D / 32;
  if (D % 32 != 0 || nb > kAttnQ8MaxBlocks || D == 0) {
    table_ref().attn_q8_0(a);
    return;
  }
  const auto* K = static_cast<const block_q8_0*>(a.k);
  const auto* V = static_cast<const block_q8_0*>(a.v);
  block_q8_0 qb[kAttnQ8MaxBlocks];
  quantize_q8_0(a.q, qb, D);
  Q8Query qq;
  for (int64_t b = 0; b < nb; ++b) {
    qq.sgn[b] = loadu(qb[b].qs);
    qq.abs[b] = _mm256_abs_epi8(qq.sgn[b]);
    qq.d[b] = h2f(qb[b].d);
  }
  const int64_t row_bytes = nb * static_cast<int64_t>(sizeof(block_q8_0));
  const float max = attn_scores(a.n_kv, a.pos, a.scale, a.slope, a.scores, [&](int64_t k, int m) {
    if (k + kAttnAhead + 8 <= a.n_kv) prefetch_bytes(K + (k + kAttnAhead) * nb, 8 * row_bytes);
    return attn_dots8_q8(qq, K, nb, k, m);
  });
  const float inv = static_cast<float>(1.0 / attn_exp(a.scores, a.n_kv, max));
  // Up to kChunk blocks per pass over the values (AVX2: 4 vectors per block, 16 registers in all).
  constexpr int64_t kChunk = kAvx512 ? 8 : 2;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int64_t n = nb - b0 < kChunk ? nb - b0 : kChunk;
    with_count<OutQ8>(n, V + b0, nb, a.n_kv, static_cast<const float*>(a.scores), inv, a.out + 32 * b0);
  }
}

// Bias + fp16-table GELU, 8 at a time: the table entries are gathered as 32-bit words (hence the
// padding) and their low halves widened with F16C, exactly as the scalar fp16 -> f32.
void bias_gelu(float* x, const float* b, int64_t n, const uint16_t* table) {
  int64_t i = 0;
  const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
  const __m256i mask16 = _mm256_set1_epi32(0xFFFF);
#if BLOOMZ_X86_AVX512
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(b + i));
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i g = _mm512_i32gather_epi32(_mm512_cvtepu16_epi32(h), table, 2);
    __m512 r = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));  // vpmovdw keeps the low halves
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(10.0f), _CMP_GE_OQ), r, v);
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(-10.0f), _CMP_LE_OQ), r, _mm512_setzero_ps());
    _mm512_storeu_ps(x + i, r);
  }
#endif
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i));
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i g = _mm256_and_si256(
        _mm256_i32gather_epi32(reinterpret_cast<const int*>(table), _mm256_cvtepu16_epi32(h), 2), mask16);
    const __m256i g16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(g, g), 0x08);
    __m256 r = _mm256_cvtph_ps(_mm256_castsi256_si128(g16));
    r = _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
    r = _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LE_OQ), r);
    _mm256_storeu_ps(x + i, r);
  }
  for (; i < n; ++i) {
    const float v = x[i] + b[i];
    x[i] = v <= -10.0f ? 0.0f : (v >= 10.0f ? v : h2f(table[f2h(v)]));
  }
}

// LM-head screening (kernels.hpp), 8 values at a time with F16C: the reference's float steps for
// the codes and stats (max is exact in any order; vroundps and vfnmadd round as nearbyint and fma).
bool screen_quantize(const uint16_t* w, int8_t* q, int64_t n, ScreenRowStats* stats) {
  const __m128i exp_mask = _mm_set1_epi16(0x7C00);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m128i bad = _mm_setzero_si128();
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask));
    vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_cvtph_ps(h), abs_mask));
  }
  if (!_mm_testz_si128(bad, bad)) return false;
  float lanes[8];
  _mm256_storeu_ps(lanes, vmax);
  float amax = 0.0f;
  for (const float l : lanes) amax = l > amax ? l : amax;
  for (; i < n; ++i) {
    if ((w[i] & 0x7C00u) == 0x7C00u) return false;
    const float a = std::fabs(h2f(w[i]));
    amax = a > amax ? a : amax;
  }
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  const float scale = amax / 127.0f;
  const __m256 vinv = _mm256_set1_ps(inv), vscale = _mm256_set1_ps(scale);
  __m256 verr = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 c = _mm256_round_ps(_mm256_mul_ps(v, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i c32 = _mm256_cvtps_epi32(c);
    const __m128i c16 = _mm_packs_epi32(_mm256_castsi256_si128(c32), _mm256_extracti128_si256(c32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(c16, c16));
    verr = _mm256_max_ps(verr, _mm256_and_ps(_mm256_fnmadd_ps(vscale, c, v), abs_mask));
  }
  _mm256_storeu_ps(lanes, verr);
  float err = 0.0f;
  for (const float l : lanes) err = l > err ? l : err;
  for (; i < n; ++i) {
    const float v = h2f(w[i]);
    const float c = std::nearbyint(v * inv);
    q[i] = static_cast<int8_t>(c);
    const float e = std::fabs(std::fma(-scale, c, v));
    err = e > err ? e : err;
  }
  *stats = {scale, err, amax};
  return true;
}

// Per row: the codes widened to int32, converted and multiplied into independent accumulators.
// The rows are one stream: each row prefetches the row kScreenPrefetch bytes ahead into L2 (not
// past r1, which another thread may be reading).
constexpr int64_t kScreenPrefetch = 8192;
void screen_dot(const ScreenDotArgs& a) {
  const int64_t n = a.n;
  const int8_t* pf_end = a.q + a.r1 * n;
  for (int64_t r = a.r0; r < a.r1; ++r) {
    const int8_t* qr = a.q + r * n;
    for (const int8_t* p = qr + kScreenPrefetch; p < qr + kScreenPrefetch + n && p < pf_end; p += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
    }
    int64_t i = 0;
    float sum = 0.0f;
#if BLOOMZ_X86_AVX512
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
      const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + i))));
      const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + i + 16))));
      s0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(a.x + i), s0);
      s1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(a.x + i + 16), s1);
    }
    __m256 s8 = fold16(_mm512_add_ps(s0, s1));
#else
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
      const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qr + i))));
      const __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qr + i + 8))));
      s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a.x + i), s0);
      s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a.x + i + 8), s1);
    }
    __m256 s8 = _mm256_add_ps(s0, s1);
#endif
    for (; i + 8 <= n; i += 8) {
      const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qr + i))));
      s8 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a.x + i), s8);
    }
    sum = hsum(s8);
    for (; i < n; ++i) sum += static_cast<float>(qr[i]) * a.x[i];
    a.out[r] = a.scale[r] * sum;
  }
}

const KernelTable kTable = {
    BLOOMZ_X86_NAME,
    {quantize_f32, quantize_f16, quantize_bf16, quantize_q8_0, quantize_q8_1, quantize_q8_K},
    {rect<KFloat<LoadF32>>, rect<KFloat<LoadF16>>, rect<KFloat<LoadBF16>>,
     rect_auto<KNib<W4_0>, Tile32<W4_0>>, rect_auto<KNib<W4_1>, Tile32<W4_1>>,
     rect_auto<KNib<W5_0>, Tile32<W5_0>>, rect_auto<KNib<W5_1>, Tile32<W5_1>>,
     rect_auto<K32<W8_0>, Tile32<W8_0>>, rect_auto<KQK<Q2KTraits>, TileK<Q2KTraits>>,
     rect_auto<KQK<Q3KTraits>, TileK<Q3KTraits>>, rect_auto<KQK<Q4KTraits, kAvx512>, TileK<Q4KTraits>>,
     rect_auto<KQK<Q5KTraits, kAvx512>, TileK<Q5KTraits>>, rect_auto<KQK<Q6KTraits, kAvx512>, TileK<Q6KTraits>>},
    attn_f16,
    bias_gelu,
    {nullptr, nullptr, nullptr, rect_x8<X8Q4_0>, nullptr, nullptr, nullptr, rect_x8<X8Q8_0>, nullptr, nullptr,
     rect_x8<X8Q4_K>, nullptr, rect_x8<X8Q6_K>},
    attn_q8_0,
    screen_quantize,
    screen_dot,
};

}  // namespace
}  // namespace bloomz::kernels::BLOOMZ_X86_NS
