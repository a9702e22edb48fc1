// Tiled dots for prompt batches (included by x86_simd.inl, inside its anonymous namespace).
//
// With many tokens per call, R weight rows (R = 8 in a 256-bit register, 16 in a 512-bit one; see
// V8/V16) are first unpacked into a tile of 8-bit codes laid out for the SIMD lanes: for every
// 32-element group, chunk j (j = 0..7) is one 4R-byte vector whose 32-bit lane r holds elements
// 4j..4j+3 of row r. One broadcast of 4 activation bytes against a
// chunk then gives all R rows' partial sums in their own lanes: the per-block integer sums of R
// rows come out of maddubs/madd (or vpdpbusd) with no horizontal adds, and the unpacking (nibbles, high bits,
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

// A tile of R rows (pointers into per-thread scratch). Per 32-element group: 8 chunks of 4R bytes;
// per block or superblock: R floats; per superblock: 16 x R and 8 x R 32-bit words.
struct Tile {
  int rows;
  uint8_t* codes;   // groups x 8 chunks x 4R bytes (unsigned codes; Q8_0: |w|, or w ^ 0x80 with VNNI)
  int8_t* sgn;      // Q8_0 without VNNI: the signed weights, same layout
  float* d;         // per block (32-element types) or superblock (K): R rows
  float* m;         // Q4_1/Q5_1: min per block; K-quants with mins: dmin per superblock
  uint32_t* sc;     // K: per superblock, 16 half-groups x R rows: the scale in both 16-bit halves
                    // (VNNI tables: the scale as an int32)
  uint32_t* pairs;  // K: per superblock, 8 x R rows, (x[2k], x[2k+1]) as two int16: x = mins or scales

  static Tile alloc(Scratch& s, int64_t n, int rows) {
    const int64_t groups = n / 32, nsb = n / QK_K;
    const size_t codes = static_cast<size_t>(groups) * 32 * static_cast<size_t>(rows);
    const size_t floats = static_cast<size_t>(groups) * static_cast<size_t>(rows);
    const size_t words = static_cast<size_t>(nsb) * (16 + 8) * static_cast<size_t>(rows);
    auto* base = s.get<uint8_t>(2 * codes + 2 * floats * 4 + words * 4);
    Tile t{};
    t.rows = rows;
    t.codes = base;
    t.sgn = reinterpret_cast<int8_t*>(base + codes);
    t.d = reinterpret_cast<float*>(base + 2 * codes);
    t.m = t.d + floats;
    t.sc = reinterpret_cast<uint32_t*>(t.m + floats);
    t.pairs = t.sc + static_cast<size_t>(nsb) * 16 * static_cast<size_t>(rows);
    return t;
  }
};

// The 8 chunks of one group for rows 8h..8h+7 of an R-row tile (v[r]: the group's 32 codes of row
// 8h + r): chunk j at dst + 4R * j, this half's 32 bytes at offset 32h.
inline void store_chunks(uint8_t* dst, const __m256i v[8], int rows, int h) {
  __m256i c[8];
  transpose8_epi32(v, c);
  for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 4 * rows * j + 32 * h), c[j]);
}

// ---- 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)

template <typename Wt>
struct Tile32 {
  using Block = typename Wt::Block;
  using ABlock = typename Wt::ABlock;
  // Q8_0 with VNNI: codes w ^ 0x80 = w + 128 (unsigned), the 128 * sum(q) taken off per block like
  // Q4_0's offset; without VNNI the sign trick (|w| against q with w's sign).
  static constexpr bool kFlipSign = Wt::kSignedCodes && kVnni;
  static constexpr int kOffset = kFlipSign ? 128 : Wt::kOffset;
  // Without VNNI, chunks are summed in int16 before widening: 4-bit codes x |q8| <= 127:
  // 8 * 2 * 15 * 127 < 2^15; 5-bit: 4 * 2 * 31 * 127 < 2^15; Q8_0 (sign trick, 2 * 128 * 127 per
  // pair): one.
  static constexpr int kRun = Wt::kSignedCodes ? 1 : (Wt::kOffset == 16 || std::is_same_v<Block, block_q5_1> ? 4 : 8);

  // w: tl.rows row pointers.
  static void fill(Tile& tl, const Block* const* w, int64_t n) {
    const int R = tl.rows;
    for (int64_t b = 0; b < n / 32; ++b) {
      for (int h = 0; h < R / 8; ++h) {
        const Block* const* wh = w + 8 * h;
        __m256i v[8];
        for (int r = 0; r < 8; ++r) v[r] = Wt::codes(wh[r][b]);
        if constexpr (kFlipSign) {
          for (int r = 0; r < 8; ++r) v[r] = _mm256_xor_si256(v[r], _mm256_set1_epi8(static_cast<char>(0x80)));
        } else if constexpr (Wt::kSignedCodes) {
          store_chunks(reinterpret_cast<uint8_t*>(tl.sgn) + 32 * R * b, v, R, h);
          for (int r = 0; r < 8; ++r) v[r] = _mm256_abs_epi8(v[r]);
        }
        store_chunks(tl.codes + 32 * R * b, v, R, h);
      }
      for (int r = 0; r < R; ++r) {
        tl.d[R * b + r] = h2f(w[r][b].d);
        if constexpr (Wt::kMin) tl.m[R * b + r] = h2f(w[r][b].m);
      }
    }
  }

  // Per token and block: d_a, s_a (Q8_1) and offset * sum(q) (Q4_0, Q5_0; Q8_0 with VNNI), as in K32::Ctx.
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
        if constexpr (kOffset != 0) off[b] = kOffset * sum_q8(a[b].qs);
      }
      acts[t] = Acts{a, d, s, off};
    }
  }

  template <typename V, int NT>
  static void run(const Tile& tl, const Acts* acts, int64_t n, typename V::F* out) {
    using I = typename V::I;
    using F = typename V::F;
    constexpr int R = V::kRows;
    F acc[NT], macc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = macc[t] = V::zerof();
    const I ones = V::set1(0x00010001);
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* cg = tl.codes + 32 * R * b;
      const int8_t* sg = tl.sgn + 32 * R * b;
      const F dw = V::loadf(tl.d + R * b);
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = acts[t].a[b].qs;
        I isum = V::zero();
        if constexpr (kVnni) {
#pragma GCC unroll 8
          for (int c = 0; c < 8; ++c) isum = V::dpbusd(isum, V::load(cg + 4 * R * c), V::bcast32(q + 4 * c));
        } else {
#pragma GCC unroll 8
          for (int c0 = 0; c0 < 8; c0 += kRun) {
            I s16 = V::zero();
#pragma GCC unroll 8
            for (int c = c0; c < c0 + kRun; ++c) {
              I x = V::bcast32(q + 4 * c);
              if constexpr (Wt::kSignedCodes) x = V::apply_sign(x, V::load(sg + 4 * R * c));
              s16 = V::add16(s16, V::maddubs(V::load(cg + 4 * R * c), x));
            }
            isum = V::add32(isum, V::madd(s16, ones));
          }
        }
        if constexpr (kOffset != 0) isum = V::sub32(isum, V::set1(acts[t].off[b]));
        acc[t] = V::fmadd(V::mul(dw, V::bcastf(acts[t].d + b)), V::cvt(isum), acc[t]);
        if constexpr (Wt::kMin) macc[t] = V::fmadd(V::loadf(tl.m + R * b), V::bcastf(acts[t].s + b), macc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = Wt::kMin ? V::add(acc[t], macc[t]) : acc[t];
  }
};

// ---- K-quants (Q2_K .. Q6_K) against Q8_K activations

template <typename Tr>
struct TileK {
  using Block = typename Tr::Block;
  using ABlock = block_q8_K;
  static constexpr bool kQ4K = std::is_same_v<Block, block_q4_K>;
  static constexpr bool kQ5K = std::is_same_v<Block, block_q5_K>;
  // Chunks per int16 run (without VNNI): codes <= 15 (Q4_K) or <= 7 (Q2_K, Q3_K): 8; Q5_K (<= 31):
  // 4; Q6_K (<= 63): 2 (2 * 2 * 63 * 127 < 2^15). Scales change every 4 chunks (16 elements)
  // except Q4_K/Q5_K (8). With VNNI a step's chunks are summed in int32 and multiplied by the scale.
  static constexpr int kRun = std::is_same_v<Block, block_q6_K> ? 2 : (kQ5K ? 4 : 8);
  static constexpr int kScaleChunks = (kQ4K || kQ5K) ? 8 : 4;
  static constexpr int kStep = kVnni ? kScaleChunks : (kRun < kScaleChunks ? kRun : kScaleChunks);

  static void fill(Tile& tl, const Block* const* w, int64_t n) {
    const int R = tl.rows;
    for (int64_t sb = 0; sb < n / QK_K; ++sb) {
      for (int h = 0; h < R / 8; ++h) {
        const Block* const* wh = w + 8 * h;
        __m256i sc16[8], x16[8];
        for (int r = 0; r < 8; ++r) {
          __m256i mins16 = _mm256_setzero_si256();
          sc16[r] = Tr::scales(wh[r][sb], mins16);
          x16[r] = Tr::kHasMin ? mins16 : sc16[r];
          tl.d[R * sb + 8 * h + r] = Tr::d(wh[r][sb]);
          tl.m[R * sb + 8 * h + r] = Tr::dmin(wh[r][sb]);
        }
        // pairs: word k of x16 is (x[2k], x[2k+1])
        __m256i pw[8];
        transpose8_epi32(x16, pw);
        for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(tl.pairs + (8 * sb + k) * R + 8 * h), pw[k]);
        // scales of the 16 half-groups, duplicated into both halves of a 32-bit word
        __m256i lo[8], hi[8], tlo[8], thi[8];
        for (int r = 0; r < 8; ++r) lo[r] = _mm256_unpacklo_epi16(sc16[r], sc16[r]), hi[r] = _mm256_unpackhi_epi16(sc16[r], sc16[r]);
        transpose8_epi32(lo, tlo);  // half-groups 0 1 2 3 8 9 10 11
        transpose8_epi32(hi, thi);  // half-groups 4 5 6 7 12 13 14 15
        static constexpr int kLoHalf[8] = {0, 1, 2, 3, 8, 9, 10, 11};
        for (int j = 0; j < 8; ++j) {
          if constexpr (kVnni) tlo[j] = pair_to_i32(tlo[j]), thi[j] = pair_to_i32(thi[j]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(tl.sc + (16 * sb + kLoHalf[j]) * R + 8 * h), tlo[j]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(tl.sc + (16 * sb + kLoHalf[j] + 4) * R + 8 * h), thi[j]);
        }
        for (int g = 0; g < 8; ++g) {
          __m256i v[8];
          for (int r = 0; r < 8; ++r) v[r] = typename Tr::Unpack(wh[r][sb])(g);
          store_chunks(tl.codes + 32 * R * (8 * sb + g), v, R, h);
        }
      }
    }
  }

  struct Acts {
    const ABlock* a;
  };
  static void prepare(const DotArgs& p, Scratch&, Acts* acts) {
    for (int64_t t = 0; t < p.n_tok; ++t) acts[t].a = reinterpret_cast<const ABlock*>(p.a + t * p.a_stride);
  }

  template <typename V, int NT>
  static void run(const Tile& tl, const Acts* acts, int64_t n, typename V::F* out) {
    using I = typename V::I;
    using F = typename V::F;
    constexpr int R = V::kRows;
    F acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = V::zerof();
    for (int64_t sb = 0; sb < n / QK_K; ++sb) {
      I isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = V::zero();
      for (int g = 0; g < 8; ++g) {
        const uint8_t* cg = tl.codes + 32 * R * (8 * sb + g);
#pragma GCC unroll 8
        for (int c0 = 0; c0 < 8; c0 += kStep) {
          const I scv = V::load(tl.sc + (16 * sb + 2 * g + c0 / 4) * R);
          for (int t = 0; t < NT; ++t) {
            const int8_t* q = acts[t].a[sb].qs + 32 * g;
            if constexpr (kVnni) {
              I s32 = V::zero();
#pragma GCC unroll 8
              for (int c = c0; c < c0 + kStep; ++c) s32 = V::dpbusd(s32, V::load(cg + 4 * R * c), V::bcast32(q + 4 * c));
              isum[t] = V::add32(isum[t], V::mullo32(s32, scv));
            } else {
              I s16 = V::zero();
#pragma GCC unroll 8
              for (int c = c0; c < c0 + kStep; ++c) s16 = V::add16(s16, V::maddubs(V::load(cg + 4 * R * c), V::bcast32(q + 4 * c)));
              isum[t] = V::add32(isum[t], V::madd(s16, scv));
            }
          }
        }
      }
      const F dw = V::loadf(tl.d + R * sb);
      const F dmw = V::loadf(tl.m + R * sb);
      for (int t = 0; t < NT; ++t) {
        const ABlock& a = acts[t].a[sb];
        I x = V::zero();  // sum_h x[h] * bsums[h]
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) x = V::dpwssd(x, V::load(tl.pairs + (8 * sb + k) * R), V::bcast32(a.bsums + 2 * k));
        const F da = V::setf(a.d);
        const F d = V::mul(dw, da);
        if constexpr (Tr::kHasMin) {
          const F dmin = V::mul(dmw, da);
          acc[t] = V::add(acc[t], V::sub(V::mul(d, V::cvt(isum[t])), V::mul(dmin, V::cvt(x))));
        } else {
          const I s = V::sub32(isum[t], V::slli32(x, Tr::kOffsetShift));
          acc[t] = V::add(acc[t], V::mul(d, V::cvt(s)));
        }
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
  }
};

// The tiled rectangle: per V::kRows rows, fill the tile, then run the tokens in groups of 4 (then
// 3/2/1).
template <typename TK, typename V>
void rect_tiled(const DotArgs& p) {
  using Block = typename TK::Block;
  constexpr int R = V::kRows;
  static thread_local Scratch tile_buf, act_buf, act_list;
  Tile tl = Tile::alloc(tile_buf, p.n, R);
  auto* acts = act_list.get<typename TK::Acts>(static_cast<size_t>(p.n_tok));
  TK::prepare(p, act_buf, acts);
  for (int64_t r = p.r0; r < p.r1; r += R) {
    const int nr = static_cast<int>(p.r1 - r < R ? p.r1 - r : R);
    const Block* w[R];
    for (int i = 0; i < R; ++i) w[i] = reinterpret_cast<const Block*>(p.w + (r + (i < nr ? i : nr - 1)) * p.w_stride);
    TK::fill(tl, w, p.n);
    for (int64_t t0 = 0; t0 < p.n_tok;) {
      typename V::F out[4];
      const int64_t left = p.n_tok - t0;
      const int nt = left >= 4 ? 4 : static_cast<int>(left);
      switch (nt) {
        case 4: TK::template run<V, 4>(tl, acts + t0, p.n, out); break;
        case 3: TK::template run<V, 3>(tl, acts + t0, p.n, out); break;
        case 2: TK::template run<V, 2>(tl, acts + t0, p.n, out); break;
        default: TK::template run<V, 1>(tl, acts + t0, p.n, out); break;
      }
      for (int t = 0; t < nt; ++t) V::store(p.y + (t0 + t) * p.ldy + r, out[t], nr);
      t0 += nt;
    }
  }
}

// Row kernels for small batches, tiles from kTileMinTokens tokens on.
template <typename K, typename TK>
void rect_auto(const DotArgs& p) {
  if (p.n_tok >= kTileMinTokens) rect_tiled<TK, VTile>(p);
  else rect<K>(p);
}
