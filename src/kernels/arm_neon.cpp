// The AArch64 NEON baseline table (Advanced SIMD of ARMv8.0: SMULL/SADALP int8 dots, FCVTL/FCVTN
// fp16 conversions). The body is arm_neon.inl; only table_neon() is exported.
#define BLOOMZ_NEON_NS neon
#define BLOOMZ_NEON_DOTPROD 0
#include "kernels/arm_neon.inl"

namespace bloomz::kernels {
const KernelTable& table_neon() { return neon::kTable; }
}  // namespace bloomz::kernels
