// The x86 intrinsics a kernel table is written with. Native builds take <immintrin.h> as it is;
// the emulated AVX-512 build (BLOOMZ_X86_SIMDE, tests only) compiles the same kernel body with
// AVX2 flags and maps the AVX-512 intrinsics it uses onto SIMDe (x86_simde_compat.hpp).
#pragma once

#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_*() operands (the pass-through of unmasked 512-bit
// intrinsics such as _mm512_cvtepi32_ps) as maybe uninitialized wherever they are inlined, and
// the self-initialized _mm256_undefined_*() inside _mm512_extract*x4 as uninitialized.
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#if defined(BLOOMZ_X86_SIMDE) && BLOOMZ_X86_SIMDE
#include "kernels/x86_simde_compat.hpp"
#endif
