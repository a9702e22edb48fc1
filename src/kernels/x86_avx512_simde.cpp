// The avx512 table compiled a second time against SIMDe with AVX2 flags only (tests: the emulated
// build, bloomz_core_simde). The same translation unit as the native table, so the emulated
// table's tests stand in for the native ones on CPUs without AVX-512.
#define BLOOMZ_X86_SIMDE 1
#include "kernels/x86_avx512.cpp"
