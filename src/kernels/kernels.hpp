// The kernel tables: one per ISA, each defined in its own translation unit compiled with exactly
// its flags. Common code (matmul.cpp, dequant.cpp) only calls through these function pointers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bloomz/cpu_features.hpp"
#include "bloomz/ggml_types.hpp"

namespace bloomz::kernels {

// Weight types with a dot kernel, and activation (vec_dot) types.
enum class WType : int { F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Count };
enum class AType : int { F32, F16, BF16, Q8_0, Q8_1, Q8_K, Count };
inline constexpr int kWTypeCount = static_cast<int>(WType::Count);
inline constexpr int kATypeCount = static_cast<int>(AType::Count);

// One row of n floats -> n elements of an activation type (n a multiple of its block size).
using QuantizeFn = void (*)(const float* x, void* dst, int64_t n);

// A rectangle of outputs: for r in [r0, r1), t in [0, n_tok):
//   y[t * ldy + r] = dot(row r of w, activation row t), n elements each.
// Every output is computed by the same sequence of float operations whatever n_tok and the
// rectangle are (kernels tile tokens by up to 4 and weight rows as they like, but per output the
// operations are those of the 1x1 case).
struct DotArgs {
  const std::byte* w;   // weight row 0
  int64_t w_stride;     // bytes between weight rows
  int64_t r0, r1;
  const std::byte* a;   // activation row 0 (already converted to the vec_dot type)
  int64_t a_stride;     // bytes between activation rows
  int64_t n_tok;
  float* y;
  int64_t ldy;
  int64_t n;            // elements per row
  // Nonzero: names the activations' contents (matmul gives every call a new one), so a kernel
  // may keep what it derived from them (block scales, interleaved copies) across the row ranges
  // of one matmul instead of redoing it per range. Zero: derive afresh.
  uint64_t a_id = 0;
  // The end of the caller's stream (RowRegions): rows [r1, pf_r1) are the caller's next ones, and
  // a kernel that prefetches ahead may run on into them. 0 (or anything up to r1): nothing past r1,
  // whose rows may be another thread's.
  int64_t pf_r1 = 0;
};
using DotFn = void (*)(const DotArgs&);

// Attention of one query row against one head of an fp16 KV cache, with llama.cpp's F16-cache
// numerics (the query rounded to fp16, products accumulated in f32):
//   s_k = dot(fp16(q), K_k) * scale + slope * (k - pos)   for k < n_kv
//   p = softmax(s) (max subtracted, sum of the exponentials in double)
//   out = sum_k p_k V_k                                   (k ascending)
// K and V: n_kv rows of d fp16 values each, rows d apart. scores: n_kv floats of scratch.
// Every output's float operations depend only on (q, K, V, n_kv), never on the caller's batch.
struct AttnArgs {
  const float* q;
  const uint16_t* k;
  const uint16_t* v;
  int64_t n_kv, d, pos;
  float scale, slope;
  float* scores;
  float* out;
};
using AttnFn = void (*)(const AttnArgs&);

// Attention of one query row against one head of a q8_0 KV cache (llama.cpp's `-ctk q8_0 -ctv q8_0`
// blocks: 32 int8 values and an fp16 scale; d a multiple of 32, rows of d/32 blocks), with the
// numerics of llama.cpp's flash-attention path for it:
//   q8 = q quantized to q8_0 (the quantize[Q8_0] of the tables: the same bytes on every table)
//   s_k = sum over blocks b, in order, of float(isum_b(q8, K_k)) * (d(K_kb) * d(q8_b)), from 0
//   s_k = s_k * scale + slope * (k - pos)
//   p = softmax(s) (max subtracted, sum of the exponentials in double), as for fp16
//   out = sum_k, ascending, over blocks b: (p_k * d(V_kb)) * float(V_kb.qs)
// The integer dots are exact and the scores take the reference's float steps on every table; the
// output differs by the exponential and fused multiply-adds only (bounded like attn_f16's).
struct AttnQ8Args {
  const float* q;
  const void* k;  // block_q8_0[n_kv][d / 32]
  const void* v;
  int64_t n_kv, d, pos;
  float scale, slope;
  float* scores;
  float* out;
};
using AttnQ8Fn = void (*)(const AttnQ8Args&);

// x[i] = gelu(x[i] + b[i]) with the fp16-table GELU (see ops::gelu); table: 65536 fp16 entries
// indexed by fp16(x + b), followed by at least 2 bytes of padding.
using BiasGeluFn = void (*)(float* x, const float* b, int64_t n, const uint16_t* table);

// LM-head screening (head_screen.hpp), which needs no particular order of float operations.
// screen_quantize: one fp16 row of n values -> n int8 codes q_i = round-to-nearest-even(w_i * (127 /
// amax)), amax = max |w_i| (all 0 when amax is 0), and the row's stats: scale = amax / 127,
// err = max |fma(-scale, q_i, w_i)|, amax. Returns false (stats unset) when the row holds Inf or NaN.
// Bit-identical on every table.
struct ScreenRowStats {
  float scale, err, amax;
};
using ScreenQuantizeFn = bool (*)(const uint16_t* w, int8_t* q, int64_t n, ScreenRowStats* stats);
// screen_dot: out[r] = scale[r] * sum_i q[r * n + i] * x[i] for r in [r0, r1), the sum in any
// order (every product is exact in f32: 8-bit times fp16 values).
struct ScreenDotArgs {
  const int8_t* q;
  const float* scale;
  const float* x;
  int64_t n, r0, r1;
  float* out;
};
using ScreenDotFn = void (*)(const ScreenDotArgs&);

struct KernelTable {
  const char* name;
  QuantizeFn quantize[kATypeCount];  // F32 entry: plain copy
  DotFn dot[kWTypeCount];
  AttnFn attn_f16;
  BiasGeluFn bias_gelu;
  // Dots over weights in the x8 layout (repack.hpp); nullptr where the table has none. DotArgs as
  // for dot, except: w = the matrix's first 8-row group, w_stride = bytes per 8-row group, and r0,
  // r1 multiples of 8. Per output, bit-identical to dot on the plain rows.
  DotFn dot_x8[kWTypeCount];
  // Attention over a q8_0 cache; nullptr: the reference's (the NEON tables).
  AttnQ8Fn attn_q8_0 = nullptr;
  // LM-head screening; nullptr: the reference's (the NEON tables).
  ScreenQuantizeFn screen_quantize = nullptr;
  ScreenDotFn screen_dot = nullptr;
};

const KernelTable& table_ref();
#if defined(BLOOMZ_HAVE_AVX2)
const KernelTable& table_avx2();
#endif
#if defined(BLOOMZ_HAVE_AVX512)
const KernelTable& table_avx512();
#endif
#if defined(BLOOMZ_HAVE_AVX512VNNI)
const KernelTable& table_avx512vnni();
#endif

// The table of an ISA, or nullptr when it is not compiled into this binary.
const KernelTable* table_for(Isa isa);

// Type mapping helpers (false / Count when the type has no dot kernel).
bool wtype_of(GgmlType t, WType& out);
AType vec_dot_type(WType w);
int64_t act_block_size(AType a);   // elements per activation block
int64_t act_block_bytes(AType a);  // bytes per activation block
int64_t w_block_size(WType w);
int64_t w_block_bytes(WType w);
inline int64_t act_row_bytes(AType a, int64_t n) { return n / act_block_size(a) * act_block_bytes(a); }

// Portable scalar reference dequantization of one row (any weight type, plus Q8_0 and Q8_K).
bool dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace bloomz::kernels
