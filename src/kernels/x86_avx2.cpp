// The avx2 table: AVX2 + FMA + F16C. The body is x86_simd.inl; only table_avx2() is exported.
#define BLOOMZ_X86_NS avx2
#define BLOOMZ_X86_NAME "avx2"
#define BLOOMZ_X86_AVX512 0
#define BLOOMZ_X86_VNNI 0
#include "kernels/x86_simd.inl"

namespace bloomz::kernels {
const KernelTable& table_avx2() { return avx2::kTable; }
}  // namespace bloomz::kernels
