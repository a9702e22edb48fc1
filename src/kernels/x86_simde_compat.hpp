// The emulated AVX-512 build only (BLOOMZ_X86_SIMDE, included by x86_intrin.hpp after
// <immintrin.h>): every AVX-512 intrinsic and type the kernel body uses, mapped onto SIMDe by name.
// The 256-bit AVX2/FMA/F16C intrinsics stay native (the TU is compiled with those flags), so an
// emulated 512-bit operation is two native 256-bit ones wherever SIMDe can do that.
//
// SIMDe's own native aliases are not used: in 0.7.4 (Debian 12) the alias of _mm512_madd_epi16 is
// broken and some intrinsics are missing (_mm512_cvtepi32_ps, _mm512_cvtph_ps, _mm512_cvtps_ph,
// _mm512_reduce_add_ps, ...). Those are written here from native 256-bit halves. Any intrinsic the
// body starts using must be added below, or the emulated build fails to compile.
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "the SIMDe build of the AVX-512 tables is compiled with -mavx2 -mfma -mf16c"
#endif

#include <simde/x86/avx512.h>

#include <cstdint>
#include <cstring>

namespace bloomz::kernels::simde_compat {

// The two native 256-bit halves of a 512-bit value, and back.
inline simde__m512i_private halves(simde__m512i v) { return simde__m512i_to_private(v); }
inline simde__m512_private halves(simde__m512 v) { return simde__m512_to_private(v); }
inline simde__m512i join(__m256i lo, __m256i hi) {
  simde__m512i_private r;
  r.m256i[0] = lo;
  r.m256i[1] = hi;
  return simde__m512i_from_private(r);
}
inline simde__m512 join(__m256 lo, __m256 hi) {
  simde__m512_private r;
  r.m256[0] = lo;
  r.m256[1] = hi;
  return simde__m512_from_private(r);
}

inline simde__m512 cvtepi32_ps(simde__m512i a) {
  const auto h = halves(a);
  return join(_mm256_cvtepi32_ps(h.m256i[0]), _mm256_cvtepi32_ps(h.m256i[1]));
}
inline simde__m512i madd_epi16(simde__m512i a, simde__m512i b) {
  const auto x = halves(a), y = halves(b);
  return join(_mm256_madd_epi16(x.m256i[0], y.m256i[0]), _mm256_madd_epi16(x.m256i[1], y.m256i[1]));
}
inline simde__m512i maddubs_epi16(simde__m512i a, simde__m512i b) {
  const auto x = halves(a), y = halves(b);
  return join(_mm256_maddubs_epi16(x.m256i[0], y.m256i[0]), _mm256_maddubs_epi16(x.m256i[1], y.m256i[1]));
}
inline simde__m512i mullo_epi32(simde__m512i a, simde__m512i b) {
  const auto x = halves(a), y = halves(b);
  return join(_mm256_mullo_epi32(x.m256i[0], y.m256i[0]), _mm256_mullo_epi32(x.m256i[1], y.m256i[1]));
}
// fmadd rounds once, like the native instruction (native FMA on the halves).
inline simde__m512 fmadd_ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  const auto x = halves(a), y = halves(b), z = halves(c);
  return join(_mm256_fmadd_ps(x.m256[0], y.m256[0], z.m256[0]), _mm256_fmadd_ps(x.m256[1], y.m256[1], z.m256[1]));
}

inline simde__m512i cvtepu16_epi32(__m256i h) {
  return join(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)));
}
inline simde__m512i zextsi256_si512(__m256i a) { return join(a, _mm256_setzero_si256()); }
inline simde__m512i cvtepu8_epi16(__m256i b) {
  return join(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(b)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(b, 1)));
}
template <int kImm>
inline simde__m512i shuffle_epi32(simde__m512i a) {
  const auto h = halves(a);
  return join(_mm256_shuffle_epi32(h.m256i[0], kImm), _mm256_shuffle_epi32(h.m256i[1], kImm));
}
inline simde__m512i cvtepi8_epi32(__m128i b) {
  return join(_mm256_cvtepi8_epi32(b), _mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
}
inline simde__m512 cvtph_ps(__m256i h) {
  return join(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
}

// Rounding conversions on the native halves, so that they round exactly as the native ones do.
inline simde__m512i cvtps_epi32(simde__m512 a) {
  const auto h = halves(a);
  return join(_mm256_cvtps_epi32(h.m256[0]), _mm256_cvtps_epi32(h.m256[1]));
}
inline simde__m512i cvttps_epi32(simde__m512 a) {
  const auto h = halves(a);
  return join(_mm256_cvttps_epi32(h.m256[0]), _mm256_cvttps_epi32(h.m256[1]));
}
template <int Imm>  // the rounding bits only (no scale), as every caller passes
inline simde__m512 roundscale_ps(simde__m512 a) {
  static_assert((Imm & 0xF0) == 0, "roundscale with a scale is not emulated here");
  const auto h = halves(a);
  return join(_mm256_round_ps(h.m256[0], Imm), _mm256_round_ps(h.m256[1], Imm));
}
template <int Imm>
inline __m256i cvtps_ph(simde__m512 a) {
  const auto h = halves(a);
  return _mm256_set_m128i(_mm256_cvtps_ph(h.m256[1], Imm), _mm256_cvtps_ph(h.m256[0], Imm));
}
template <int Scale>
inline simde__m512i i32gather_epi32(simde__m512i idx, const void* base) {
  const auto h = halves(idx);
  const int* b = static_cast<const int*>(base);
  return join(_mm256_i32gather_epi32(b, h.m256i[0], Scale), _mm256_i32gather_epi32(b, h.m256i[1], Scale));
}

// vpmovdb / vpmovdw: the low byte / low half of every lane (truncation).
inline __m128i cvtepi32_epi8(simde__m512i a) {
  alignas(64) int32_t v[16];
  alignas(16) int8_t out[16];
  std::memcpy(v, &a, sizeof v);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<int8_t>(v[i]);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(out));
}
inline __m256i cvtepi32_epi16(simde__m512i a) {
  alignas(64) int32_t v[16];
  alignas(32) int16_t out[16];
  std::memcpy(v, &a, sizeof v);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<int16_t>(v[i]);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(out));
}

}  // namespace bloomz::kernels::simde_compat

// Types.
#define __m512 simde__m512
#define __m512i simde__m512i

// Mapped to SIMDe.
#undef _mm256_dpbusd_epi32
#define _mm256_dpbusd_epi32 simde_mm256_dpbusd_epi32
#undef _mm256_dpwssd_epi32
#define _mm256_dpwssd_epi32 simde_mm256_dpwssd_epi32
#undef _mm512_add_epi16
#define _mm512_add_epi16 simde_mm512_add_epi16
#undef _mm512_add_epi32
#define _mm512_add_epi32 simde_mm512_add_epi32
#undef _mm512_add_ps
#define _mm512_add_ps simde_mm512_add_ps
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 simde_mm512_dpbusd_epi32
#undef _mm512_dpwssd_epi32
#define _mm512_dpwssd_epi32 simde_mm512_dpwssd_epi32
#undef _mm512_load_ps
#define _mm512_load_ps simde_mm512_load_ps
#undef _mm512_load_si512
#define _mm512_load_si512 simde_mm512_load_si512
#undef _mm512_mask_sub_epi8
#define _mm512_mask_sub_epi8 simde_mm512_mask_sub_epi8
#undef _mm512_movepi8_mask
#define _mm512_movepi8_mask simde_mm512_movepi8_mask
#undef _mm512_mul_ps
#define _mm512_mul_ps simde_mm512_mul_ps
#undef _mm512_set1_epi16
#define _mm512_set1_epi16 simde_mm512_set1_epi16
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 simde_mm512_set1_epi32
#undef _mm512_set1_ps
#define _mm512_set1_ps simde_mm512_set1_ps
#undef _mm512_setzero_ps
#define _mm512_setzero_ps simde_mm512_setzero_ps
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 simde_mm512_setzero_si512
#undef _mm512_sll_epi32
#define _mm512_sll_epi32 simde_mm512_sll_epi32
#undef _mm512_store_ps
#define _mm512_store_ps simde_mm512_store_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps simde_mm512_storeu_ps
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 simde_mm512_sub_epi32
#undef _mm512_sub_ps
#define _mm512_sub_ps simde_mm512_sub_ps

#undef _mm512_inserti64x4
#define _mm512_inserti64x4 simde_mm512_inserti64x4
#undef _mm512_castsi256_si512
#define _mm512_castsi256_si512 simde_mm512_castsi256_si512
#undef _mm512_set1_epi8
#define _mm512_set1_epi8 simde_mm512_set1_epi8
#undef _mm512_and_si512
#define _mm512_and_si512 simde_mm512_and_si512
#undef _mm512_srli_epi16
#define _mm512_srli_epi16 simde_mm512_srli_epi16
#undef _mm512_xor_si512
#define _mm512_xor_si512 simde_mm512_xor_si512
#undef _mm512_abs_epi8
#define _mm512_abs_epi8 simde_mm512_abs_epi8
#undef _mm512_loadu_ps
#define _mm512_loadu_ps simde_mm512_loadu_ps
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps simde_mm512_castsi512_ps
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 simde_mm512_slli_epi32
#undef _mm512_castps512_ps256
#define _mm512_castps512_ps256 simde_mm512_castps512_ps256
#undef _mm512_extractf64x4_pd
#define _mm512_extractf64x4_pd simde_mm512_extractf64x4_pd
#undef _mm512_castps_pd
#define _mm512_castps_pd simde_mm512_castps_pd
#undef _mm512_abs_ps
#define _mm512_abs_ps simde_mm512_abs_ps
#undef _mm512_max_ps
#define _mm512_max_ps simde_mm512_max_ps
#undef _mm512_cmp_ps_mask
#define _mm512_cmp_ps_mask simde_mm512_cmp_ps_mask
#undef _mm512_or_ps
#define _mm512_or_ps simde_mm512_or_ps
#undef _mm512_and_ps
#define _mm512_and_ps simde_mm512_and_ps
#undef _mm512_mask_add_ps
#define _mm512_mask_add_ps simde_mm512_mask_add_ps
#undef _mm512_castsi512_si256
#define _mm512_castsi512_si256 simde_mm512_castsi512_si256
#undef _mm512_extracti64x4_epi64
#define _mm512_extracti64x4_epi64 simde_mm512_extracti64x4_epi64
#undef _mm512_min_epi32
#define _mm512_min_epi32 simde_mm512_min_epi32
#undef _mm512_mask_blend_ps
#define _mm512_mask_blend_ps simde_mm512_mask_blend_ps
#undef _mm512_slli_epi16
#define _mm512_slli_epi16 simde_mm512_slli_epi16
#undef _mm512_or_si512
#define _mm512_or_si512 simde_mm512_or_si512
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 simde_mm512_loadu_si512
#undef _mm512_broadcast_i32x4
#define _mm512_broadcast_i32x4 simde_mm512_broadcast_i32x4
#undef _mm512_broadcast_i64x4
#define _mm512_broadcast_i64x4 simde_mm512_broadcast_i64x4
#undef _mm512_unpacklo_epi32
#define _mm512_unpacklo_epi32 simde_mm512_unpacklo_epi32
#undef _mm512_unpackhi_epi32
#define _mm512_unpackhi_epi32 simde_mm512_unpackhi_epi32
#undef _mm512_unpacklo_epi64
#define _mm512_unpacklo_epi64 simde_mm512_unpacklo_epi64
#undef _mm512_unpackhi_epi64
#define _mm512_unpackhi_epi64 simde_mm512_unpackhi_epi64
#undef _mm512_shuffle_i32x4
#define _mm512_shuffle_i32x4 simde_mm512_shuffle_i32x4
#undef _mm512_permutexvar_ps
#define _mm512_permutexvar_ps simde_mm512_permutexvar_ps

#undef _mm512_permutexvar_epi32
#define _mm512_permutexvar_epi32 simde_mm512_permutexvar_epi32
#undef _mm512_permutex2var_epi32
#define _mm512_permutex2var_epi32 simde_mm512_permutex2var_epi32
#undef _mm512_castsi128_si512
#define _mm512_castsi128_si512 simde_mm512_castsi128_si512
#undef _mm512_setr_epi32
#define _mm512_setr_epi32 simde_mm512_setr_epi32
#undef _mm512_store_si512
#define _mm512_store_si512 simde_mm512_store_si512
#undef _mm512_mask_blend_epi32
#define _mm512_mask_blend_epi32 simde_mm512_mask_blend_epi32
#undef _mm512_ternarylogic_epi32
#define _mm512_ternarylogic_epi32 simde_mm512_ternarylogic_epi32
#undef _mm512_srli_epi32
#define _mm512_srli_epi32 simde_mm512_srli_epi32
#undef _mm512_shuffle_i64x2
#define _mm512_shuffle_i64x2 simde_mm512_shuffle_i64x2
#undef _mm512_shuffle_epi8
#define _mm512_shuffle_epi8 simde_mm512_shuffle_epi8
#undef _mm512_maskz_set1_epi32
#define _mm512_maskz_set1_epi32 simde_mm512_maskz_set1_epi32
#undef _mm512_extractf32x4_ps
#define _mm512_extractf32x4_ps simde_mm512_extractf32x4_ps
#undef _mm512_castps512_ps128
#define _mm512_castps512_ps128 simde_mm512_castps512_ps128
#undef _mm512_castsi512_si128
#define _mm512_castsi512_si128 simde_mm512_castsi512_si128
#undef _mm512_permutex2var_epi16
#define _mm512_permutex2var_epi16 simde_mm512_permutex2var_epi16
#undef _mm512_permutexvar_epi16
#define _mm512_permutexvar_epi16 simde_mm512_permutexvar_epi16
#undef _mm512_sllv_epi64
#define _mm512_sllv_epi64 simde_mm512_sllv_epi64
#undef _mm512_srlv_epi64
#define _mm512_srlv_epi64 simde_mm512_srlv_epi64
#undef _mm512_setr_epi64
#define _mm512_setr_epi64 simde_mm512_setr_epi64
#undef _mm512_inserti32x4
#define _mm512_inserti32x4 simde_mm512_inserti32x4
#undef _mm512_srlv_epi32
#define _mm512_srlv_epi32 simde_mm512_srlv_epi32
#undef _mm512_permutexvar_epi64
#define _mm512_permutexvar_epi64 simde_mm512_permutexvar_epi64
// Missing or broken in SIMDe 0.7.4, or slow there: written above.
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps ::bloomz::kernels::simde_compat::cvtepi32_ps
#undef _mm512_cvtph_ps
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 ::bloomz::kernels::simde_compat::cvtepu16_epi32
#define _mm512_cvtph_ps ::bloomz::kernels::simde_compat::cvtph_ps
#undef _mm512_zextsi256_si512
#define _mm512_zextsi256_si512 ::bloomz::kernels::simde_compat::zextsi256_si512
#undef _mm512_cvtepu8_epi16
#define _mm512_cvtepu8_epi16 ::bloomz::kernels::simde_compat::cvtepu8_epi16
#undef _mm512_shuffle_epi32
#define _mm512_shuffle_epi32(a, imm) ::bloomz::kernels::simde_compat::shuffle_epi32<static_cast<int>(imm)>(a)
#undef _mm512_cvtepi8_epi32
#define _mm512_cvtepi8_epi32 ::bloomz::kernels::simde_compat::cvtepi8_epi32
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps ::bloomz::kernels::simde_compat::fmadd_ps
#undef _mm512_madd_epi16
#define _mm512_madd_epi16 ::bloomz::kernels::simde_compat::madd_epi16
#undef _mm512_maddubs_epi16
#define _mm512_maddubs_epi16 ::bloomz::kernels::simde_compat::maddubs_epi16
#undef _mm512_mullo_epi32
#define _mm512_mullo_epi32 ::bloomz::kernels::simde_compat::mullo_epi32
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 ::bloomz::kernels::simde_compat::cvtps_epi32
#undef _mm512_cvttps_epi32
#define _mm512_cvttps_epi32 ::bloomz::kernels::simde_compat::cvttps_epi32
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps(a, imm) ::bloomz::kernels::simde_compat::roundscale_ps<(imm)>(a)
#undef _mm512_cvtps_ph
#define _mm512_cvtps_ph(a, imm) ::bloomz::kernels::simde_compat::cvtps_ph<(imm)>(a)
#undef _mm512_i32gather_epi32
#define _mm512_i32gather_epi32(idx, base, scale) ::bloomz::kernels::simde_compat::i32gather_epi32<(scale)>((idx), (base))
#undef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8 ::bloomz::kernels::simde_compat::cvtepi32_epi8
#undef _mm512_cvtepi32_epi16
#define _mm512_cvtepi32_epi16 ::bloomz::kernels::simde_compat::cvtepi32_epi16
