// The avx512 table compiled a second time against SIMDe with AVX2 flags only (tests: the emulated
// build, bloomz_core_simde). Same body, same per-output arithmetic as the native table, so the
// emulated table's tests stand in for the native ones on CPUs without AVX-512.
#define BLOOMZ_X86_SIMDE 1
#define BLOOMZ_X86_NS avx512
#define BLOOMZ_X86_NAME "avx512"
#define BLOOMZ_X86_AVX512 1
#define BLOOMZ_X86_VNNI 0
#include "kernels/x86_simd.inl"

namespace bloomz::kernels {
const KernelTable& table_avx512() { return avx512::kTable; }
}  // namespace bloomz::kernels
