// The per-ISA helpers of the x86 kernel body (included by x86_simd.inl inside its anonymous
// namespace). Everything that differs between the AVX2, AVX-512 and AVX-512 VNNI tables is here;
// the kernels are written once against these helpers.

constexpr bool kAvx512 = BLOOMZ_X86_AVX512 != 0;
constexpr bool kVnni = BLOOMZ_X86_VNNI != 0;

// acc + (per 32-bit lane) the sum of the four products u[4i+k] * s[4i+k], u unsigned and s signed
// bytes. Without VNNI: maddubs + madd, exact as long as no pair of products leaves int16, which every
// caller's code range guarantees; vpdpbusd is exact for any bytes.
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if BLOOMZ_X86_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// acc + madd(a, b): int16 pairs multiplied and summed into int32 lanes (vpdpwssd with VNNI).
inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
#if BLOOMZ_X86_VNNI
  return _mm256_dpwssd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// A 32-bit word holding an int16 scale in both halves, as the sign-extended int32 scale.
inline __m256i pair_to_i32(__m256i v) { return _mm256_srai_epi32(v, 16); }

// Lane-per-row vectors of the tiled kernels: V8 holds 8 weight rows in a 256-bit register, V16
// (AVX-512 tables) 16 rows in a 512-bit one. Per lane the operations are the same, so a row's
// output has the same bits whichever width computed it.
struct V8 {
  static constexpr int kRows = 8;
  using I = __m256i;
  using F = __m256;
  static I load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  static I bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I zero() { return _mm256_setzero_si256(); }
  static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub32(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  static I madd(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I mullo32(I a, I b) { return _mm256_mullo_epi32(a, b); }
  static I slli32(I a, int s) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(s)); }
  static I dpbusd(I acc, I u, I s) { return ::bloomz::kernels::BLOOMZ_X86_NS::dpbusd(acc, u, s); }
  static I dpwssd(I acc, I a, I b) { return ::bloomz::kernels::BLOOMZ_X86_NS::dpwssd(acc, a, b); }
  // x with the sign of s applied (callers multiply by |s|, so s = 0 may give anything)
  static I apply_sign(I x, I s) { return _mm256_sign_epi8(x, s); }
  static F loadf(const float* p) { return _mm256_load_ps(p); }
  static F bcastf(const float* p) { return _mm256_broadcast_ss(p); }
  static F setf(float v) { return _mm256_set1_ps(v); }
  static F zerof() { return _mm256_setzero_ps(); }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  // The first n (<= 8) lanes of v to y.
  static void store(float* y, F v, int n) {
    if (n == kRows) {
      _mm256_storeu_ps(y, v);
      return;
    }
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < n; ++i) y[i] = tmp[i];
  }
};

#if BLOOMZ_X86_AVX512
struct V16 {
  static constexpr int kRows = 16;
  using I = __m512i;
  using F = __m512;
  static I load(const void* p) { return _mm512_load_si512(p); }
  static I bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I zero() { return _mm512_setzero_si512(); }
  static I add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub32(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
  static I madd(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I mullo32(I a, I b) { return _mm512_mullo_epi32(a, b); }
  static I slli32(I a, int s) { return _mm512_sll_epi32(a, _mm_cvtsi32_si128(s)); }
  static I dpbusd(I acc, I u, I s) {
#if BLOOMZ_X86_VNNI
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
  }
  static I dpwssd(I acc, I a, I b) {
#if BLOOMZ_X86_VNNI
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
  }
  static I apply_sign(I x, I s) { return _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(s), _mm512_setzero_si512(), x); }
  static F loadf(const float* p) { return _mm512_load_ps(p); }
  static F bcastf(const float* p) { return _mm512_set1_ps(*p); }
  static F setf(float v) { return _mm512_set1_ps(v); }
  static F zerof() { return _mm512_setzero_ps(); }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static void store(float* y, F v, int n) {
    if (n == kRows) {
      _mm512_storeu_ps(y, v);
      return;
    }
    alignas(64) float tmp[16];
    _mm512_store_ps(tmp, v);
    for (int i = 0; i < n; ++i) y[i] = tmp[i];
  }
};
using VTile = V16;  // the tiled prompt kernels' width
#else
using VTile = V8;
#endif
