// The avx512vnni table: AVX-512 F/BW/VL/DQ + VNNI. The body is x86_simd.inl; only table_avx512vnni() is exported.
#define BLOOMZ_X86_NS avx512vnni
#define BLOOMZ_X86_NAME "avx512vnni"
#define BLOOMZ_X86_AVX512 1
#define BLOOMZ_X86_VNNI 1
#include "kernels/x86_simd.inl"

namespace bloomz::kernels {
const KernelTable& table_avx512vnni() { return avx512vnni::kTable; }
}  // namespace bloomz::kernels
