// Kernel tables: the reference against ggml's own results (tests/data/kernels, bit-exact for
// dequantization and quantization, within a derived bound for dots), and every SIMD table this CPU
// can run against the reference (bit-exact in exact mode, within the bound in tolerance mode).
//
// Dot tolerance. Each kernel computes per block b an exact integer sum, then float terms
// t_b = (d_w*d_a)*isum_b (- dmin_w*d_a*imin_b, or + m_w*s_a), accumulated over the nb blocks (or,
// for F16/BF16/F32, n products accumulated in up to 32 lanes). Standard error analysis gives
// |computed - exact| <= gamma_k * sum_b |t_b| with gamma_k ~ k*u, u = 2^-24, k = nb + 3 (two
// roundings for the product, one for the int->float conversion when |isum| > 2^24, and one per
// addition). ggml's own results satisfy the same kind of bound (the fixtures measure <= 5.1e-8 * S).
// Both errors add, and |t_b| <= sum over the block of |w_i a_i| except for the split min terms of
// Q4_1/Q5_1/Q2_K/Q4_K/Q5_K, where we allow a factor 2. Hence the bound used below:
//     |mine - theirs| <= 4 * (k + 4) * u * S + 1e-30,   S = sum_i |w_i * a_i|  (dequantized values),
// with k = number of blocks (quantized types) or n (float types, a pessimistic serial bound).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bloomz/cpu_features.hpp"
#include "bloomz/fp16.hpp"
#include "bloomz/matmul.hpp"
#include "kernels/blocks.hpp"
#include "ops.hpp"
#include "kernels/kernels.hpp"

namespace {

using namespace bloomz;
using namespace bloomz::kernels;
using nlohmann::json;
using Bytes = std::vector<uint8_t>;

json load(const std::string& name) {
  std::ifstream in(std::string(BLOOMZ_TEST_DATA) + "/kernels/" + name + ".json");
  if (!in) throw std::runtime_error("cannot open test data " + name);
  return json::parse(in);
}

Bytes unhex(const std::string& h) {
  Bytes out(h.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoul(h.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::vector<float> floats(const json& a) {
  std::vector<float> v;
  v.reserve(a.size());
  for (const auto& x : a) v.push_back(x.get<float>());
  return v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

struct TypeCase {
  const char* file;
  GgmlType type;
};

const TypeCase kWeightTypes[] = {
    {"f16", GgmlType::F16},   {"bf16", GgmlType::BF16}, {"q4_0", GgmlType::Q4_0}, {"q4_1", GgmlType::Q4_1},
    {"q5_0", GgmlType::Q5_0}, {"q5_1", GgmlType::Q5_1}, {"q8_0", GgmlType::Q8_0}, {"q2_K", GgmlType::Q2_K},
    {"q3_K", GgmlType::Q3_K}, {"q4_K", GgmlType::Q4_K}, {"q5_K", GgmlType::Q5_K}, {"q6_K", GgmlType::Q6_K},
};

WType wt_of(GgmlType t) {
  WType w{};
  EXPECT_TRUE(wtype_of(t, w));
  return w;
}

// Dequantize an activation row of any vec_dot type (Q8_1: d*q).
std::vector<double> act_values(AType at, const uint8_t* a, int64_t n) {
  std::vector<float> f(static_cast<size_t>(n));
  switch (at) {
    case AType::F32: std::memcpy(f.data(), a, static_cast<size_t>(n) * 4); break;
    case AType::F16: dequantize_row_ref(GgmlType::F16, a, f.data(), n); break;
    case AType::BF16: dequantize_row_ref(GgmlType::BF16, a, f.data(), n); break;
    case AType::Q8_0: dequantize_row_ref(GgmlType::Q8_0, a, f.data(), n); break;
    case AType::Q8_K: dequantize_row_ref(GgmlType::Q8_K, a, f.data(), n); break;
    case AType::Q8_1: {
      const auto* b = reinterpret_cast<const block_q8_1*>(a);
      for (int64_t i = 0; i < n; ++i) f[i] = fp16_to_fp32(b[i / 32].d) * static_cast<float>(b[i / 32].qs[i % 32]);
      break;
    }
    default: break;
  }
  return {f.begin(), f.end()};
}

double abs_product_sum(GgmlType wt, const uint8_t* w, AType at, const uint8_t* a, int64_t n) {
  std::vector<float> wf(static_cast<size_t>(n));
  dequantize_row_ref(wt, w, wf.data(), n);
  const std::vector<double> af = act_values(at, a, n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(wf[i]) * af[i]);
  return s;
}

double dot_bound(WType w, int64_t n, double abs_sum) {
  const int64_t k = w_block_size(w) == 1 ? n : n / w_block_size(w);
  return 4.0 * static_cast<double>(k + 4) * 0x1p-24 * abs_sum + 1e-30;
}

float run_dot(const KernelTable& kt, WType w, const uint8_t* wrow, const uint8_t* arow, int64_t n) {
  float y = 0;
  DotArgs p{reinterpret_cast<const std::byte*>(wrow), 0, 0, 1, reinterpret_cast<const std::byte*>(arow), 0, 1, &y, 1, n};
  kt.dot[static_cast<int>(w)](p);
  return y;
}

bool same_or_close(float a, float b, double tol) {
  if (std::isnan(a) || std::isnan(b) || std::isinf(a) || std::isinf(b)) return bits(a) == bits(b) || (a == b);
  return std::fabs(static_cast<double>(a) - static_cast<double>(b)) <= tol;
}

// ---------------------------------------------------------------------------------------------
// Reference table against ggml.

TEST(RefVsGgml, DequantizeBitExact) {
  int cases = 0;
  for (const TypeCase& tc : kWeightTypes) {
    const json j = load(tc.file);
    const int64_t bs = j["blck_size"];
    for (const auto& c : j["dequant"]) {
      const Bytes src = unhex(c["hex"]);
      const std::vector<float> expect = floats(c["out"]);
      const int64_t n = static_cast<int64_t>(c["n_blocks"]) * bs;
      ASSERT_EQ(static_cast<size_t>(n), expect.size());
      std::vector<float> got(expect.size());
      dequantize_row(tc.type, reinterpret_cast<const std::byte*>(src.data()), got.data(), n);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(bits(got[i]), bits(expect[i])) << tc.file << " case " << c["name"] << " element " << i;
      ++cases;
    }
  }
  // Q8_K (activation type) also has a to_float in ggml.
  const json j = load("q8_K");
  for (const auto& c : j["dequant"]) {
    const Bytes src = unhex(c["hex"]);
    const std::vector<float> expect = floats(c["out"]);
    std::vector<float> got(expect.size());
    ASSERT_TRUE(dequantize_row_ref(GgmlType::Q8_K, src.data(), got.data(), static_cast<int64_t>(got.size())));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(bits(got[i]), bits(expect[i])) << "q8_K " << c["name"] << " " << i;
    ++cases;
  }
  EXPECT_GT(cases, 300);
}

struct ActCase {
  const char* file;
  AType type;
};
const ActCase kActTypes[] = {
    {"q8_0", AType::Q8_0}, {"q8_1", AType::Q8_1}, {"q8_K", AType::Q8_K}, {"f16", AType::F16}, {"bf16", AType::BF16}};

// Every runnable table's activation quantizers give ggml's reference bytes (roundf ties away from
// zero for Q8_0/Q8_1, even on the tie rows where llama.cpp's AVX-512 quantizer differs).
TEST(QuantizeVsGgml, EveryIsaMatchesReferenceBytes) {
  for (Isa isa : usable_isas()) {
    const KernelTable& kt = *table_for(isa);
    for (const ActCase& ac : kActTypes) {
      const json j = load(ac.file);
      int rows = 0, differs_from_cpu = 0;
      for (const auto& c : j["quantize"]) {
        const std::vector<float> x = floats(c["x"]);
        const Bytes ref = unhex(c["ref_hex"]);
        const int64_t n = static_cast<int64_t>(x.size());
        Bytes got(static_cast<size_t>(act_row_bytes(ac.type, n)));
        ASSERT_EQ(got.size(), ref.size());
        kt.quantize[static_cast<int>(ac.type)](x.data(), got.data(), n);
        ASSERT_EQ(got, ref) << isa_name(isa) << " " << ac.file << " row " << c["name"];
        if (c.contains("cpu_hex") && unhex(c["cpu_hex"]) != got) ++differs_from_cpu;
        ++rows;
      }
      EXPECT_GT(rows, 10);
      if (ac.type == AType::Q8_0 || ac.type == AType::Q8_1) {
        EXPECT_GE(differs_from_cpu, 1) << ac.file;  // the tie rows: ggml's AVX-512 quantizer rounds to even
      }
    }
  }
}

// Every runnable table's dot against ggml's vec_dot (zen4 build) on ggml's own activation bytes.
TEST(DotVsGgml, EveryIsaWithinDerivedBound) {
  for (Isa isa : usable_isas()) {
    const KernelTable& kt = *table_for(isa);
    for (const TypeCase& tc : kWeightTypes) {
      const json j = load(tc.file);
      const WType w = wt_of(tc.type);
      const AType at = vec_dot_type(w);
      int count = 0;
      double worst = 0;
      for (const auto& c : j["vec_dot"]) {
        const int64_t n = c["n"];
        const Bytes wb = unhex(c["w_hex"]);
        const Bytes ab = unhex(c["a_hex"]);
        const float s = c["s"].get<float>();
        const float got = run_dot(kt, w, wb.data(), ab.data(), n);
        const double S = abs_product_sum(tc.type, wb.data(), at, ab.data(), n);
        const double tol = dot_bound(w, n, S);
        EXPECT_TRUE(same_or_close(got, s, tol))
            << isa_name(isa) << " " << tc.file << " n=" << n << " " << c["w_kind"] << " " << c["a_kind"]
            << ": got " << got << " ggml " << s << " |diff| " << std::fabs(got - s) << " > bound " << tol;
        if (S > 0) worst = std::max(worst, std::fabs(static_cast<double>(got) - s) / S);
        // Where the float row is kept, our quantizer reproduces ggml's activation bytes (no ties here).
        if (c.contains("x")) {
          const std::vector<float> x = floats(c["x"]);
          Bytes mine(static_cast<size_t>(act_row_bytes(at, n)));
          kt.quantize[static_cast<int>(at)](x.data(), mine.data(), n);
          EXPECT_EQ(mine, ab) << isa_name(isa) << " " << tc.file << " activation bytes n=" << n;
        }
        ++count;
      }
      EXPECT_GT(count, 5);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3g", worst);
      RecordProperty(std::string(isa_name(isa)) + "_" + tc.file + "_worst_rel_to_S", buf);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random rows for table-vs-table tests.

enum class Mode { Exact, Realistic };

// fp16 fields of each block type: byte offsets of d / m / dmin.
std::vector<int> f16_fields(WType w) {
  switch (w) {
    case WType::Q4_0: case WType::Q5_0: case WType::Q8_0: return {0};
    case WType::Q4_1: case WType::Q5_1: case WType::Q4_K: case WType::Q5_K: return {0, 2};
    case WType::Q2_K: return {80, 82};
    case WType::Q3_K: return {108};
    case WType::Q6_K: return {208};
    default: return {};
  }
}

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

float pow2_scale(std::mt19937& rng, bool allow_neg) {
  const float s = (rng() & 1) ? 1.0f : 0.5f;
  return (allow_neg && (rng() & 2)) ? -s : s;
}

Bytes random_weights(WType w, int64_t n, std::mt19937& rng, Mode mode) {
  const int64_t bs = w_block_size(w), bb = w_block_bytes(w);
  Bytes out(static_cast<size_t>(n / bs * bb));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  if (bs == 1) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = mode == Mode::Exact ? static_cast<float>(static_cast<int>(rng() % 17) - 8) : nd(rng) * 0.05f;
      if (w == WType::F32) std::memcpy(&out[4 * i], &v, 4);
      else put16(&out[2 * i], w == WType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v));
    }
    return out;
  }
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> ud(-12.0f, -4.0f);
  for (int64_t b = 0; b < n / bs; ++b) {
    for (int off : f16_fields(w)) {
      float s;
      if (mode == Mode::Exact) s = pow2_scale(rng, true);
      else s = std::exp2(ud(rng)) * ((rng() & 1) ? 1.0f : -1.0f);
      put16(&out[static_cast<size_t>(b * bb + off)], fp32_to_fp16(s));
    }
  }
  return out;
}

// Activations: exact mode builds blocks directly (sparse -1/0/1 quants, power-of-two scales);
// realistic mode quantizes N(0,1) floats with the reference quantizer.
Bytes random_acts(AType at, int64_t n, std::mt19937& rng, Mode mode) {
  Bytes out(static_cast<size_t>(act_row_bytes(at, n)));
  if (mode == Mode::Realistic) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = nd(rng);
    table_ref().quantize[static_cast<int>(at)](x.data(), out.data(), n);
    return out;
  }
  auto small = [&rng]() -> int {
    const unsigned r = rng() % 16;
    return r == 0 ? -1 : r == 1 ? 1 : 0;
  };
  switch (at) {
    case AType::F32:
    case AType::F16:
    case AType::BF16: {
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = static_cast<float>(static_cast<int>(rng() % 17) - 8);
      table_ref().quantize[static_cast<int>(at)](x.data(), out.data(), n);
      break;
    }
    case AType::Q8_0: {
      auto* b = reinterpret_cast<block_q8_0*>(out.data());
      for (int64_t i = 0; i < n / 32; ++i) {
        b[i].d = fp32_to_fp16(pow2_scale(rng, false));
        for (auto& q : b[i].qs) q = static_cast<int8_t>(small());
      }
      break;
    }
    case AType::Q8_1: {
      auto* b = reinterpret_cast<block_q8_1*>(out.data());
      for (int64_t i = 0; i < n / 32; ++i) {
        const float d = pow2_scale(rng, false);
        int s = 0;
        for (auto& q : b[i].qs) s += (q = static_cast<int8_t>(small()));
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16(d * static_cast<float>(s));
      }
      break;
    }
    case AType::Q8_K: {
      auto* b = reinterpret_cast<block_q8_K*>(out.data());
      for (int64_t i = 0; i < n / QK_K; ++i) {
        b[i].d = pow2_scale(rng, true);
        for (auto& q : b[i].qs) q = static_cast<int8_t>(small());
        for (int g = 0; g < 16; ++g) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += b[i].qs[16 * g + l];
          b[i].bsums[g] = static_cast<int16_t>(s);
        }
      }
      break;
    }
    default: break;
  }
  return out;
}

std::vector<int64_t> lengths_for(WType w) {
  const int64_t bs = w_block_size(w);
  if (bs == 1) return {1, 7, 16, 33, 300, 1000, 4096};
  return {bs, 3 * bs, 7 * bs, 4096};
}

class IsaVsRef : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    const Isa isa = GetParam();
    if (!isa_compiled(isa)) GTEST_SKIP() << "ISA " << isa_name(isa) << " is not compiled into this binary";
    if (!isa_runnable(isa))
      GTEST_SKIP() << "this CPU cannot run ISA " << isa_name(isa) << " (it has: " << cpu_feature_string() << ")";
    kt_ = table_for(isa);
  }
  const KernelTable* kt_ = nullptr;
};

constexpr WType kAllW[] = {WType::F32,  WType::F16,  WType::BF16, WType::Q4_0, WType::Q4_1,
                           WType::Q5_0, WType::Q5_1, WType::Q8_0, WType::Q2_K, WType::Q3_K,
                           WType::Q4_K, WType::Q5_K, WType::Q6_K};

const char* wname(WType w) {
  static const char* names[] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"};
  return names[static_cast<int>(w)];
}

GgmlType gg_of(WType w) {
  static const GgmlType t[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                               GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  return t[static_cast<int>(w)];
}

TEST_P(IsaVsRef, ExactModeBitIdentical) {
  std::mt19937 rng(7);
  for (WType w : kAllW) {
    const AType at = vec_dot_type(w);
    for (int64_t n : lengths_for(w)) {
      for (int rep = 0; rep < 8; ++rep) {
        const Bytes wb = random_weights(w, n, rng, Mode::Exact);
        const Bytes ab = random_acts(at, n, rng, Mode::Exact);
        const float r = run_dot(table_ref(), w, wb.data(), ab.data(), n);
        const float s = run_dot(*kt_, w, wb.data(), ab.data(), n);
        ASSERT_EQ(r, s) << wname(w) << " n=" << n << " rep " << rep;
      }
    }
  }
}

TEST_P(IsaVsRef, ToleranceModeWithinBound) {
  std::mt19937 rng(11);
  for (WType w : kAllW) {
    const AType at = vec_dot_type(w);
    int outside = 0;
    double worst = 0;
    for (int64_t n : lengths_for(w)) {
      for (int rep = 0; rep < 8; ++rep) {
        const Bytes wb = random_weights(w, n, rng, Mode::Realistic);
        const Bytes ab = random_acts(at, n, rng, Mode::Realistic);
        const float r = run_dot(table_ref(), w, wb.data(), ab.data(), n);
        const float s = run_dot(*kt_, w, wb.data(), ab.data(), n);
        const double S = abs_product_sum(gg_of(w), wb.data(), at, ab.data(), n);
        const double tol = dot_bound(w, n, S);
        if (!same_or_close(r, s, tol)) {
          ++outside;
          ADD_FAILURE() << wname(w) << " n=" << n << " rep " << rep << ": ref " << r << " simd " << s << " bound " << tol;
        }
        if (S > 0) worst = std::max(worst, std::fabs(static_cast<double>(r) - s) / S);
      }
    }
    EXPECT_EQ(outside, 0) << wname(w) << " worst |ref-simd|/S = " << worst;
  }
}

// Edge blocks: all-zero bytes, extreme quants with scale 1, zero and huge scales, +-127 activations.
TEST_P(IsaVsRef, EdgeBlocks) {
  std::mt19937 rng(5);
  for (WType w : kAllW) {
    if (w_block_size(w) == 1) continue;
    const AType at = vec_dot_type(w);
    // 3 blocks, and 8 (a whole step of the one-token Q4_0 / Q8_0 kernels; those need a multiple of 8)
    for (const int64_t n : {3 * w_block_size(w), 8 * w_block_size(w)}) {
      std::vector<std::pair<std::string, Bytes>> ws;
      ws.emplace_back("zero_bytes", Bytes(static_cast<size_t>(n / w_block_size(w) * w_block_bytes(w)), 0));
      for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x88}, uint8_t{0x77}, uint8_t{0x80}}) {
        for (float scale : {1.0f, 0.0f, 65504.0f, -65504.0f}) {
          Bytes b(ws[0].second.size(), fill);
          for (int64_t blk = 0; blk < n / w_block_size(w); ++blk)
            for (int off : f16_fields(w))
              put16(&b[static_cast<size_t>(blk * w_block_bytes(w) + off)], fp32_to_fp16(scale));
          ws.emplace_back("fill_" + std::to_string(fill) + "_scale_" + std::to_string(scale), b);
        }
      }
      std::vector<std::pair<std::string, Bytes>> as;
      for (int q : {127, -127, 0}) {
        for (float d : {1.0f, 0.0f, 30000.0f}) {
          Bytes b(static_cast<size_t>(act_row_bytes(at, n)));
          std::vector<float> x(static_cast<size_t>(n), static_cast<float>(q) * d);
          for (size_t i = 1; i < x.size(); i += 2) x[i] = -x[i] * 0.5f;
          table_ref().quantize[static_cast<int>(at)](x.data(), b.data(), n);
          std::string name = "q";  // appended, not operator+: g++ 12 warns falsely (-Wrestrict) on the chain here
          name.append(std::to_string(q)).append("_d").append(std::to_string(d));
          as.emplace_back(name, b);
        }
      }
      as.emplace_back("random", random_acts(at, n, rng, Mode::Realistic));
      for (const auto& [wn, wb] : ws) {
        for (const auto& [an, ab] : as) {
          const float r = run_dot(table_ref(), w, wb.data(), ab.data(), n);
          const float s = run_dot(*kt_, w, wb.data(), ab.data(), n);
          const double S = abs_product_sum(gg_of(w), wb.data(), at, ab.data(), n);
          EXPECT_TRUE(same_or_close(r, s, dot_bound(w, n, S)))
              << wname(w) << " n=" << n << " " << wn << " x " << an << ": ref " << r << " simd " << s;
        }
      }
    }
  }
}

// A rectangle call (several rows, several tokens, tiles of 4 plus remainders) gives, for every
// output, the bits of the 1x1 call.
TEST_P(IsaVsRef, RectangleEqualsSingleCalls) {
  std::mt19937 rng(3);
  // 11 tokens run in groups of 4, 4 and 3; 5 in 4 and 1, the last token taking the one-token paths
  // from a token row other than 0; 1 token takes them alone (for Q4_0/Q8_0 in the file's layout, 4
  // rows per pass: here rows 1-4, then 5-6 as a ragged pass; for Q4_K/Q6_K one row at a time)
  // from a first row other than 0.
  for (const int64_t toks : {int64_t{11}, int64_t{5}, int64_t{1}}) {
    for (WType w : kAllW) {
      const AType at = vec_dot_type(w);
      // K-quants: 4 superblocks, a whole step of the one-token Q4_K / Q6_K kernels
      const int64_t n = w_block_size(w) == 1 ? 300 : w_block_size(w) == 256 ? 1024 : 512;
      const int64_t rows = 7;
      const Bytes wb = random_weights(w, n * rows, rng, Mode::Realistic);
      const Bytes ab = random_acts(at, n * toks, rng, Mode::Realistic);
      const int64_t wrow = n / w_block_size(w) * w_block_bytes(w), arow = act_row_bytes(at, n);
      std::vector<float> y(static_cast<size_t>(rows * toks), -1.0f);
      DotArgs p{reinterpret_cast<const std::byte*>(wb.data()), wrow, 1, rows, reinterpret_cast<const std::byte*>(ab.data()),
                arow, toks, y.data(), rows, n};
      kt_->dot[static_cast<int>(w)](p);
      for (int64_t t = 0; t < toks; ++t) {
        EXPECT_EQ(y[static_cast<size_t>(t * rows)], -1.0f);  // row 0 not in [r0, r1): untouched
        for (int64_t r = 1; r < rows; ++r) {
          const float one = run_dot(*kt_, w, wb.data() + r * wrow, ab.data() + t * arow, n);
          ASSERT_EQ(bits(y[static_cast<size_t>(t * rows + r)]), bits(one)) << wname(w) << " r " << r << " t " << t;
        }
      }
    }
  }
}

// Quantizers of every table agree with the reference bytes on random rows, including exact ties.
TEST_P(IsaVsRef, QuantizersMatchReference) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (AType at : {AType::F16, AType::BF16, AType::Q8_0, AType::Q8_1, AType::Q8_K}) {
    for (int64_t n : {256, 768, 4096}) {
      for (int rep = 0; rep < 6; ++rep) {
        std::vector<float> x(static_cast<size_t>(n));
        for (size_t i = 0; i < x.size(); ++i) {
          switch (rep) {
            case 0: x[i] = nd(rng); break;
            case 1: x[i] = static_cast<float>(static_cast<int>(rng() % 255) - 127) + 0.5f; break;  // ties
            case 2: x[i] = (i % 32 == 0) ? 127.0f : static_cast<float>(static_cast<int>(rng() % 254) - 127) + 0.5f; break;
            case 3: x[i] = nd(rng) * 1e-9f; break;
            case 4: x[i] = 0.0f; break;
            default: x[i] = nd(rng) * 1e4f; break;
          }
        }
        Bytes r(static_cast<size_t>(act_row_bytes(at, n))), s(r.size());
        table_ref().quantize[static_cast<int>(at)](x.data(), r.data(), n);
        kt_->quantize[static_cast<int>(at)](x.data(), s.data(), n);
        ASSERT_EQ(r, s) << "act type " << static_cast<int>(at) << " n=" << n << " rep " << rep;
      }
    }
  }
}

// Bias + GELU: every table gives the reference bits (the GELU itself is a table lookup), including
// around the +-10 cut-offs and in the scalar tails.
TEST_P(IsaVsRef, BiasGeluMatchesReference) {
  if (!kt_->bias_gelu) GTEST_SKIP() << "no bias_gelu entry (the forward pass uses the reference's)";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  const uint16_t* table = ops::gelu_fp16_table();
  for (int64_t n : {1, 7, 8, 29, 256, 4096}) {
    std::vector<float> x(static_cast<size_t>(n)), b(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = (i % 5 == 0) ? std::nextafter(10.0f, static_cast<float>(rng() % 3) * 10.0f) * ((i % 2) ? -1.0f : 1.0f) : nd(rng);
      b[i] = (i % 5 == 0) ? 0.0f : nd(rng) * 0.1f;
    }
    std::vector<float> r = x, s = x;
    table_ref().bias_gelu(r.data(), b.data(), n, table);
    kt_->bias_gelu(s.data(), b.data(), n, table);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(std::memcmp(&r[i], &s[i], 4), 0) << "n=" << n << " i=" << i << " x=" << x[i];
  }
  // and the reference against ops::gelu after the bias
  std::vector<float> x(300), b(300);
  for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng), b[i] = nd(rng);
  std::vector<float> r = x, e = x;
  table_ref().bias_gelu(r.data(), b.data(), 300, table);
  for (size_t i = 0; i < e.size(); ++i) e[i] += b[i];
  ops::gelu(e.data(), 300);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(r[i], e[i]) << i;
}

// LM-head screening: the quantizer gives the reference's codes and stats bit for bit on every
// table (odd lengths for the scalar tails; zero rows, subnormals, +-65504, exact halves), refuses
// Inf and NaN anywhere in the row, and every code is within err of the value. The screen dot is
// within the rounding bound head_screen.hpp relies on, against a double evaluation.
TEST_P(IsaVsRef, ScreenQuantizeMatchesReference) {
  if (!kt_->screen_quantize) GTEST_SKIP() << "no screen_quantize entry (the screen uses the reference's)";
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (int64_t n : {1, 7, 8, 9, 31, 64, 100, 1024, 2049}) {
    for (int kind = 0; kind < 6; ++kind) {
      std::vector<uint16_t> w(static_cast<size_t>(n));
      for (size_t i = 0; i < w.size(); ++i) {
        float v = nd(rng);
        if (kind == 1) v = 0.0f;                                              // an all-zero row
        if (kind == 2) v = std::ldexp(nd(rng), -20);                          // subnormal fp16
        if (kind == 3) v = (i % 3 == 0) ? ((i % 2) ? 65504.0f : -65504.0f) : nd(rng) * 1000.0f;
        if (kind == 4) v = static_cast<float>(static_cast<int>(i % 255) - 127) * 0.5f;  // exact halves of codes
        w[i] = fp32_to_fp16(v);
      }
      if (kind == 5) w[static_cast<size_t>(rng() % static_cast<uint32_t>(n))] = 0x3C00;  // a 1.0 among the small values
      std::vector<int8_t> qr(w.size()), qs(w.size(), 99);
      ScreenRowStats sr{}, ss{};
      ASSERT_TRUE(table_ref().screen_quantize(w.data(), qr.data(), n, &sr));
      ASSERT_TRUE(kt_->screen_quantize(w.data(), qs.data(), n, &ss));
      ASSERT_EQ(qr, qs) << "n=" << n << " kind=" << kind;
      ASSERT_EQ(std::memcmp(&sr, &ss, sizeof sr), 0) << "n=" << n << " kind=" << kind;
      for (size_t i = 0; i < w.size(); ++i) {
        const double v = fp16_to_fp32(w[i]);
        ASSERT_LE(std::fabs(v - static_cast<double>(sr.scale) * qr[i]), static_cast<double>(sr.err) * (1 + 1e-6)) << i;
        ASSERT_LE(std::fabs(static_cast<double>(qr[i])), 127.0);
      }
      ASSERT_LE(sr.err, sr.scale * 0.5f * (1 + 1e-5f)) << "n=" << n << " kind=" << kind;
      for (uint16_t bad : {uint16_t{0x7C00}, uint16_t{0xFC00}, uint16_t{0x7E00}}) {  // +Inf, -Inf, NaN
        std::vector<uint16_t> wb = w;
        wb[static_cast<size_t>(rng() % static_cast<uint32_t>(n))] = bad;
        ASSERT_FALSE(kt_->screen_quantize(wb.data(), qs.data(), n, &ss)) << "n=" << n;
      }
    }
  }
}

TEST_P(IsaVsRef, ScreenDotWithinBound) {
  if (!kt_->screen_dot) GTEST_SKIP() << "no screen_dot entry (the screen uses the reference's)";
  std::mt19937 rng(19);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : {1, 8, 15, 16, 33, 100, 1024, 2050}) {
    const int64_t rows = 37;
    std::vector<int8_t> q(static_cast<size_t>(rows * n));
    for (auto& c : q) c = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    std::vector<float> scale(static_cast<size_t>(rows)), x(static_cast<size_t>(n));
    for (auto& v : scale) v = std::fabs(nd(rng)) * 0.01f;
    scale[3] = 0.0f;
    for (auto& v : x) v = fp16_to_fp32(fp32_to_fp16(nd(rng) * 3.0f));  // fp16 values, as the screen gives
    std::vector<float> out(static_cast<size_t>(rows), -1.0f);
    kt_->screen_dot(ScreenDotArgs{q.data(), scale.data(), x.data(), n, 5, rows, out.data()});
    for (int64_t r = 0; r < rows; ++r) {
      if (r < 5) {
        ASSERT_EQ(out[static_cast<size_t>(r)], -1.0f) << "row outside [r0, r1) written";
        continue;
      }
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += static_cast<double>(q[static_cast<size_t>(r * n + i)]) * x[static_cast<size_t>(i)];
        mag += std::fabs(static_cast<double>(q[static_cast<size_t>(r * n + i)]) * x[static_cast<size_t>(i)]);
      }
      const double s = scale[static_cast<size_t>(r)];
      const double bound = (static_cast<double>(n + 4) * std::ldexp(1.0, -24) * mag + std::ldexp(1.0, -24) * std::fabs(exact)) * s * 1.01;
      ASSERT_LE(std::fabs(out[static_cast<size_t>(r)] - s * exact), bound) << "n=" << n << " r=" << r;
    }
  }
}

// Attention over an fp16 cache: every table within a small bound of the reference, and the
// reference within a bound of a double-precision evaluation of the same formula.
TEST_P(IsaVsRef, AttentionF16WithinBound) {
  if (!kt_->attn_f16) GTEST_SKIP() << "no attn_f16 entry (the forward pass uses the reference's)";
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // slope 8: scores fall thousands below the maximum, so most exponentials underflow to 0
  for (const float slope : {0.25f, 8.0f})
  for (int64_t d : {4, 8, 24, 64, 128, 80}) {
    for (int64_t n_kv : {1, 3, 4, 5, 8, 9, 17, 200, 1001}) {
      std::vector<float> q(static_cast<size_t>(d));
      std::vector<uint16_t> k(static_cast<size_t>(n_kv * d)), v(k.size());
      for (float& f : q) f = nd(rng) * 2.0f;
      for (size_t i = 0; i < k.size(); ++i) k[i] = fp32_to_fp16(nd(rng)), v[i] = fp32_to_fp16(nd(rng));
      const int64_t pos = n_kv - 1;
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<float> sc(static_cast<size_t>(n_kv)), r(static_cast<size_t>(d)), s(r.size());
      AttnArgs a{q.data(), k.data(), v.data(), n_kv, d, pos, scale, slope, sc.data(), r.data()};
      table_ref().attn_f16(a);
      a.out = s.data();
      kt_->attn_f16(a);
      // double-precision evaluation
      std::vector<double> e(static_cast<size_t>(n_kv)), want(static_cast<size_t>(d), 0.0);
      double mx = -1e300, sum = 0.0;
      for (int64_t j = 0; j < n_kv; ++j) {
        double dot = 0.0;
        for (int64_t i = 0; i < d; ++i)
          dot += static_cast<double>(fp16_to_fp32(fp32_to_fp16(q[static_cast<size_t>(i)]))) * fp16_to_fp32(k[static_cast<size_t>(j * d + i)]);
        e[static_cast<size_t>(j)] = dot * scale + slope * static_cast<double>(j - pos);
        mx = std::max(mx, e[static_cast<size_t>(j)]);
      }
      for (double& x : e) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < n_kv; ++j)
        for (int64_t i = 0; i < d; ++i)
          want[static_cast<size_t>(i)] += e[static_cast<size_t>(j)] / sum * fp16_to_fp32(v[static_cast<size_t>(j * d + i)]);
      for (int64_t i = 0; i < d; ++i) {
        const size_t u = static_cast<size_t>(i);
        EXPECT_NEAR(r[u], want[u], 2e-5) << "ref d=" << d << " n_kv=" << n_kv << " i=" << i;
        EXPECT_NEAR(s[u], r[u], 2e-5) << "isa d=" << d << " n_kv=" << n_kv << " i=" << i;
      }
    }
  }
}

// Attention over a q8_0 cache: every table within a small bound of the reference, and the reference
// within a bound of a double-precision evaluation of the same formula on the same blocks (the query
// quantized by the reference quantizer, exact integer dots, V dequantized). Rows include all-zero
// blocks (scale 0), blocks at the int8 extremes, huge and tiny magnitudes; head dims above 256 take
// the reference path in the SIMD tables.
TEST_P(IsaVsRef, AttentionQ8WithinBound) {
  if (!kt_->attn_q8_0) GTEST_SKIP() << "no attn_q8_0 entry (the forward pass uses the reference's)";
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const auto quantize = table_ref().quantize[static_cast<int>(AType::Q8_0)];
  for (const float slope : {0.25f, 8.0f})
  for (int64_t d : {32, 64, 96, 128, 256, 288}) {
    const int64_t nb = d / 32;
    for (int64_t n_kv : {1, 3, 7, 8, 9, 17, 200, 1001}) {
      std::vector<float> q(static_cast<size_t>(d)), row(static_cast<size_t>(d));
      for (float& f : q) f = nd(rng) * 2.0f;
      std::vector<block_q8_0> k(static_cast<size_t>(n_kv * nb)), v(k.size());
      for (int64_t j = 0; j < n_kv; ++j) {
        for (auto* cache : {&k, &v}) {
          // keys up to ~25 (scores of a few hundred: their float rounding stays below the bound),
          // values up to ~3e3
          const float big = cache == &k ? 8.0f : 1e3f;
          const unsigned kind = rng() % 8;
          for (float& f : row) {
            f = kind == 0 ? 0.0f : kind == 1 ? ((rng() & 1) ? 3.0f : -3.0f) : kind == 2 ? nd(rng) * big : kind == 3 ? nd(rng) * 1e-6f : nd(rng);
          }
          quantize(row.data(), cache->data() + j * nb, d);
        }
      }
      const int64_t pos = n_kv - 1;
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<float> sc(static_cast<size_t>(n_kv)), r(static_cast<size_t>(d)), s(r.size());
      AttnQ8Args a{q.data(), k.data(), v.data(), n_kv, d, pos, scale, slope, sc.data(), r.data()};
      table_ref().attn_q8_0(a);
      a.out = s.data();
      kt_->attn_q8_0(a);
      // double-precision evaluation
      std::vector<block_q8_0> qb(static_cast<size_t>(nb));
      quantize(q.data(), qb.data(), d);
      std::vector<double> e(static_cast<size_t>(n_kv)), want(static_cast<size_t>(d), 0.0);
      double mx = -1e300, sum = 0.0;
      for (int64_t j = 0; j < n_kv; ++j) {
        double dot = 0.0;
        for (int64_t b = 0; b < nb; ++b) {
          const block_q8_0& kb = k[static_cast<size_t>(j * nb + b)];
          int64_t isum = 0;
          for (int i = 0; i < 32; ++i) isum += kb.qs[i] * qb[static_cast<size_t>(b)].qs[i];
          dot += static_cast<double>(isum) * fp16_to_fp32(kb.d) * fp16_to_fp32(qb[static_cast<size_t>(b)].d);
        }
        e[static_cast<size_t>(j)] = dot * scale + slope * static_cast<double>(j - pos);
        mx = std::max(mx, e[static_cast<size_t>(j)]);
      }
      for (double& x : e) sum += (x = std::exp(x - mx));
      double vmax = 0;
      for (int64_t j = 0; j < n_kv; ++j)
        for (int64_t i = 0; i < d; ++i) {
          const block_q8_0& vb = v[static_cast<size_t>(j * nb + i / 32)];
          const double val = static_cast<double>(fp16_to_fp32(vb.d)) * vb.qs[i % 32];
          want[static_cast<size_t>(i)] += e[static_cast<size_t>(j)] / sum * val;
          vmax = std::max(vmax, std::fabs(val));
        }
      const double tol = 2e-5 * std::max(1.0, vmax / 10.0);  // attn_f16's bound for values up to 10, relative above
      for (int64_t i = 0; i < d; ++i) {
        const size_t u = static_cast<size_t>(i);
        ASSERT_NEAR(r[u], want[u], tol) << "ref d=" << d << " n_kv=" << n_kv << " i=" << i;
        ASSERT_NEAR(s[u], r[u], tol) << "isa d=" << d << " n_kv=" << n_kv << " i=" << i;
      }
    }
  }
}

// ALiBi's skipped keys: attention from ops::alibi_first_key's key on (positions shifted alike) gives
// the same bits as attention over every key, on the reference and this table, fp16 and q8_0 caches.
// Keys are random, or along +q or -q at the largest norm (the scores the bound allows, early keys
// high and the current one low); slopes are BLOOM's steepest and flatter ones.
TEST_P(IsaVsRef, AlibiSkipGivesTheSameBits) {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const auto quantize = table_ref().quantize[static_cast<int>(AType::Q8_0)];
  int skipped_cases = 0;
  for (const float slope : {0.70710678f, 0.25f, 0.0625f})
  for (int64_t d : {32, 64, 128, 96}) {
    for (int64_t n_kv : {9, 300, 777, 2048}) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      const float qmag = 0.5f + static_cast<float>(rng() % 8);
      std::vector<float> q(static_cast<size_t>(d)), kf(static_cast<size_t>(n_kv * d)), vf(kf.size());
      for (float& f : q) f = nd(rng) * qmag;
      double q_norm = 0;
      for (float f : q) q_norm += static_cast<double>(f) * f;
      q_norm = std::sqrt(q_norm);
      // Every key at the same norm, so the first key read is known before the keys are drawn.
      // Tight cases: the keys read point along -q (the maximum score as low as the bound allows)
      // and the skipped ones along +q (as high as it allows). Others: a mix of +q, -q and random.
      const float kmax = 1.0f + static_cast<float>(rng() % 16);
      const double key_norm_max = kmax;
      const int64_t pos = n_kv - 1;
      const int64_t first = ops::alibi_first_key(pos, slope, scale, q_norm, key_norm_max);
      const bool tight = rng() % 2 == 0;
      for (int64_t j = 0; j < n_kv; ++j) {
        float* k = kf.data() + j * d;
        const unsigned kind = tight ? (j < first ? 1 : 0) : rng() % 4;
        if (kind <= 1) {
          const float sign = kind == 0 ? -1.0f : 1.0f;
          for (int64_t i = 0; i < d; ++i) k[i] = sign * q[static_cast<size_t>(i)] / static_cast<float>(q_norm) * kmax * 0.999f;
        } else {
          double n2 = 0;
          for (int64_t i = 0; i < d; ++i) {
            k[i] = nd(rng);
            n2 += static_cast<double>(k[i]) * k[i];
          }
          for (int64_t i = 0; i < d; ++i) k[i] *= kmax * 0.999f / static_cast<float>(std::sqrt(n2));
        }
        for (int64_t i = 0; i < d; ++i) vf[static_cast<size_t>(j * d + i)] = nd(rng) * 3.0f;
      }
      ASSERT_EQ(first % 8, 0);
      ASSERT_LE(first, pos);
      skipped_cases += first > 0;
      // fp16 cache
      std::vector<uint16_t> k16(kf.size()), v16(vf.size());
      for (size_t i = 0; i < kf.size(); ++i) k16[i] = fp32_to_fp16(kf[i]), v16[i] = fp32_to_fp16(vf[i]);
      // q8_0 cache
      const int64_t nb = d / 32;
      std::vector<block_q8_0> k8(static_cast<size_t>(n_kv * nb)), v8(k8.size());
      for (int64_t j = 0; j < n_kv; ++j) {
        quantize(kf.data() + j * d, k8.data() + j * nb, d);
        quantize(vf.data() + j * d, v8.data() + j * nb, d);
      }
      for (const KernelTable* t : {&table_ref(), kt_}) {
        std::vector<float> sc(static_cast<size_t>(n_kv)), all(static_cast<size_t>(d)), part(all.size());
        if (t->attn_f16) {
          t->attn_f16(AttnArgs{q.data(), k16.data(), v16.data(), n_kv, d, pos, scale, slope, sc.data(), all.data()});
          t->attn_f16(AttnArgs{q.data(), k16.data() + first * d, v16.data() + first * d, n_kv - first, d, pos - first, scale, slope,
                               sc.data(), part.data()});
          ASSERT_EQ(std::memcmp(all.data(), part.data(), all.size() * sizeof(float)), 0)
              << t->name << " f16 d=" << d << " n_kv=" << n_kv << " slope=" << slope << " first=" << first;
        }
        if (t->attn_q8_0) {
          t->attn_q8_0(AttnQ8Args{q.data(), k8.data(), v8.data(), n_kv, d, pos, scale, slope, sc.data(), all.data()});
          t->attn_q8_0(AttnQ8Args{q.data(), k8.data() + first * nb, v8.data() + first * nb, n_kv - first, d, pos - first, scale, slope,
                                  sc.data(), part.data()});
          ASSERT_EQ(std::memcmp(all.data(), part.data(), all.size() * sizeof(float)), 0)
              << t->name << " q8_0 d=" << d << " n_kv=" << n_kv << " slope=" << slope << " first=" << first;
        }
      }
    }
  }
  EXPECT_GE(skipped_cases, 12) << "too few cases skip any key to test anything";
}

// alibi_first_key's edges: no skipping without a positive finite slope or with an unbounded key;
// positions too close to the start keep every key.
TEST(AlibiFirstKey, Edges) {
  EXPECT_EQ(ops::alibi_first_key(5000, 0.0f, 0.125f, 10, 10), 0);
  EXPECT_EQ(ops::alibi_first_key(5000, -1.0f, 0.125f, 10, 10), 0);
  EXPECT_EQ(ops::alibi_first_key(5000, std::nanf(""), 0.125f, 10, 10), 0);
  EXPECT_EQ(ops::alibi_first_key(5000, 0.5f, 0.125f, 10, INFINITY), 0);
  EXPECT_EQ(ops::alibi_first_key(5000, 0.5f, 0.125f, NAN, 10), 0);
  EXPECT_EQ(ops::alibi_first_key(100, 0.5f, 0.125f, 10, 10), 0);  // reach 2 * 15.6 + 110 over 0.5: 282 keys
  const int64_t f = ops::alibi_first_key(5000, 0.5f, 0.125f, 10, 10);
  EXPECT_EQ(f, (5000 - 282 - 1) / 8 * 8);
}

INSTANTIATE_TEST_SUITE_P(Tables, IsaVsRef, ::testing::Values(Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot),
                         [](const ::testing::TestParamInfo<Isa>& p) {
                           std::string s(isa_name(p.param));
                           s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
                           return s;
                         });

}  // namespace
