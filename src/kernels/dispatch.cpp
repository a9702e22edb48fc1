// Which table serves which ISA, and the type bookkeeping shared by the driver, tests and tools.
#include "kernels/blocks.hpp"
#include "kernels/kernels.hpp"

namespace bloomz::kernels {

// The AArch64 tables (arm_neon.cpp, arm_neon_dotprod.cpp), declared here only: nothing else calls
// them directly.
#if defined(BLOOMZ_HAVE_NEON)
const KernelTable& table_neon();
#endif
#if defined(BLOOMZ_HAVE_NEON_DOT)
const KernelTable& table_neon_dot();
#endif

const KernelTable* table_for(Isa isa) {
  switch (isa) {
    case Isa::Ref: return &table_ref();
#if defined(BLOOMZ_HAVE_AVX2)
    case Isa::Avx2: return &table_avx2();
#endif
#if defined(BLOOMZ_HAVE_AVX512)
    case Isa::Avx512: return &table_avx512();
#endif
#if defined(BLOOMZ_HAVE_AVX512VNNI)
    case Isa::Avx512Vnni: return &table_avx512vnni();
#endif
#if defined(BLOOMZ_HAVE_NEON)
    case Isa::Neon: return &table_neon();
#endif
#if defined(BLOOMZ_HAVE_NEON_DOT)
    case Isa::NeonDot: return &table_neon_dot();
#endif
    default: return nullptr;
  }
}

bool wtype_of(GgmlType t, WType& out) {
  switch (t) {
    case GgmlType::F32: out = WType::F32; return true;
    case GgmlType::F16: out = WType::F16; return true;
    case GgmlType::BF16: out = WType::BF16; return true;
    case GgmlType::Q4_0: out = WType::Q4_0; return true;
    case GgmlType::Q4_1: out = WType::Q4_1; return true;
    case GgmlType::Q5_0: out = WType::Q5_0; return true;
    case GgmlType::Q5_1: out = WType::Q5_1; return true;
    case GgmlType::Q8_0: out = WType::Q8_0; return true;
    case GgmlType::Q2_K: out = WType::Q2_K; return true;
    case GgmlType::Q3_K: out = WType::Q3_K; return true;
    case GgmlType::Q4_K: out = WType::Q4_K; return true;
    case GgmlType::Q5_K: out = WType::Q5_K; return true;
    case GgmlType::Q6_K: out = WType::Q6_K; return true;
    default: return false;
  }
}

AType vec_dot_type(WType w) {
  switch (w) {
    case WType::F32: return AType::F32;
    case WType::F16: return AType::F16;
    case WType::BF16: return AType::BF16;
    case WType::Q4_0: case WType::Q5_0: case WType::Q8_0: return AType::Q8_0;
    case WType::Q4_1: case WType::Q5_1: return AType::Q8_1;
    default: return AType::Q8_K;
  }
}

int64_t act_block_size(AType a) {
  switch (a) {
    case AType::F32: case AType::F16: case AType::BF16: return 1;
    case AType::Q8_0: case AType::Q8_1: return 32;
    default: return QK_K;
  }
}

int64_t act_block_bytes(AType a) {
  switch (a) {
    case AType::F32: return 4;
    case AType::F16: case AType::BF16: return 2;
    case AType::Q8_0: return sizeof(block_q8_0);
    case AType::Q8_1: return sizeof(block_q8_1);
    default: return sizeof(block_q8_K);
  }
}

int64_t w_block_size(WType w) {
  switch (w) {
    case WType::F32: case WType::F16: case WType::BF16: return 1;
    case WType::Q4_0: case WType::Q4_1: case WType::Q5_0: case WType::Q5_1: case WType::Q8_0: return 32;
    default: return QK_K;
  }
}

int64_t w_block_bytes(WType w) {
  switch (w) {
    case WType::F32: return 4;
    case WType::F16: case WType::BF16: return 2;
    case WType::Q4_0: return sizeof(block_q4_0);
    case WType::Q4_1: return sizeof(block_q4_1);
    case WType::Q5_0: return sizeof(block_q5_0);
    case WType::Q5_1: return sizeof(block_q5_1);
    case WType::Q8_0: return sizeof(block_q8_0);
    case WType::Q2_K: return sizeof(block_q2_K);
    case WType::Q3_K: return sizeof(block_q3_K);
    case WType::Q4_K: return sizeof(block_q4_K);
    case WType::Q5_K: return sizeof(block_q5_K);
    case WType::Q6_K: return sizeof(block_q6_K);
    default: return 0;
  }
}

}  // namespace bloomz::kernels
