// The AArch64 NEON + dot-product table (ARMv8.2-A SDOT for the int8 dots, compiled with
// -march=armv8.2-a+dotprod; selected only when HWCAP_ASIMDDP / FEAT_DotProd is reported). The body
// is arm_neon.inl; only table_neon_dot() is exported.
#define BLOOMZ_NEON_NS neondot
#define BLOOMZ_NEON_DOTPROD 1
#include "kernels/arm_neon.inl"

namespace bloomz::kernels {
const KernelTable& table_neon_dot() { return neondot::kTable; }
}  // namespace bloomz::kernels
