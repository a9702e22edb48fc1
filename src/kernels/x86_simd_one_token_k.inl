// One token against Q4_K rows (every table) and Q6_K rows (AVX-512 tables) in the file's layout
// (included by x86_simd.inl inside its anonymous namespace, after OneToken4).
//
// KQK takes a row one superblock at a time, and per superblock decodes the 12 scale bytes with
// scalar code, reduces two sums across lanes and converts two fp16 scales: more work than the 128
// code bytes themselves (35 cycles per superblock on Zen 4, avx512vnni table, weights in L2: 16.7
// GB/s per thread; 25.4 in this form). Here one row is taken four superblocks per step (a
// 1024-column row of bloomz-560m is one step): the four superblocks'
// scales and mins are decoded together in one register (lane s = superblock s), their integer sums
// reduced together, and their float steps done in four lanes; only the row's running sum steps
// superblock by superblock. Per superblock the exact integer sums and the float operations are
// KQK's, s = s + (d_w * d_a * isum - dmin_w * d_a * imin) (Q6_K: s = s + d_w * d_a * isum), so the
// outputs are the same bits.
//
// Q4_K (144-byte superblocks: fp16 d and dmin, 12 bytes of 6-bit scales and mins, 128 code bytes):
// a 64-byte load of codes holds in its low nibbles sub-blocks (0, 2) and in its high ones (1, 3)
// (the next 64 bytes: (4, 6) and (5, 7)), so the token's activations are regrouped once per call
// to meet them, and each 32-element half takes its sub-block's scale from one vpshufb.
constexpr int64_t kOneTokenKStep = 4;  // superblocks per step

#if BLOOMZ_X86_AVX512
class OneTokenQ4K {
 public:
  using Block = block_q4_K;
  static constexpr int64_t kStep = kOneTokenKStep;

  // One row of nsb superblocks (a multiple of kStep); pf: bytes to prefetch at the rate the row is read.
  float row(const block_q4_K* w, int64_t nsb, const char* pf) const {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30);
    float acc = 0.0f;
    for (int64_t sb = 0; sb < nsb; sb += kStep) {
      for (int64_t o = 0; o < kStep * static_cast<int64_t>(sizeof(block_q4_K)); o += 64) _mm_prefetch(pf + o, _MM_HINT_T1);
      pf += kStep * static_cast<int64_t>(sizeof(block_q4_K));
      const block_q4_K* b4 = w + sb;
      // lane s: the first 16 bytes of superblock s, dwords [d dmin | D0 | D1 | D2] (D = scale bytes)
      __m512i h = _mm512_castsi128_si512(load128(b4));
      h = _mm512_inserti32x4(h, load128(b4 + 1), 1);
      h = _mm512_inserti32x4(h, load128(b4 + 2), 2);
      h = _mm512_inserti32x4(h, load128(b4 + 3), 3);
      // get_scale_min_k4, four bytes at a time: sc0-3 = D0 & 63, m0-3 = D1 & 63,
      // sc4-7 = (D2 & 15) | (D0 >> 6) << 4, m4-7 = (D2 >> 4 & 15) | (D1 >> 6) << 4
      const __m512i lo = _mm512_and_si512(h, m6);                                  // dwords 1, 2: sc0-3, m0-3
      const __m512i d2 = _mm512_srlv_epi32(_mm512_shuffle_epi32(h, _MM_PERM_DDDD), d2_shift_);
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(d2, m4), _mm512_srli_epi32(h, 2), m30, 0xF8);  // sc4-7, m4-7
      const __m512i scales = _mm512_unpacklo_epi32(lo, hi);  // bytes 8-15 of lane s: sc0-7
      const __m512i mins = _mm512_unpackhi_epi32(lo, hi);    // bytes 0-7 of lane s: m0-7
      const __m512i* a = a_ + 4 * sb;
      const __m512i part[kStep] = {superblock<0>(b4[0], scales, a), superblock<1>(b4[1], scales, a + 4),
                                   superblock<2>(b4[2], scales, a + 8), superblock<3>(b4[3], scales, a + 12)};
      // lane 4k + s: the k-th partial sum of superblock s, for isum and for imin (m_g against B_g)
      const __m512i isum = transpose_add4(part);
      const __m512i m16 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(_mm512_permutexvar_epi64(compact_, mins)));
      const __m512i imin = _mm512_madd_epi16(_mm512_permutexvar_epi32(transpose_, m16), b_[sb / kStep]);
      // sum over k: [isum of s = 0..3 | imin of s = 0..3]
      const __m512i u = _mm512_add_epi32(_mm512_shuffle_i32x4(isum, imin, 0x44), _mm512_shuffle_i32x4(isum, imin, 0xEE));
      const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, 0xB1));
      const __m256 sums = _mm256_cvtepi32_ps(_mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, 0x08)));
      // [d_w of s = 0..3 | dmin_w of s = 0..3] * d_a, then times the sums
      const __m256 dw = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(dmin_words_, h)));
      const __m256 prod = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_load_ps(d_ + 2 * sb)), sums);
      alignas(16) float step[kStep];
      _mm_store_ps(step, _mm_sub_ps(_mm256_castps256_ps128(prod), _mm256_extractf128_ps(prod, 1)));
      for (int s = 0; s < kStep; ++s) acc += step[s];
    }
    return acc;
  }

  // Regrouped activations, the B_g = bsums[2g] + bsums[2g + 1] in the order the mins meet them, d_a.
  void prepare(const block_q8_K* a, int64_t nsb) {
    auto* ag = abuf_.get<std::byte>(static_cast<size_t>(256 * nsb));
    auto* bg = bbuf_.get<int16_t>(static_cast<size_t>(8 * nsb));
    auto* dg = dbuf_.get<float>(static_cast<size_t>(2 * nsb));
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const int8_t* q = a[sb].qs;
      std::byte* dst = ag + 256 * sb;
      // [sub-blocks 0 | 2], [1 | 3], [4 | 6], [5 | 7]
      for (int j = 0; j < 4; ++j) {
        const int first = 4 * (j / 2) + j % 2;
        std::memcpy(dst + 64 * j, q + 32 * first, 32);
        std::memcpy(dst + 64 * j + 32, q + 32 * (first + 2), 32);
      }
      // per step, word 2 (4k + s) + e: B_g of superblock s, sub-block g = 2k + e
      const int64_t s = sb % kStep;
      int16_t* b = bg + 8 * (sb - s);
      for (int g = 0; g < 8; ++g)
        b[2 * (4 * (g / 2) + s) + g % 2] = static_cast<int16_t>(a[sb].bsums[2 * g] + a[sb].bsums[2 * g + 1]);
      float* d = dg + 2 * (sb - s);
      d[s] = d[kStep + s] = a[sb].d;
    }
    a_ = reinterpret_cast<const __m512i*>(ag);
    b_ = reinterpret_cast<const __m512i*>(bg);
    d_ = dg;
  }

 private:
  // isum of superblock s (16 partial sums): codes . activations, each sub-block's half times its scale
  template <int s>
  __m512i superblock(const block_q4_K& b, __m512i scales, const __m512i* a) const {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i z0 = _mm512_loadu_si512(b.qs), z1 = _mm512_loadu_si512(b.qs + 64);
    const __m512i sc = _mm512_shuffle_i32x4(scales, scales, 0x55 * s);  // lane s to every lane
    __m512i i = V16::dpwssd(_mm512_setzero_si512(), _mm512_maddubs_epi16(_mm512_and_si512(z0, m4), a[0]), _mm512_shuffle_epi8(sc, pick_[0]));
    i = V16::dpwssd(i, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(z0, 4), m4), a[1]), _mm512_shuffle_epi8(sc, pick_[1]));
    i = V16::dpwssd(i, _mm512_maddubs_epi16(_mm512_and_si512(z1, m4), a[2]), _mm512_shuffle_epi8(sc, pick_[2]));
    return V16::dpwssd(i, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(z1, 4), m4), a[3]), _mm512_shuffle_epi8(sc, pick_[3]));
  }

  static __m128i load128(const block_q4_K* b) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)); }

  static __m512i pick(int g0, int g1) {  // int16 lanes 0-15: byte 8 + g0 of the lane, lanes 16-31: 8 + g1
    alignas(64) int8_t v[64];
    for (int i = 0; i < 64; ++i) v[i] = static_cast<int8_t>(i % 2 ? -128 : 8 + (i < 32 ? g0 : g1));
    return _mm512_load_si512(v);
  }

  const __m512i pick_[4] = {pick(0, 2), pick(1, 3), pick(4, 6), pick(5, 7)};
  const __m512i d2_shift_ = _mm512_setr_epi32(0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0);
  const __m512i compact_ = _mm512_setr_epi64(0, 2, 4, 6, 0, 2, 4, 6);
  const __m512i transpose_ = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i dmin_words_ = _mm512_setr_epi32(0x00080000, 0x00180010, 0x00090001, 0x00190011, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  Scratch abuf_, bbuf_, dbuf_;
  const __m512i* a_ = nullptr;  // per superblock 4 x 64 regrouped bytes
  const __m512i* b_ = nullptr;  // per step 32 int16
  const float* d_ = nullptr;    // per step [d_a of s = 0..3] twice
};

// One token against Q6_K rows (210-byte superblocks: 128 bytes of low nibbles ql, 64 of high bit
// pairs qh, 16 int8 scales, fp16 d): a 64-byte ql load holds elements 128n..128n+63 in its low
// nibbles and 128n+64.. in its high ones, their high bits are qh (32 bytes, both halves) shifted
// per 256-bit half, so the activations are read as they are. Codes are u = q + 32; the offset,
// -32 * sum_h sc_h * bsum_h, starts each superblock's sum (sc_h * 32 and -bsum_h fit int16).
class OneTokenQ6K {
 public:
  using Block = block_q6_K;
  static constexpr int64_t kStep = kOneTokenKStep;

  float row(const block_q6_K* w, int64_t nsb, const char* pf) const {
    float acc = 0.0f;
    for (int64_t sb = 0; sb < nsb; sb += kStep) {
      for (int64_t o = 0; o < kStep * static_cast<int64_t>(sizeof(block_q6_K)); o += 64) _mm_prefetch(pf + o, _MM_HINT_T1);
      pf += kStep * static_cast<int64_t>(sizeof(block_q6_K));
      const block_q6_K* b4 = w + sb;
      const __m512i part[kStep] = {superblock(b4[0], sb), superblock(b4[1], sb + 1), superblock(b4[2], sb + 2),
                                   superblock(b4[3], sb + 3)};
      __m512i v = transpose_add4(part);  // lane 4k + s: the k-th partial sum of superblock s
      v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0x4E));
      v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0xB1));
      const __m128 sums = _mm_cvtepi32_ps(_mm512_castsi512_si128(v));
      const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(b4[0].d), static_cast<short>(b4[1].d),
                                                    static_cast<short>(b4[2].d), static_cast<short>(b4[3].d), 0, 0, 0, 0));
      alignas(16) float step[kStep];
      _mm_store_ps(step, _mm_mul_ps(_mm_mul_ps(dw, _mm_load_ps(d_ + sb)), sums));
      for (int s = 0; s < kStep; ++s) acc += step[s];
    }
    return acc;
  }

  // -bsum_h per superblock, and d_a.
  void prepare(const block_q8_K* a, int64_t nsb) {
    auto* nb = bbuf_.get<int16_t>(static_cast<size_t>(16 * nsb));
    auto* d = dbuf_.get<float>(static_cast<size_t>(nsb));
    for (int64_t sb = 0; sb < nsb; ++sb) {
      for (int h = 0; h < 16; ++h) nb[16 * sb + h] = static_cast<int16_t>(-a[sb].bsums[h]);
      d[sb] = a[sb].d;
    }
    a_ = a;
    nbsum_ = reinterpret_cast<const __m256i*>(nb);
    d_ = d;
  }

 private:
  // isum of superblock sb (16 partial sums), the offset included
  __m512i superblock(const block_q6_K& b, int64_t sb) const {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    __m512i i = _mm512_zextsi256_si512(_mm256_madd_epi16(_mm256_slli_epi16(sc16, 5), nbsum_[sb]));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    const int8_t* q = a_[sb].qs;
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m512i l = _mm512_loadu_si512(b.ql + 64 * n);
      const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * n)));
      // elements 128n..+63: low nibbles, qh bits 0-1 (first half) and 2-3 (second) to bits 4-5
      const __m512i u0 = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_sllv_epi64(h, shift_lo_), m30, 0xF8);
      // elements 128n+64..+127: high nibbles, qh bits 4-5 and 6-7
      const __m512i u1 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_srlv_epi64(h, shift_hi_), m30, 0xF8);
      i = V16::dpwssd(i, _mm512_maddubs_epi16(u0, _mm512_loadu_si512(q + 128 * n)), _mm512_permutexvar_epi16(scale_index_[2 * n], sc));
      i = V16::dpwssd(i, _mm512_maddubs_epi16(u1, _mm512_loadu_si512(q + 128 * n + 64)), _mm512_permutexvar_epi16(scale_index_[2 * n + 1], sc));
    }
    return i;
  }

  const __m512i shift_lo_ = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
  const __m512i shift_hi_ = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
  const __m512i scale_index_[4] = {pair_scale_index(0), pair_scale_index(1), pair_scale_index(2), pair_scale_index(3)};
  Scratch bbuf_, dbuf_;
  const block_q8_K* a_ = nullptr;
  const __m256i* nbsum_ = nullptr;  // per superblock 16 int16
  const float* d_ = nullptr;        // per superblock
};

#else
// The AVX2 table's form: 256-bit registers hold two superblocks' headers (lane = superblock), each
// 32-byte load of codes is one sub-block in its low nibbles and the next in its high ones, so the
// activations are read as they are; vpmaddubsw, then vpmaddwd by the sub-block's scale (one
// vpshufb of the superblock's decoded scales), per 32 codes. Zen 4 running this table (`--isa
// avx2`): kernel-bench, one thread, L2-resident, 13.8 -> 17.0 GB/s against KQK; 560m Q4_K_M
// `--no-repack` decode 1.04x (docs/performance.md § 3.11).
class OneTokenQ4K {
 public:
  using Block = block_q4_K;
  static constexpr int64_t kStep = kOneTokenKStep;

  float row(const block_q4_K* w, int64_t nsb, const char* pf) const {
    const __m256i m6 = _mm256_set1_epi8(0x3F), m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i d2_shift = _mm256_setr_epi32(0, 0, 4, 0, 0, 0, 4, 0);
    float acc = 0.0f;
    for (int64_t sb = 0; sb < nsb; sb += kStep) {
      for (int64_t o = 0; o < kStep * static_cast<int64_t>(sizeof(block_q4_K)); o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
      pf += kStep * static_cast<int64_t>(sizeof(block_q4_K));
      const block_q4_K* b4 = w + sb;
      // lanes: superblocks (0, 1) and (2, 3); dwords [d dmin | D0 | D1 | D2], decoded as in the AVX-512 form
      __m256i scales[2], mins[2], hdr[2];
      for (int i = 0; i < 2; ++i) {
        const __m256i h = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b4 + 2 * i + 1), reinterpret_cast<const __m128i*>(b4 + 2 * i));
        const __m256i lo = _mm256_and_si256(h, m6);
        const __m256i d2 = _mm256_srlv_epi32(_mm256_shuffle_epi32(h, 0xFF), d2_shift);
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(d2, m4), _mm256_and_si256(_mm256_srli_epi32(h, 2), m30));
        scales[i] = _mm256_unpacklo_epi32(lo, hi);  // bytes 8-15 of each lane: sc0-7
        mins[i] = _mm256_unpackhi_epi32(lo, hi);    // bytes 0-7: m0-7
        hdr[i] = h;
      }
      __m256i part[kStep];
      for (int s = 0; s < kStep; ++s) {
        // its lane to both (the immediate spelled out: s is not a constant without unrolling)
        const __m256i sc = s % 2 ? _mm256_permute4x64_epi64(scales[s / 2], 0xEE) : _mm256_permute4x64_epi64(scales[s / 2], 0x44);
        const uint8_t* qs = b4[s].qs;
        const int8_t* q = a_[sb + s].qs;
        __m256i i = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j + 1 (high)
          const __m256i v = loadu(qs + 32 * j);
          const __m256i pl = _mm256_maddubs_epi16(_mm256_and_si256(v, m4), loadu(q + 64 * j));
          const __m256i ph = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), loadu(q + 64 * j + 32));
          i = _mm256_add_epi32(i, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, loadu(kPicks.v[2 * j]))));
          i = _mm256_add_epi32(i, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, loadu(kPicks.v[2 * j + 1]))));
        }
        part[s] = i;
      }
      // per 128-bit lane k: [part k of superblocks 0..3], then the two lanes added
      const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(part[0], part[1]), _mm256_unpackhi_epi32(part[0], part[1]));
      const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(part[2], part[3]), _mm256_unpackhi_epi32(part[2], part[3]));
      const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
      const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
      // imin: mins of superblocks (0, 2) and (1, 3) as words against B in that order
      const __m256i m8 = _mm256_unpacklo_epi64(mins[0], mins[1]);  // lane 0: m of 0, 2; lane 1: of 1, 3
      const __m256i ma = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(m8)), b_[2 * (sb / kStep)]);
      const __m256i mb = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(m8, 1)), b_[2 * (sb / kStep) + 1]);
      const __m256i h1 = _mm256_hadd_epi32(ma, mb);  // lane 0: 0 0 1 1, lane 1: 2 2 3 3 (pairs)
      const __m256i h2 = _mm256_hadd_epi32(h1, h1);  // lane 0: 0 1 0 1, lane 1: 2 3 2 3
      const __m128i imin = _mm_unpacklo_epi64(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
      const __m256 sums = _mm256_cvtepi32_ps(_mm256_setr_m128i(isum, imin));
      // dword 0 of each header (d, dmin): superblocks 0, 2, 1, 3 -> [d0 d1 d2 d3 | dmin0 .. dmin3]
      const __m256i dd = _mm256_unpacklo_epi32(hdr[0], hdr[1]);
      const __m128i dm = _mm_unpacklo_epi64(_mm256_castsi256_si128(dd), _mm256_extracti128_si256(dd, 1));
      const __m256 dw = _mm256_cvtph_ps(_mm_shuffle_epi8(dm, _mm_setr_epi8(0, 1, 8, 9, 4, 5, 12, 13, 2, 3, 10, 11, 6, 7, 14, 15)));
      const __m256 prod = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_load_ps(d_ + 2 * sb)), sums);
      alignas(16) float step[kStep];
      _mm_store_ps(step, _mm_sub_ps(_mm256_castps256_ps128(prod), _mm256_extractf128_ps(prod, 1)));
      for (int s = 0; s < kStep; ++s) acc += step[s];
    }
    return acc;
  }

  // Per step the B_g = bsums[2g] + bsums[2g + 1] of superblocks (0, 2) then (1, 3), and d_a.
  void prepare(const block_q8_K* a, int64_t nsb) {
    auto* bg = bbuf_.get<int16_t>(static_cast<size_t>(8 * nsb));
    auto* dg = dbuf_.get<float>(static_cast<size_t>(2 * nsb));
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const int64_t s = sb % kStep;
      int16_t* b = bg + 8 * (sb - s) + 16 * (s % 2) + 8 * (s / 2);
      for (int g = 0; g < 8; ++g) b[g] = static_cast<int16_t>(a[sb].bsums[2 * g] + a[sb].bsums[2 * g + 1]);
      float* d = dg + 2 * (sb - s);
      d[s] = d[kStep + s] = a[sb].d;
    }
    a_ = a;
    b_ = reinterpret_cast<const __m256i*>(bg);
    d_ = dg;
  }

 private:
  // vpshufb controls: every int16 lane = byte 8 + g (sub-block g's scale), zero-extended
  struct Picks {
    alignas(32) int8_t v[8][32];
    Picks() {
      for (int g = 0; g < 8; ++g)
        for (int i = 0; i < 32; ++i) v[g][i] = static_cast<int8_t>(i % 2 ? -128 : 8 + g);
    }
  };
  static inline const Picks kPicks{};

  Scratch bbuf_, dbuf_;
  const block_q8_K* a_ = nullptr;
  const __m256i* b_ = nullptr;  // per step 2 x 16 int16
  const float* d_ = nullptr;    // per step [d_a of s = 0..3] twice
};
#endif

// Prefetch distance of the one-token K-quant rows ahead of the step being read (into L2 on the
// AVX-512 tables; the AVX2 table prefetches into L1, as its other one-token dots do). Zen 4,
// avx512vnni table, 560m Q4_0 file (its Q6_K head), tokens alternating between two distances in
// one bench run, against 4096: 8192 0.93x the time per token where the read probe gave 58-60
// GB/s, 0.98-0.99x at 32 GB/s; 2048 1.17-1.20x; 12288-32768 0.95-0.99x; prefetcht0 at 4096 1.00x,
// at 8192 1.09x.
constexpr int64_t kOneTokenKPrefetch = 8192;

// Token t0 of the call against rows [r0, r1) of K::Block (n a multiple of kOneTokenKStep superblocks).
template <typename K>
void rows_one_token_k(const DotArgs& p, int64_t t0) {
  const int64_t nsb = p.n / QK_K;
  const auto* a = reinterpret_cast<const block_q8_K*>(p.a + t0 * p.a_stride);
  float* y = p.y + t0 * p.ldy;
  const K& k = token_kernel_for<K>(p, a, nsb);
  for (int64_t r = p.r0; r < p.r1; ++r) {
    const std::byte* row = p.w + r * p.w_stride;
    y[r] = k.row(reinterpret_cast<const typename K::Block*>(row), nsb, reinterpret_cast<const char*>(row) + kOneTokenKPrefetch);
  }
}

// The one-token kernel of a file-layout row kernel K, if it has one (void otherwise).
template <typename K>
struct OneTokenKOf {
  using type = void;
};
template <>
struct OneTokenKOf<KQK<Q4KTraits, kAvx512>> {
  using type = OneTokenQ4K;
};
#if BLOOMZ_X86_AVX512
template <>
struct OneTokenKOf<KQK<Q6KTraits, true>> {
  using type = OneTokenQ6K;
};
#endif
