// The avx512 table: AVX-512 F/BW/VL/DQ (+ AVX2, FMA, F16C). The body is x86_simd.inl; only table_avx512() is exported.
#define BLOOMZ_X86_NS avx512
#define BLOOMZ_X86_NAME "avx512"
#define BLOOMZ_X86_AVX512 1
#define BLOOMZ_X86_VNNI 0
#include "kernels/x86_simd.inl"

namespace bloomz::kernels {
const KernelTable& table_avx512() { return avx512::kTable; }
}  // namespace bloomz::kernels
