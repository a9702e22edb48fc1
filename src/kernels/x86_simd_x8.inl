// Dots over x8 weights (repack.hpp; included by x86_simd.inl inside its anonymous namespace).
//
// Every 32-byte vector of an x8 block already holds 4 elements of each of 8 rows in the lanes the
// tile kernels use (x86_simd_tiles.inl), so a block unpacks with a few ANDs and shifts (Q4_0) or
// not at all (Q8_0), for any number of tokens, from one sequential stream per 8 rows. The integer
// block sums and the float sequence per output are those of KNib / K32 on the plain rows.

// The 32 codes of one x8 block (c[j], lane r: 4 codes of row r) against one token's 32 bytes q:
// per row, the int16 pair sums of all 32 products (codes <= 15: 8 * 2 * 15 * 128 < 2^15).
inline __m256i dot32_u4(const __m256i* c, const int8_t* q) {
  __m256i s16 = _mm256_maddubs_epi16(c[0], bcast32(q));
#pragma GCC unroll 8
  for (int j = 1; j < 8; ++j) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(c[j], bcast32(q + 4 * j)));
  return s16;
}

// The same products as int32 row sums: sum over j < N of c[j] . q[4j..4j+3].
template <int N>
inline __m256i dot_u8_i32(const __m256i* c, const int8_t* q) {
  if constexpr (!kVnni && N == 8) {  // 4-bit codes: one int16 run, one widening
    return _mm256_madd_epi16(dot32_u4(c, q), _mm256_set1_epi16(1));
  } else {
    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) s = dpbusd(s, c[j], bcast32(q + 4 * j));
    return s;
  }
}

// Scale vectors of the x8 K-quant kernels: (sc, sc) int16 pairs for madd, the int32 scale with VNNI.
inline __m256i x8_scale(__m256i pair) { return kVnni ? pair_to_i32(pair) : pair; }

// isum + sc * (N chunks of codes . q); sc from x8_scale (codes <= 15 without VNNI: one int16 run).
template <int N>
inline __m256i add_scaled_dot(__m256i isum, const __m256i* c, const int8_t* q, __m256i sc) {
  if constexpr (kVnni) return _mm256_add_epi32(isum, _mm256_mullo_epi32(dot_u8_i32<N>(c, q), sc));
  else return _mm256_add_epi32(isum, _mm256_madd_epi16(dot32_u4(c, q), sc));
}

// Software prefetch distance of the x8 dots while decoding, in bytes ahead of the block being read
// (the same for every type: what matters is the time the line has to arrive). A/B runs of bench
// tg128 alternating two distances every 4 tokens (Zen 5, 2 threads, 560m and 1b7 shapes) put the
// best at 3.5-7 KB for all four types: against the former distances (Q4_0 1.1 KB, Q8_0 1.5 KB,
// Q4_K 9.2 KB, Q6_K 13.4 KB) 4.5 KB was 3-8 % faster per token (the AVX2 table's Q4_0 and Q8_0:
// 5 and 10 %); 2.3 KB and 14-20 KB lost 2-4 %. Into L2 (prefetcht1) for Q4_0, Q4_K and Q6_K, into
// L1 for Q8_0: Zen 4, AVX-512 VNNI table, 560m tg32 with the two binaries taking turns 7 times,
// t1 against t0: Q4_0 1.04x, Q4_K_M 1.08x, Q6_K 1.22x, Q8_0 0.79x.
constexpr int64_t kT1PrefetchBytes = 4608;

// The AVX-512 one-token kernels (T1Q4_0, T1Q4_K, T1Q6_K), prefetching into L2, reach further: Zen 4,
// avx512vnni table, tokens alternating between two distances in one bench run (560m Q4_0 and 1b7
// Q4_K_M files, repacked), 16 KB against 4.5 KB: 0.95-0.97x the time per token where the read
// probe gave 52-59 GB/s, 0.99-1.00x at 28-37 GB/s; 9 KB 0.96x; 32 KB 0.98-1.00x (slow phases).
constexpr int64_t kT1L2PrefetchBytes = 16384;

// Below this many tokens the x8 dots stream one 8-row group at a time: at T = 1 (decoding,
// memory-bound) the two-group kernels measured 0.5-0.8x the one-group ones (kernel-bench, Zen 5).
constexpr int64_t kX8PairMinTokens = 4;

#if BLOOMZ_X86_AVX512
// Two x8 groups side by side in 512-bit registers (AVX-512 tables): lanes 0-7 are the rows of
// group g0, lanes 8-15 those of group g1, so one vpdpbusd serves 16 rows where the 256-bit kernels
// serve 8. Per lane the integer sums and float steps are those of X8Q4_0 / X8Q8_0::run.
inline __m512i x8_pair(const std::byte* a, const std::byte* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(a)), loadu(b), 1);
}
inline __m512 x8_pair_scales(const std::byte* a, const std::byte* b) {
  return _mm512_cvtph_ps(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b), reinterpret_cast<const __m128i*>(a)));
}

template <typename W>  // W4_0 or W8_0
struct X8Pair32 {
  using TK = Tile32<W>;
  static constexpr bool kQ4 = std::is_same_v<W, W4_0>;
  static constexpr int kTokens = 6;
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(typename W::Block));
  template <int NT>
  static void run(const std::byte* g0, const std::byte* g1, const typename TK::Acts* acts, int64_t nb, __m512* out) {
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* b0 = g0 + b * kBlockBytes;
      const std::byte* b1 = g1 + b * kBlockBytes;
      for (int i = 0; i < 3; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(b0) + 1024 + 64 * i, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b1) + 1024 + 64 * i, _MM_HINT_T0);
      }
      const __m512 dw = x8_pair_scales(b0, b1);
      __m512i c[8];    // Q4_0: codes 0..15; Q8_0: w ^ 0x80 with VNNI, else |w|
      __m512i sg[8];   // Q8_0 without VNNI: the signed weights
      if constexpr (kQ4) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int j = 0; j < 4; ++j) {
          const __m512i v = x8_pair(b0 + 16 + 32 * j, b1 + 16 + 32 * j);
          c[j] = _mm512_and_si512(v, m4);
          c[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
      } else {
        for (int j = 0; j < 8; ++j) {
          sg[j] = x8_pair(b0 + 16 + 32 * j, b1 + 16 + 32 * j);
          c[j] = kVnni ? _mm512_xor_si512(sg[j], _mm512_set1_epi8(static_cast<char>(0x80))) : _mm512_abs_epi8(sg[j]);
        }
      }
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = acts[t].a[b].qs;
        __m512i isum = _mm512_setzero_si512();
        if constexpr (kVnni) {
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) isum = V16::dpbusd(isum, c[j], V16::bcast32(q + 4 * j));
        } else if constexpr (kQ4) {  // one int16 run: 8 * 2 * 15 * 128 < 2^15
          __m512i s16 = _mm512_setzero_si512();
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) s16 = _mm512_add_epi16(s16, _mm512_maddubs_epi16(c[j], V16::bcast32(q + 4 * j)));
          isum = _mm512_madd_epi16(s16, ones);
        } else {
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j)
            isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(c[j], V16::apply_sign(V16::bcast32(q + 4 * j), sg[j])), ones));
        }
        if constexpr (TK::kOffset != 0) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(acts[t].off[b]));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(acts[t].d[b])), _mm512_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};
#endif

// Eight tokens per pass: their activations interleaved per block (one pointer reaches all eight,
// where eight separate streams would not fit the general registers), and one unpacking of a block
// serves eight tokens. Same integer sums and float sequence as run<NT>.
struct Acts8Q4_0 {
  int8_t qs[8][32];
  float d[8];
  int32_t off[8];
  static void interleave(const Tile32<W4_0>::Acts* acts, int64_t nb, Acts8Q4_0* out) {
    for (int64_t b = 0; b < nb; ++b) {
      for (int t = 0; t < 8; ++t) {
        std::memcpy(out[b].qs[t], acts[t].a[b].qs, 32);
        out[b].d[t] = acts[t].d[b];
        out[b].off[t] = acts[t].off[b];
      }
    }
  }
};

// The 32 codes of an x8 Q4_0 block: c[j] (low nibbles, elements 4j..) and c[j + 4] (high, 16 + 4j..).
inline void q4_0_codes(const std::byte* blk, __m256i* c) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int j = 0; j < 4; ++j) {
    const __m256i v = loadu(blk + 16 + 32 * j);
    c[j] = _mm256_and_si256(v, m4);
    c[j + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
}

struct X8Q4_0_8 {
  using Acts8 = Acts8Q4_0;
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_0));
  static void run(const std::byte* group, const Acts8* acts, int64_t nb, __m256* out) {
    __m256 acc[8];
    for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* blk = group + b * kBlockBytes;
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1024, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1024 + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1024 + 128, _MM_HINT_T0);
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      __m256i c[8];
      q4_0_codes(blk, c);
      const Acts8& a = acts[b];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        const int8_t* q = a.qs[t];
        const __m256i isum = _mm256_sub_epi32(dot_u8_i32<8>(c, q), _mm256_set1_epi32(a.off[t]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(a.d + t)), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < 8; ++t) out[t] = acc[t];
  }
};

struct X8Q4_0 {
  using W = W4_0;
  using TK = Tile32<W>;
  using Eight = X8Q4_0_8;
#if BLOOMZ_X86_AVX512
  using Pair = X8Pair32<W>;
#else
  using Pair = void;
#endif
  static int64_t blocks(int64_t n) { return n / 32; }
  static constexpr int kTokens = 6;  // tokens per pass over a block (one unpacking serves them)
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_0));
  template <int NT>
  static void run(const std::byte* group, const typename TK::Acts* acts, int64_t nb, __m256* out) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* blk = group + b * kBlockBytes;
      for (int i = 0; i < 3; ++i) _mm_prefetch(reinterpret_cast<const char*>(blk) + kT1PrefetchBytes + 64 * i, _MM_HINT_T1);
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      __m256i c[8];
      q4_0_codes(blk, c);
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = acts[t].a[b].qs;
        const __m256i isum = _mm256_sub_epi32(dot_u8_i32<8>(c, q), _mm256_set1_epi32(acts[t].off[b]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(acts[t].d + b)), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

struct X8Q8_0 {
  using W = W8_0;
  using TK = Tile32<W>;
  using Eight = void;
#if BLOOMZ_X86_AVX512
  using Pair = X8Pair32<W>;
#else
  using Pair = void;
#endif
  static int64_t blocks(int64_t n) { return n / 32; }
  static constexpr int kTokens = 4;
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q8_0));
  template <int NT>
  static void run(const std::byte* group, const typename TK::Acts* acts, int64_t nb, __m256* out) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* blk = group + b * kBlockBytes;
      for (int i = 0; i < 5; ++i) _mm_prefetch(reinterpret_cast<const char*>(blk) + kT1PrefetchBytes + 64 * i, _MM_HINT_T0);
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      const std::byte* qs = blk + 16;
      [[maybe_unused]] __m256i u[8];  // VNNI: w + 128, unsigned (Tile32<W8_0> takes 128 * sum(q) off)
      if constexpr (kVnni)
        for (int j = 0; j < 8; ++j) u[j] = _mm256_xor_si256(loadu(qs + 32 * j), _mm256_set1_epi8(static_cast<char>(0x80)));
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = acts[t].a[b].qs;
        __m256i isum = _mm256_setzero_si256();
        if constexpr (kVnni) {
          isum = _mm256_sub_epi32(dot_u8_i32<8>(u, q), _mm256_set1_epi32(acts[t].off[b]));
        } else {
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) {
            const __m256i w = loadu(qs + 32 * j);  // from L1 after the first token
            const __m256i x = _mm256_sign_epi8(bcast32(q + 4 * j), w);
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), x), ones));
          }
        }
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(acts[t].d + b)), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

// K-quant dots take Q8_K activations; the eight-token kernels read them interleaved per superblock.
struct Acts8Q8K {
  int8_t qs[8][QK_K];
  int16_t bsums[8][QK_K / 16];
  float d[8];
  template <typename TKActs>  // TileK<...>::Acts
  static void interleave(const TKActs* acts, int64_t nsb, Acts8Q8K* out) {
    for (int64_t sb = 0; sb < nsb; ++sb) {
      for (int t = 0; t < 8; ++t) {
        const block_q8_K& a = acts[t].a[sb];
        std::memcpy(out[sb].qs[t], a.qs, sizeof a.qs);
        std::memcpy(out[sb].bsums[t], a.bsums, sizeof a.bsums);
        out[sb].d[t] = a.d;
      }
    }
  }
};

// Q4_K (layout in repack.hpp): per superblock the 8 rows' scales and mins are decoded and turned
// into lane-per-row vectors, the codes of sub-block g are the low (g even) or high nibbles of the
// 8 vectors of chunk g / 2. Integer sums and float steps as TileK<Q4KTraits> / KQK:
// isum = sum_g sc_g * (codes . q8), imin = sum_g m_g * bsums, acc + (d*isum - dmin*imin).
struct X8Q4_KScales {
  __m256i scv[8];  // lane r: x8_scale of (sc_r[g], sc_r[g])
  __m256i mw[8];   // lane r: (m_r[g], m_r[g])
  explicit X8Q4_KScales(const std::byte* blk) {
    __m256i sc16[8], mins16[8];
    for (int r = 0; r < 8; ++r) sc16[r] = scales_k4(reinterpret_cast<const uint8_t*>(blk + 32 + 12 * r), mins16[r]);
    transpose8_epi32(sc16, scv);  // word g of sc16[r] is (sc_g, sc_g)
    for (auto& v : scv) v = x8_scale(v);
    transpose8_epi32(mins16, mw);
  }
};

inline __m256 q4_k_step(__m256 acc, const std::byte* blk, __m256i isum, __m256i imin, float da) {
  const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
  const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
  const __m256 vda = _mm256_set1_ps(da);
  const __m256 d = _mm256_mul_ps(dw, vda), dmin = _mm256_mul_ps(dmw, vda);
  return _mm256_add_ps(acc, _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)), _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(imin))));
}

// The 32 codes of sub-block g of an x8 Q4_K superblock: nibbles (low for even g) of chunk g / 2.
inline void q4_k_codes(const std::byte* blk, int g, __m256i* c) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const std::byte* qv = blk + 128 + (g / 2) * 256;
  for (int m = 0; m < 8; ++m) c[m] = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(loadu(qv + 32 * m), 4) : loadu(qv + 32 * m), m4);
}

inline __m256i q4_k_mins(const X8Q4_KScales& s, const int16_t* bsums) {
  __m256i x = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) x = dpwssd(x, s.mw[k], bcast32(bsums + 2 * k));
  return x;
}

struct X8Q4_K_8 {
  using Acts8 = Acts8Q8K;
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_K));
  static void run(const std::byte* group, const Acts8* acts, int64_t nsb, __m256* out) {
    __m256 acc[8];
    for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      const X8Q4_KScales s(blk);
      const Acts8& a = acts[sb];
      __m256i isum[8];
      for (int t = 0; t < 8; ++t) isum[t] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        for (int i = 0; i < 2; ++i) _mm_prefetch(reinterpret_cast<const char*>(blk) + kBlockBytes + 64 * (2 * g + i), _MM_HINT_T0);
        __m256i c[8];
        q4_k_codes(blk, g, c);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          isum[t] = add_scaled_dot<8>(isum[t], c, a.qs[t] + 32 * g, s.scv[g]);
        }
      }
      for (int i = 16; i < kBlockBytes / 64; ++i) _mm_prefetch(reinterpret_cast<const char*>(blk) + kBlockBytes + 64 * i, _MM_HINT_T0);
      for (int t = 0; t < 8; ++t) acc[t] = q4_k_step(acc[t], blk, isum[t], q4_k_mins(s, a.bsums[t]), a.d[t]);
    }
    for (int t = 0; t < 8; ++t) out[t] = acc[t];
  }
};

struct X8Q4_K {
  using TK = TileK<Q4KTraits>;
  using Eight = X8Q4_K_8;
  using Pair = void;  // two-group kernels measured slower than the one-group ones at T < 16 (and tiles from 16)
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_K));
  static constexpr int kTokens = 4;
  static int64_t blocks(int64_t n) { return n / QK_K; }
  template <int NT>
  static void run(const std::byte* group, const TK::Acts* acts, int64_t nsb, __m256* out) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      for (int64_t i = 0; i < kBlockBytes; i += 64) _mm_prefetch(reinterpret_cast<const char*>(blk) + 2 * kBlockBytes + i, _MM_HINT_T0);
      const X8Q4_KScales s(blk);
      __m256i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        __m256i c[8];
        q4_k_codes(blk, g, c);
        for (int t = 0; t < NT; ++t) {
          isum[t] = add_scaled_dot<8>(isum[t], c, acts[t].a[sb].qs + 32 * g, s.scv[g]);
        }
      }
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = acts[t].a[sb];
        acc[t] = q4_k_step(acc[t], blk, isum[t], q4_k_mins(s, a.bsums), a.d);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

// Q6_K per 8-row group and superblock: the scales as lane-per-row vectors.
struct X8Q6_KScales {
  __m256i scv[16];   // lane r: x8_scale of (sc_r[h], sc_r[h]), half-group h
  __m256i pairs[8];  // lane r: (sc_r[2k], sc_r[2k+1])
  explicit X8Q6_KScales(const std::byte* blk) {
    const auto* scl = reinterpret_cast<const int8_t*>(blk + 16);
    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
    for (int h = 0; h < 16; ++h) {
      const __m256i s32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scl + 8 * h)));
      scv[h] = kVnni ? s32 : _mm256_or_si256(_mm256_and_si256(s32, lo16), _mm256_slli_epi32(s32, 16));
    }
    for (int k = 0; k < 8; ++k) {
      const __m128i a = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scl + 16 * k)));
      const __m128i b = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scl + 16 * k + 8)));
      pairs[k] = _mm256_set_m128i(_mm_unpackhi_epi16(a, b), _mm_unpacklo_epi16(a, b));
    }
  }
  // sum_h sc_h * bsum_h
  __m256i scaled_bsums(const int16_t* bsums) const {
    __m256i x = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) x = dpwssd(x, pairs[k], bcast32(bsums + 2 * k));
    return x;
  }
  // isum - 32 * sum_h sc_h * bsum_h (the codes are stored as q + 32).
  __m256i offset_sum(__m256i isum, const int16_t* bsums) const {
    return _mm256_sub_epi32(isum, _mm256_slli_epi32(scaled_bsums(bsums), 5));
  }
};

// isum + sc * (4 chunks of 6-bit codes . q), one half-group; sc from x8_scale. Without VNNI in
// int16 runs of two chunks (2 * 2 * 63 * 127 < 2^15).
inline __m256i add_scaled_q6(__m256i isum, const __m256i* c, const int8_t* q, __m256i sc) {
  if constexpr (kVnni) return _mm256_add_epi32(isum, _mm256_mullo_epi32(dot_u8_i32<4>(c, q), sc));
  const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], bcast32(q)), _mm256_maddubs_epi16(c[1], bcast32(q + 4)));
  const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], bcast32(q + 8)), _mm256_maddubs_epi16(c[3], bcast32(q + 12)));
  return _mm256_add_epi32(isum, _mm256_add_epi32(_mm256_madd_epi16(p0, sc), _mm256_madd_epi16(p1, sc)));
}

// One code vector of group 4n + kk: the ql nibble (high for kk >= 2) and bits 2kk, 2kk+1 of qh moved
// to bits 4, 5 (16-bit shifts: what crosses a byte is masked off).
inline __m256i q6_code(__m256i ql, __m256i qh, int kk) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i lo = kk / 2 ? _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4) : _mm256_and_si256(ql, m4);
  const __m256i hs = kk == 0 ? _mm256_slli_epi16(qh, 4) : kk == 1 ? _mm256_slli_epi16(qh, 2) : kk == 2 ? qh : _mm256_srli_epi16(qh, 2);
  return _mm256_or_si256(lo, _mm256_and_si256(hs, m30));
}

// Q6_K, eight tokens per pass, their activations interleaved per superblock. One half-group (16
// elements, one scale) is unpacked at a time and serves all eight tokens; integer sums and the float
// sequence are those of X8Q6_K::run.
struct X8Q6_K_8 {
  using Acts8 = Acts8Q8K;
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q6_K));
  // Half-groups of group g = 4n + KK (KK: which nibble of ql and which 2 bits of qh), all eight
  // tokens; also prefetches 4 lines of the next superblock (27 lines over its 8 calls).
  template <int KK>
  static void group_codes(const std::byte* blk, int n, const __m256i* scv, const Acts8& a, __m256i* isum) {
    const int g = 4 * n + KK;
    for (int i = 0; i < 4; ++i) _mm_prefetch(reinterpret_cast<const char*>(blk) + kBlockBytes + 64 * (4 * g + i), _MM_HINT_T0);
    const std::byte* qlv = blk + 144 + (2 * n + KK % 2) * 8 * 32;
    const std::byte* qhv = blk + 1168 + 8 * n * 32;
    for (int half = 0; half < 2; ++half) {
      __m256i c[4];
      for (int j = 0; j < 4; ++j) c[j] = q6_code(loadu(qlv + 32 * (4 * half + j)), loadu(qhv + 32 * (4 * half + j)), KK);
      const __m256i sc = scv[2 * g + half];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        const int8_t* q = a.qs[t] + 32 * g + 16 * half;
        isum[t] = add_scaled_q6(isum[t], c, q, sc);
      }
    }
  }
  static void run(const std::byte* group, const Acts8* acts, int64_t nsb, __m256* out) {
    __m256 acc[8];
    for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      const X8Q6_KScales sc(blk);
      const Acts8& a = acts[sb];
      __m256i isum[8];
      for (int t = 0; t < 8; ++t) isum[t] = _mm256_setzero_si256();
      for (int n = 0; n < 2; ++n) {
        group_codes<0>(blk, n, sc.scv, a, isum);
        group_codes<1>(blk, n, sc.scv, a, isum);
        group_codes<2>(blk, n, sc.scv, a, isum);
        group_codes<3>(blk, n, sc.scv, a, isum);
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      for (int t = 0; t < 8; ++t) {
        const __m256i s = sc.offset_sum(isum[t], a.bsums[t]);
        acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a.d[t])), _mm256_cvtepi32_ps(s)));
      }
    }
    for (int t = 0; t < 8; ++t) out[t] = acc[t];
  }
};

// Q6_K: per superblock the 8 rows' codes of group g = 4n + kk, chunk j, come from one ql vector
// (low or high nibbles) and one qh vector (2 bits moved to bits 4-5); sums and float steps as in
// TileK<Q6KTraits> / KQK (isum - 32 * sum_h sc_h * bsum_h, then acc + (d_w * d_a) * s).
struct X8Q6_K {
  using TK = TileK<Q6KTraits>;
  using Eight = X8Q6_K_8;
  using Pair = void;  // two-group kernels measured slower than the one-group ones at T < 16 (and tiles from 16)
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q6_K));
  static constexpr int kTokens = 4;
  static int64_t blocks(int64_t n) { return n / QK_K; }
  template <int NT>
  static void run(const std::byte* group, const TK::Acts* acts, int64_t nsb, __m256* out) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      for (int64_t i = 0; i < kBlockBytes; i += 64) _mm_prefetch(reinterpret_cast<const char*>(blk) + 2 * kBlockBytes + i, _MM_HINT_T0);
      const X8Q6_KScales sc(blk);
      __m256i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
      for (int n = 0; n < 2; ++n) {
        for (int kk = 0; kk < 4; ++kk) {
          const int g = 4 * n + kk;
          const std::byte* qlv = blk + 144 + (2 * n + kk % 2) * 8 * 32;
          const std::byte* qhv = blk + 1168 + 8 * n * 32;
          __m256i c[8];
          for (int j = 0; j < 8; ++j) c[j] = q6_code(loadu(qlv + 32 * j), loadu(qhv + 32 * j), kk);
          for (int t = 0; t < NT; ++t) {
            const int8_t* q = acts[t].a[sb].qs + 32 * g;
            isum[t] = add_scaled_q6(isum[t], c, q, sc.scv[2 * g]);
            isum[t] = add_scaled_q6(isum[t], c + 4, q + 16, sc.scv[2 * g + 1]);
          }
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = acts[t].a[sb];
        const __m256i s = sc.offset_sum(isum[t], a.bsums);
        acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a.d)), _mm256_cvtepi32_ps(s)));
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

#if BLOOMZ_X86_AVX512
// One token against x8 K-quant weights (decoding, AVX-512 tables). A 512-bit register holds two
// neighbouring 32-byte vectors of an 8-row group (lanes 0-7: chunk j of rows 0-7, lanes 8-15:
// chunk j + 1), so one vpdpbusd does the work of two 256-bit ones. The token's bytes for each
// 8-byte step, [q[8k..8k+3] x 8 | q[8k+4..8k+7] x 8], are one vpermd of its 32-element group's
// 32 bytes. (They were once expanded per call, 64 bytes per 8 activations, and loaded: 8-64 KB
// per call that left L1 to the weight stream. The vpermd form decodes 2-6 % faster per token on
// Zen 5, 560m and 1b7 shapes, Q4_0/Q4_K_M/Q6_K; docs/performance.md § 3.7.) The halves are added
// at the end of each superblock; integer sums are exact, so isum and imin are those of X8Q4_K /
// X8Q6_K::run<1> and so are the float steps (same bits).

// The four vpermd indices: step k of a 32-element group takes its dwords (2k, 2k + 1).
struct T1Steps {
  __m512i idx[4];
  T1Steps() {
    const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for (int k = 0; k < 4; ++k) idx[k] = _mm512_add_epi32(idx0, _mm512_set1_epi32(2 * k));
  }
  // A group's 32 activation bytes, then its step k.
  static __m512i load(const int8_t* q32) { return _mm512_castsi256_si512(loadu(q32)); }
  __m512i step(__m512i q, int k) const { return _mm512_permutexvar_epi32(idx[k], q); }
};

// What the one-token kernels need of the token, derived once per call.
struct T1Acts {
  const int32_t* extra;   // per block: Q4_K: 4 int16 pairs of 32-element sums; Q6_K: -32 * bsum_h (16); Q4_0: 8 * sum(q)
  const float* d;         // per block: d_a
  const block_q8_0* q8;   // Q4_0: the token's blocks
  const block_q8_K* q8k;  // K-quants: the token's blocks
};

inline int64_t load_i64(const void* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Per call (K-quants): d and the per-superblock sums the two types need.
template <bool kQ6>
void t1_prepare_k(const DotArgs& p, Scratch& buf, T1Acts& out) {
  const auto* a = reinterpret_cast<const block_q8_K*>(p.a);
  const int64_t nsb = p.n / QK_K;
  constexpr int kExtra = kQ6 ? 16 : 4;
  auto* extra = buf.get<int32_t>(static_cast<size_t>(nsb) * (kExtra + 1));
  auto* d = reinterpret_cast<float*>(extra + nsb * kExtra);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    d[sb] = a[sb].d;
    const int16_t* bs = a[sb].bsums;
    int32_t* x = extra + sb * kExtra;
    if constexpr (kQ6) {
      for (int h = 0; h < 16; ++h) x[h] = -32 * bs[h];
    } else {  // sub-block g: B_g = bsums[2g] + bsums[2g + 1]; pairs (B0, B2), (B1, B3), (B4, B6), (B5, B7)
      int16_t b[8];
      for (int g = 0; g < 8; ++g) b[g] = static_cast<int16_t>(bs[2 * g] + bs[2 * g + 1]);
      auto pair = [](int16_t lo, int16_t hi) { return static_cast<int32_t>(static_cast<uint16_t>(lo) | (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16)); };
      x[0] = pair(b[0], b[2]);
      x[1] = pair(b[1], b[3]);
      x[2] = pair(b[4], b[6]);
      x[3] = pair(b[5], b[7]);
    }
  }
  out = T1Acts{extra, d, nullptr, a};
}

inline __m256i fold16i(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

struct T1Q4_K {
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_K));
  static constexpr int64_t kBlockElems = QK_K;
  static void prepare(const DotArgs& p, Scratch& buf, T1Acts& out) { t1_prepare_k<false>(p, buf, out); }
  static __m256 run(const std::byte* group, const T1Acts& a, int64_t nsb, const char* pf_end) {
    const T1Steps steps;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30);
    // dword 3r + i of the scale area is word i of row r's 12 scale bytes
    const __m512i idx01 = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 1, 4, 7, 10, 13, 16, 19, 22);
    const __m512i idx2 = _mm512_setr_epi32(2, 5, 8, 11, 14, 17, 20, 23, 2, 5, 8, 11, 14, 17, 20, 23);
    // byte g of each dword, zero-extended (vpshufb indexes within 128-bit lanes: dword i at 4i; 0x80 gives 0)
    __m512i pick[4];
    for (int g = 0; g < 4; ++g)
      pick[g] = _mm512_broadcast_i32x4(_mm_setr_epi32(static_cast<int>(0x80808000u | g), static_cast<int>(0x80808004u | g),
                                                      static_cast<int>(0x80808008u | g), static_cast<int>(0x8080800Cu | g)));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      if (const char* pf = reinterpret_cast<const char*>(blk) + kT1L2PrefetchBytes; pf < pf_end)
        for (int i = 0; i < kBlockBytes; i += 64) _mm_prefetch(pf + i, _MM_HINT_T1);
      // scales: X = [D0 | D1], Y = [D2 | D2 >> 4] per row lane
      const __m512i sa = _mm512_loadu_si512(blk + 32);
      const __m512i sbv = _mm512_castsi256_si512(loadu(blk + 96));
      const __m512i X = _mm512_permutex2var_epi32(sa, idx01, sbv);
      __m512i Y = _mm512_permutex2var_epi32(sa, idx2, sbv);
      Y = _mm512_mask_blend_epi32(0xFF00, Y, _mm512_srli_epi32(Y, 4));
      const __m512i lo = _mm512_and_si512(X, m6);  // [sc0..3 | m0..3]
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(Y, m4), _mm512_srli_epi32(X, 2), m30, 0xF8);  // [sc4..7 | m4..7]
      const __m512i slo = _mm512_shuffle_i64x2(lo, lo, 0x44), shi = _mm512_shuffle_i64x2(hi, hi, 0x44);
      const int32_t* x = a.extra + sb * 4;
      const __m256i w16 = _mm256_set1_epi32(0x00FF00FF);
      const __m256i mlo = _mm512_extracti64x4_epi64(lo, 1), mhi = _mm512_extracti64x4_epi64(hi, 1);
      __m256i imin = dpwssd(_mm256_setzero_si256(), _mm256_and_si256(mlo, w16), _mm256_set1_epi32(x[0]));
      imin = dpwssd(imin, _mm256_srli_epi16(mlo, 8), _mm256_set1_epi32(x[1]));
      imin = dpwssd(imin, _mm256_and_si256(mhi, w16), _mm256_set1_epi32(x[2]));
      imin = dpwssd(imin, _mm256_srli_epi16(mhi, 8), _mm256_set1_epi32(x[3]));
      const int8_t* q = a.q8k[sb].qs;
      __m512i isum = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j + 1 (high)
        __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
        const __m512i ql = T1Steps::load(q + 32 * (2 * j)), qh = T1Steps::load(q + 32 * (2 * j + 1));
        for (int p = 0; p < 4; ++p) {
          const __m512i v = _mm512_loadu_si512(blk + 128 + 256 * j + 64 * p);
          dl = V16::dpbusd(dl, _mm512_and_si512(v, m4), steps.step(ql, p));
          dh = V16::dpbusd(dh, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), steps.step(qh, p));
        }
        const __m512i s = j < 2 ? slo : shi;  // sub-blocks 2j, 2j + 1: bytes (2j) % 4, (2j + 1) % 4
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dl, _mm512_shuffle_epi8(s, pick[(2 * j) % 4])));
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dh, _mm512_shuffle_epi8(s, pick[(2 * j + 1) % 4])));
      }
      acc = q4_k_step(acc, blk, fold16i(isum), imin, a.d[sb]);
    }
    return acc;
  }
};

struct T1Q6_K {
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q6_K));
  static constexpr int64_t kBlockElems = QK_K;
  static void prepare(const DotArgs& p, Scratch& buf, T1Acts& out) { t1_prepare_k<true>(p, buf, out); }
  static __m256 run(const std::byte* group, const T1Acts& a, int64_t nsb, const char* pf_end) {
    const T1Steps steps;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const std::byte* blk = group + sb * kBlockBytes;
      if (const char* pf = reinterpret_cast<const char*>(blk) + kT1L2PrefetchBytes; pf < pf_end)
        for (int i = 0; i < kBlockBytes; i += 64) _mm_prefetch(pf + i, _MM_HINT_T1);
      const int8_t* act = a.q8k[sb].qs;
      const int32_t* off = a.extra + sb * 16;  // -32 * bsum_h: the codes are stored as q + 32
      __m512i isum = _mm512_setzero_si512();
      for (int n = 0; n < 2; ++n) {
        __m512i qh[4];
        for (int p = 0; p < 4; ++p) qh[p] = _mm512_loadu_si512(blk + 1168 + 256 * n + 64 * p);
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; ++kk) {
          const int g = 4 * n + kk;
          const std::byte* qlv = blk + 144 + (2 * n + kk % 2) * 256;
          const __m512i qg = T1Steps::load(act + 32 * g);
#pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            const int h = 2 * g + half;
            __m512i dp = _mm512_maskz_set1_epi32(0x00FF, off[h]);
            for (int p = 0; p < 2; ++p) {
              const __m512i ql = _mm512_loadu_si512(qlv + 64 * (2 * half + p));
              const __m512i lo = kk / 2 ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4) : _mm512_and_si512(ql, m4);
              const __m512i q = qh[2 * half + p];
              const __m512i hs = kk == 0 ? _mm512_slli_epi16(q, 4) : kk == 1 ? _mm512_slli_epi16(q, 2) : kk == 2 ? q : _mm512_srli_epi16(q, 2);
              dp = V16::dpbusd(dp, _mm512_ternarylogic_epi32(lo, hs, m30, 0xF8), steps.step(qg, 2 * half + p));
            }
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_set1_epi64x(load_i64(blk + 16 + 8 * h)));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dp, sc));
          }
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a.d[sb])), _mm256_cvtepi32_ps(fold16i(isum))));
    }
    return acc;
  }
};

// Q4_0 x8 against one token, the same form: per block two 512-bit loads hold the 4 code vectors
// (lanes 0-7 vector 2i, lanes 8-15 vector 2i + 1); low nibbles are elements 8i..8i+7 of the
// block, high nibbles 16 + 8i..; isum and the float step are X8Q4_0::run<1>'s.


struct T1Q4_0 {
  static constexpr int64_t kBlockBytes = 8 * static_cast<int64_t>(sizeof(block_q4_0));
  static constexpr int64_t kBlockElems = 32;
  // Tile32's per-block d_a and offset (8 * sum(q)).
  static void prepare(const DotArgs& p, Scratch& buf, T1Acts& out) {
    Tile32<W4_0>::Acts a{};
    Tile32<W4_0>::prepare(p, buf, &a);
    out = T1Acts{a.off, a.d, a.a, nullptr};
  }
  static __m256 run(const std::byte* group, const T1Acts& a, int64_t nb, const char* pf_end) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const T1Steps steps;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* blk = group + b * kBlockBytes;
      if (const char* pf = reinterpret_cast<const char*>(blk) + kT1L2PrefetchBytes; pf < pf_end)
        for (int i = 0; i < 3; ++i) _mm_prefetch(pf + 64 * i, _MM_HINT_T1);
      const __m512i v0 = _mm512_loadu_si512(blk + 16), v1 = _mm512_loadu_si512(blk + 80);
      const __m512i q = T1Steps::load(a.q8[b].qs);  // steps: q[0..7], q[8..15], q[16..23], q[24..31]
      __m512i s = V16::dpbusd(_mm512_setzero_si512(), _mm512_and_si512(v0, m4), steps.step(q, 0));
      __m512i t = V16::dpbusd(_mm512_setzero_si512(), _mm512_and_si512(v1, m4), steps.step(q, 1));
      s = V16::dpbusd(s, _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4), steps.step(q, 2));
      t = V16::dpbusd(t, _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4), steps.step(q, 3));
      const __m256i isum = _mm256_sub_epi32(fold16i(_mm512_add_epi32(s, t)), _mm256_set1_epi32(a.extra[b]));
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(a.d + b)), _mm256_cvtepi32_ps(isum), acc);
    }
    return acc;
  }
};

// Rows [r0, r1) of x8 weights against one token (K = T1Q4_0, T1Q4_K, T1Q6_K); what is derived
// from the activations is kept per thread for the other row ranges of the same call.
template <typename K>
void rect_x8_t1(const DotArgs& p) {
  static thread_local Scratch buf;
  static thread_local T1Acts acts{};
  static thread_local uint64_t prepared_id = 0;
  static thread_local const std::byte* prepared_a = nullptr;
  if (p.a_id == 0 || p.a_id != prepared_id || p.a != prepared_a) {
    K::prepare(p, buf, acts);
    prepared_id = p.a_id;
    prepared_a = p.a;
  }
  const int64_t nb = p.n / K::kBlockElems;
  // no prefetching past the caller's stream: the rows after it are another thread's
  const char* pf_end = reinterpret_cast<const char*>(p.w + (std::max(p.r1, p.pf_r1) + 7) / 8 * p.w_stride);
  for (int64_t r = p.r0; r < p.r1; r += 8) _mm256_storeu_ps(p.y + r, K::run(p.w + (r / 8) * p.w_stride, acts, nb, pf_end));
}
#endif

// The x8 rectangle: 8-row groups from r0 to r1, tokens in groups of X::kTokens (then fewer) per 8 rows.
#if BLOOMZ_X86_AVX512
// K-quant x8 weights against many tokens (AVX-512 tables): the 16-row tile kernels outrun the
// 8-row x8 kernels by about 2x there, so each 16-row range is unpacked back to plain rows (a few KB
// per range, against the range's 16 x T outputs) and run through rect_tiled. Same outputs: the tile
// and x8 kernels both give, per output, the plain row's sums and float steps.
constexpr int64_t kX8TileMinTokens = 16;

template <typename X>
void rect_x8_as_tiles(const DotArgs& p) {
  using Block = typename X::TK::Block;
  static thread_local Scratch plain_buf;
  const int64_t row_bytes = X::blocks(p.n) * static_cast<int64_t>(sizeof(Block));
  auto* plain = plain_buf.get<std::byte>(static_cast<size_t>(16 * row_bytes));
  constexpr GgmlType kType = std::is_same_v<Block, block_q4_K> ? GgmlType::Q4_K : GgmlType::Q6_K;
  for (int64_t r = p.r0; r < p.r1; r += 16) {
    const int64_t nr = p.r1 - r < 16 ? p.r1 - r : 16;  // 16 or 8
    for (int64_t g = 0; g < nr / 8; ++g)
      unpack_x8(kType, p.w + (r / 8 + g) * p.w_stride, row_bytes, plain + g * 8 * row_bytes);
    DotArgs q = p;
    q.w = plain;
    q.w_stride = row_bytes;
    q.r0 = 0;
    q.r1 = nr;
    q.y = p.y + r;
    rect_tiled<typename X::TK, V16>(q);
  }
}
#endif

template <typename X>
void rect_x8(const DotArgs& p) {
  using TK = typename X::TK;
#if BLOOMZ_X86_AVX512
  if constexpr (std::is_same_v<X, X8Q4_K> || std::is_same_v<X, X8Q6_K>) {
    if (p.n_tok >= kX8TileMinTokens) {
      rect_x8_as_tiles<X>(p);
      return;
    }
    if (p.n_tok == 1) {
      rect_x8_t1<std::conditional_t<std::is_same_v<X, X8Q4_K>, T1Q4_K, T1Q6_K>>(p);
      return;
    }
  }
  if constexpr (std::is_same_v<X, X8Q4_0>) {
    if (p.n_tok == 1) {
      rect_x8_t1<T1Q4_0>(p);
      return;
    }
  }
#endif
  // What is derived from the activations, kept per thread for the other row ranges of the same call.
  static thread_local Scratch act_buf, act_list, acts8_buf;
  static thread_local uint64_t prepared_id = 0;
  static thread_local const std::byte* prepared_a = nullptr;
  const bool fresh = p.a_id == 0 || p.a_id != prepared_id || p.a != prepared_a;
  auto* acts = act_list.get<typename TK::Acts>(static_cast<size_t>(p.n_tok));
  const int64_t nb = X::blocks(p.n);
  if (fresh) TK::prepare(p, act_buf, acts);
  int64_t n8 = 0;  // tokens served by the eight-token kernel (whole groups of 8)
  [[maybe_unused]] void* acts8 = nullptr;
  if constexpr (!std::is_void_v<typename X::Eight>) {
    using A8 = typename X::Eight::Acts8;
    n8 = p.n_tok / 8 * 8;
    A8* a8 = acts8_buf.get<A8>(static_cast<size_t>(n8 / 8 * nb));
    if (fresh) {
      for (int64_t t0 = 0; t0 < n8; t0 += 8) A8::interleave(acts + t0, nb, a8 + t0 / 8 * nb);
    }
    acts8 = a8;
  }
  prepared_id = p.a_id;
  prepared_a = p.a;
  for (int64_t r = p.r0; r < p.r1; r += 8) {
    const std::byte* group = p.w + (r / 8) * p.w_stride;
    if constexpr (!std::is_void_v<typename X::Pair>) {
      using P = typename X::Pair;
      if (r + 16 <= p.r1 && p.n_tok >= kX8PairMinTokens) {  // two groups at once; all tokens
        for (int64_t t0 = 0; t0 < p.n_tok;) {
          __m512 out[P::kTokens];
          const int64_t left = p.n_tok - t0;
          const int nt = left >= P::kTokens ? P::kTokens : static_cast<int>(left);
          const std::byte* next = group + p.w_stride;
          switch (nt) {
            case 6: P::template run<6>(group, next, acts + t0, nb, out); break;
            case 5: P::template run<5>(group, next, acts + t0, nb, out); break;
            case 4: P::template run<4>(group, next, acts + t0, nb, out); break;
            case 3: P::template run<3>(group, next, acts + t0, nb, out); break;
            case 2: P::template run<2>(group, next, acts + t0, nb, out); break;
            default: P::template run<1>(group, next, acts + t0, nb, out); break;
          }
          for (int t = 0; t < nt; ++t) _mm512_storeu_ps(p.y + (t0 + t) * p.ldy + r, out[t]);
          t0 += nt;
        }
        r += 8;
        continue;
      }
    }
    if constexpr (!std::is_void_v<typename X::Eight>) {
      using A8 = typename X::Eight::Acts8;
      for (int64_t t0 = 0; t0 < n8; t0 += 8) {
        __m256 out[8];
        X::Eight::run(group, static_cast<const A8*>(acts8) + t0 / 8 * nb, nb, out);
        for (int t = 0; t < 8; ++t) _mm256_storeu_ps(p.y + (t0 + t) * p.ldy + r, out[t]);
      }
    }
    for (int64_t t0 = n8; t0 < p.n_tok;) {
      __m256 out[6];
      const int64_t left = p.n_tok - t0;
      const int nt = left >= X::kTokens ? X::kTokens : static_cast<int>(left);
      switch (nt) {
        case 6: X::template run<6>(group, acts + t0, nb, out); break;
        case 5: X::template run<5>(group, acts + t0, nb, out); break;
        case 4: X::template run<4>(group, acts + t0, nb, out); break;
        case 3: X::template run<3>(group, acts + t0, nb, out); break;
        case 2: X::template run<2>(group, acts + t0, nb, out); break;
        default: X::template run<1>(group, acts + t0, nb, out); break;
      }
      for (int t = 0; t < nt; ++t) _mm256_storeu_ps(p.y + (t0 + t) * p.ldy + r, out[t]);
      t0 += nt;
    }
  }
}
