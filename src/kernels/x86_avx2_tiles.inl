// Tiled dots for prompt batches (included by x86_avx2.cpp, inside its anonymous namespace).
//
// With many tokens per call, 8 weight rows are first unpacked into a tile of 8-bit codes laid out
// for the SIMD lanes: for every 32-element group, chunk j (j = 0..7) is one 32-byte vector whose
// 32-bit lane r holds elements 4j..4j+3 of row r. One broadcast of 4 activation bytes against a
// chunk then gives all 8 rows' partial sums in their own lanes: the per-block integer sums of 8
// rows come out of maddubs/madd with no horizontal adds, and the unpacking (nibbles, high bits,
// scales) is paid once per tile instead of once per token. The tile is rebuilt per call, so the
// model's weights stay as they are in the file (no repacked copy, no load-time cost).
//
// Per output the float operations are exactly those of the row kernels (K32/KNib for 32-element
// blocks, KQK for K-quants): same integer block sums, same float sequence; only the integer work is
// arranged differently. So results stay bit-identical for any batch size.

// Tokens per call from which the tiled path is used (below it, the row kernels).
constexpr int64_t kTileMinTokens = 4;

// Lane r of out[j] = 32-bit word j of v[r] (an 8x8 transpose of 32-bit words).
inline void transpose8_epi32(const __m256i v[8], __m256i out[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);      // w0 w0 w1 w1 | w4 w4 w5 w5
    t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);  // w2 w2 w3 w3 | w6 w6 w7 w7
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, rows 4-7
    const __m256i* tt = t + 4 * h;
    u[4 * h + 0] = _mm256_unpacklo_epi64(tt[0], tt[2]);  // w0 | w4
    u[4 * h + 1] = _mm256_unpackhi_epi64(tt[0], tt[2]);  // w1 | w5
    u[4 * h + 2] = _mm256_unpacklo_epi64(tt[1], tt[3]);  // w2 | w6
    u[4 * h + 3] = _mm256_unpackhi_epi64(tt[1], tt[3]);  // w3 | w7
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    out[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

inline __m256i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// An 8-row tile (pointers into per-thread scratch).
struct Tile {
  uint8_t* codes;   // groups x 8 chunks x 32 bytes (unsigned codes; Q8_0: |w|)
  int8_t* sgn;      // Q8_0: the signed weights, same layout
  float* d;         // per block (32-element types) or superblock (K): 8 rows
  float* m;         // Q4_1/Q5_1: min per block; K-quants with mins: dmin per superblock
  uint32_t* sc;     // K: per superblock, 16 half-groups x 8 rows, the scale in both 16-bit halves
  uint32_t* pairs;  // K: per superblock, 8 x 8 rows, (x[2k], x[2k+1]) as two int16: x = mins or scales

  static Tile alloc(Scratch& s, int64_t n) {
    const int64_t groups = n / 32, nsb = n / QK_K;
    const size_t codes = static_cast<size_t>(groups) * 256;
    const size_t floats = static_cast<size_t>(groups) * 8;
    const size_t words = static_cast<size_t>(nsb) * 16 * 8 + static_cast<size_t>(nsb) * 8 * 8;
    auto* base = s.get<uint8_t>(2 * codes + 2 * floats * 4 + words * 4);
    Tile t{};
    t.codes = base;
    t.sgn = reinterpret_cast<int8_t*>(base + codes);
    t.d = reinterpret_cast<float*>(base + 2 * codes);
    t.m = t.d + floats;
    t.sc = reinterpret_cast<uint32_t*>(t.m + floats);
    t.pairs = t.sc + static_cast<size_t>(nsb) * 16 * 8;
    return t;
  }
};

inline void store_chunks(uint8_t* dst, const __m256i v[8]) {
  __m256i c[8];
  transpose8_epi32(v, c);
  for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * j), c[j]);
}

// ---- 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)

template <typename Wt>
struct Tile32 {
  using Block = typename Wt::Block;
  using ABlock = typename Wt::ABlock;
  // Chunks summed in int16 before widening: 4-bit codes x |q8| <= 127: 8 * 2 * 15 * 127 < 2^15;
  // 5-bit: 4 * 2 * 31 * 127 < 2^15; Q8_0 (sign trick, 2 * 128 * 127 per pair): one.
  static constexpr int kRun = Wt::kSignedCodes ? 1 : (Wt::kOffset == 16 || std::is_same_v<Block, block_q5_1> ? 4 : 8);

  static void fill(Tile& tl, const Block* const* w, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b) {
      __m256i v[8];
      for (int r = 0; r < 8; ++r) v[r] = Wt::codes(w[r][b]);
      if constexpr (Wt::kSignedCodes) {
        store_chunks(reinterpret_cast<uint8_t*>(tl.sgn) + 256 * b, v);
        for (int r = 0; r < 8; ++r) v[r] = _mm256_abs_epi8(v[r]);
      }
      store_chunks(tl.codes + 256 * b, v);
      for (int r = 0; r < 8; ++r) {
        tl.d[8 * b + r] = h2f(w[r][b].d);
        if constexpr (Wt::kMin) tl.m[8 * b + r] = h2f(w[r][b].m);
      }
    }
  }

  // Per token and block: d_a, s_a (Q8_1) and offset * sum(q) (Q4_0, Q5_0), as in K32::Ctx.
  struct Acts {
    const ABlock* a;
    const float* d;
    const float* s;
    const int32_t* off;
  };
  static void prepare(const DotArgs& p, Scratch& buf, Acts* acts) {
    const int64_t nb = p.n / 32;
    float* f = buf.get<float>(static_cast<size_t>(3 * p.n_tok * nb));
    auto* o = reinterpret_cast<int32_t*>(f + 2 * p.n_tok * nb);
    for (int64_t t = 0; t < p.n_tok; ++t) {
      const auto* a = reinterpret_cast<const ABlock*>(p.a + t * p.a_stride);
      float* d = f + 2 * t * nb;
      float* s = d + nb;
      int32_t* off = o + t * nb;
      for (int64_t b = 0; b < nb; ++b) {
        d[b] = h2f(a[b].d);
        if constexpr (Wt::kMin) s[b] = h2f(a[b].s);
        if constexpr (Wt::kOffset != 0) {
          const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(loadu(a[b].qs), _mm256_set1_epi8(static_cast<char>(0x80))),
                                              _mm256_setzero_si256());
          const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
          off[b] = Wt::kOffset * (_mm_cvtsi128_si32(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2))) - 32 * 128);
        }
      }
      acts[t] = Acts{a, d, s, off};
    }
  }

  template <int NT>
  static void run(const Tile& tl, const Acts* acts, int64_t n, __m256* out) {
    __m256 acc[NT], macc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* cg = tl.codes + 256 * b;
      const int8_t* sg = tl.sgn + 256 * b;
      const __m256 dw = _mm256_load_ps(tl.d + 8 * b);
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = acts[t].a[b].qs;
        __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int c0 = 0; c0 < 8; c0 += kRun) {
          __m256i s16 = _mm256_setzero_si256();
#pragma GCC unroll 8
          for (int c = c0; c < c0 + kRun; ++c) {
            __m256i x = bcast32(q + 4 * c);
            if constexpr (Wt::kSignedCodes) x = _mm256_sign_epi8(x, _mm256_load_si256(reinterpret_cast<const __m256i*>(sg + 32 * c)));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(cg + 32 * c)), x));
          }
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s16, ones));
        }
        if constexpr (Wt::kOffset != 0) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(acts[t].off[b]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(acts[t].d + b)), _mm256_cvtepi32_ps(isum), acc[t]);
        if constexpr (Wt::kMin)
          macc[t] = _mm256_fmadd_ps(_mm256_load_ps(tl.m + 8 * b), _mm256_broadcast_ss(acts[t].s + b), macc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = Wt::kMin ? _mm256_add_ps(acc[t], macc[t]) : acc[t];
  }
};

// ---- K-quants (Q2_K .. Q6_K) against Q8_K activations

template <typename Tr>
struct TileK {
  using Block = typename Tr::Block;
  using ABlock = block_q8_K;
  static constexpr bool kQ4K = std::is_same_v<Block, block_q4_K>;
  static constexpr bool kQ5K = std::is_same_v<Block, block_q5_K>;
  // Chunks per int16 run: codes <= 15 (Q4_K) or <= 7 (Q2_K, Q3_K): 8; Q5_K (<= 31): 4; Q6_K (<= 63):
  // 2 (2 * 2 * 63 * 127 < 2^15). Scales change every 4 chunks (16 elements) except Q4_K/Q5_K (8).
  static constexpr int kRun = std::is_same_v<Block, block_q6_K> ? 2 : (kQ5K ? 4 : 8);
  static constexpr int kScaleChunks = (kQ4K || kQ5K) ? 8 : 4;
  static constexpr int kStep = kRun < kScaleChunks ? kRun : kScaleChunks;

  static void fill(Tile& tl, const Block* const* w, int64_t n) {
    for (int64_t sb = 0; sb < n / QK_K; ++sb) {
      __m256i sc16[8], x16[8];
      for (int r = 0; r < 8; ++r) {
        __m256i mins16 = _mm256_setzero_si256();
        sc16[r] = Tr::scales(w[r][sb], mins16);
        x16[r] = Tr::kHasMin ? mins16 : sc16[r];
        tl.d[8 * sb + r] = Tr::d(w[r][sb]);
        tl.m[8 * sb + r] = Tr::dmin(w[r][sb]);
      }
      // pairs: word k of x16 is (x[2k], x[2k+1])
      __m256i pw[8];
      transpose8_epi32(x16, pw);
      for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(tl.pairs + (8 * sb + k) * 8), pw[k]);
      // scales of the 16 half-groups, duplicated into both halves of a 32-bit word
      __m256i lo[8], hi[8], tlo[8], thi[8];
      for (int r = 0; r < 8; ++r) lo[r] = _mm256_unpacklo_epi16(sc16[r], sc16[r]), hi[r] = _mm256_unpackhi_epi16(sc16[r], sc16[r]);
      transpose8_epi32(lo, tlo);  // half-groups 0 1 2 3 8 9 10 11
      transpose8_epi32(hi, thi);  // half-groups 4 5 6 7 12 13 14 15
      static constexpr int kLoHalf[8] = {0, 1, 2, 3, 8, 9, 10, 11};
      for (int j = 0; j < 8; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(tl.sc + (16 * sb + kLoHalf[j]) * 8), tlo[j]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(tl.sc + (16 * sb + kLoHalf[j] + 4) * 8), thi[j]);
      }
      for (int g = 0; g < 8; ++g) {
        __m256i v[8];
        for (int r = 0; r < 8; ++r) v[r] = typename Tr::Unpack(w[r][sb])(g);
        store_chunks(tl.codes + 256 * (8 * sb + g), v);
      }
    }
  }

  struct Acts {
    const ABlock* a;
  };
  static void prepare(const DotArgs& p, Scratch&, Acts* acts) {
    for (int64_t t = 0; t < p.n_tok; ++t) acts[t].a = reinterpret_cast<const ABlock*>(p.a + t * p.a_stride);
  }

  template <int NT>
  static void run(const Tile& tl, const Acts* acts, int64_t n, __m256* out) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < n / QK_K; ++sb) {
      __m256i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const uint8_t* cg = tl.codes + 256 * (8 * sb + g);
#pragma GCC unroll 8
        for (int c0 = 0; c0 < 8; c0 += kStep) {
          const __m256i scv = _mm256_load_si256(reinterpret_cast<const __m256i*>(tl.sc + (16 * sb + 2 * g + c0 / 4) * 8));
          for (int t = 0; t < NT; ++t) {
            const int8_t* q = acts[t].a[sb].qs + 32 * g;
            __m256i s16 = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int c = c0; c < c0 + kStep; ++c)
              s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(cg + 32 * c)),
                                                               bcast32(q + 4 * c)));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16, scv));
          }
        }
      }
      const __m256 dw = _mm256_load_ps(tl.d + 8 * sb);
      const __m256 dmw = _mm256_load_ps(tl.m + 8 * sb);
      for (int t = 0; t < NT; ++t) {
        const ABlock& a = acts[t].a[sb];
        __m256i x = _mm256_setzero_si256();  // sum_h x[h] * bsums[h]
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k)
          x = _mm256_add_epi32(x, _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tl.pairs + (8 * sb + k) * 8)),
                                                    bcast32(a.bsums + 2 * k)));
        const __m256 da = _mm256_set1_ps(a.d);
        const __m256 d = _mm256_mul_ps(dw, da);
        if constexpr (Tr::kHasMin) {
          const __m256 dmin = _mm256_mul_ps(dmw, da);
          acc[t] = _mm256_add_ps(acc[t], _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t])),
                                                       _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(x))));
        } else {
          const __m256i s = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(x, Tr::kOffsetShift));
          acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(d, _mm256_cvtepi32_ps(s)));
        }
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

// The tiled rectangle: per 8 rows, fill the tile, then run the tokens in groups of 4 (then 3/2/1).
template <typename TK>
void rect_tiled(const DotArgs& p) {
  using Block = typename TK::Block;
  static thread_local Scratch tile_buf, act_buf, act_list;
  Tile tl = Tile::alloc(tile_buf, p.n);
  auto* acts = act_list.get<typename TK::Acts>(static_cast<size_t>(p.n_tok));
  TK::prepare(p, act_buf, acts);
  for (int64_t r = p.r0; r < p.r1; r += 8) {
    const int nr = static_cast<int>(p.r1 - r < 8 ? p.r1 - r : 8);
    const Block* w[8];
    for (int i = 0; i < 8; ++i) w[i] = reinterpret_cast<const Block*>(p.w + (r + (i < nr ? i : nr - 1)) * p.w_stride);
    TK::fill(tl, w, p.n);
    for (int64_t t0 = 0; t0 < p.n_tok;) {
      __m256 out[4];
      const int64_t left = p.n_tok - t0;
      const int nt = left >= 4 ? 4 : static_cast<int>(left);
      switch (nt) {
        case 4: TK::template run<4>(tl, acts + t0, p.n, out); break;
        case 3: TK::template run<3>(tl, acts + t0, p.n, out); break;
        case 2: TK::template run<2>(tl, acts + t0, p.n, out); break;
        default: TK::template run<1>(tl, acts + t0, p.n, out); break;
      }
      for (int t = 0; t < nt; ++t) {
        float* y = p.y + (t0 + t) * p.ldy + r;
        if (nr == 8) {
          _mm256_storeu_ps(y, out[t]);
        } else {
          alignas(32) float tmp[8];
          _mm256_store_ps(tmp, out[t]);
          for (int i = 0; i < nr; ++i) y[i] = tmp[i];
        }
      }
      t0 += nt;
    }
  }
}

// Row kernels for small batches, tiles from kTileMinTokens tokens on.
template <typename K, typename TK>
void rect_auto(const DotArgs& p) {
  if (p.n_tok >= kTileMinTokens) rect_tiled<TK>(p);
  else rect<K>(p);
}
