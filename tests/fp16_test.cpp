// fp16 / bf16 conversions: bit-exact against ggml's fixtures, exhaustive round trips, and (where the
// CPU has F16C) against the hardware conversion on many random floats.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bloomz/cpu_features.hpp"
#include "bloomz/fp16.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using nlohmann::json;

json load(const std::string& name) {
  std::ifstream in(std::string(BLOOMZ_TEST_DATA) + "/kernels/" + name);
  if (!in) throw std::runtime_error("cannot open test data " + name);
  return json::parse(in);
}

std::vector<uint16_t> hex_u16(const std::string& hex) {
  std::vector<uint16_t> out(hex.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const unsigned lo = std::stoul(hex.substr(4 * i, 2), nullptr, 16);
    const unsigned hi = std::stoul(hex.substr(4 * i + 2, 2), nullptr, 16);
    out[i] = static_cast<uint16_t>(lo | (hi << 8));
  }
  return out;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void check_type(const char* file, float (*to32)(uint16_t), uint16_t (*from32)(float)) {
  const json j = load(file);
  size_t n_deq = 0, n_q = 0;
  for (const auto& c : j["dequant"]) {
    const std::vector<uint16_t> h = hex_u16(c["hex"]);
    const auto& out = c["out"];
    ASSERT_EQ(h.size(), out.size());
    for (size_t i = 0; i < h.size(); ++i, ++n_deq)
      ASSERT_EQ(bits(to32(h[i])), bits(out[i].get<float>())) << file << " pattern 0x" << std::hex << h[i];
  }
  for (const auto& c : j["quantize"]) {
    const std::vector<uint16_t> ref = hex_u16(c["ref_hex"]);
    const auto& x = c["x"];
    ASSERT_EQ(ref.size(), x.size());
    for (size_t i = 0; i < ref.size(); ++i, ++n_q)
      ASSERT_EQ(from32(x[i].get<float>()), ref[i]) << file << " row " << c["name"] << " index " << i;
  }
  EXPECT_GT(n_deq, 1000u);
  EXPECT_GT(n_q, 1000u);
}

TEST(Fp16, MatchesGgmlFixtures) { check_type("f16.json", bloomz::fp16_to_fp32, bloomz::fp32_to_fp16); }
TEST(Bf16, MatchesGgmlFixtures) { check_type("bf16.json", bloomz::bf16_to_fp32, bloomz::fp32_to_bf16); }

TEST(Fp16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bloomz::fp16_to_fp32(static_cast<uint16_t>(h));
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    if (nan) {
      EXPECT_TRUE(f != f);
      continue;
    }
    ASSERT_EQ(bloomz::fp32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(Bf16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bloomz::bf16_to_fp32(static_cast<uint16_t>(h));
    if (f != f) continue;
    ASSERT_EQ(bloomz::fp32_to_bf16(f), h) << std::hex << h;
  }
}

TEST(Fp16, HalfwayCasesRoundToEven) {
  // 1 + 2^-11 lies halfway between 1 and the next half: ties to the even (1.0).
  EXPECT_EQ(bloomz::fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);
  EXPECT_EQ(bloomz::fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_EQ(bloomz::fp32_to_fp16(65520.0f), 0x7C00);    // rounds to inf
  EXPECT_EQ(bloomz::fp32_to_fp16(65519.996f), 0x7BFF);  // stays finite
  EXPECT_EQ(bloomz::fp32_to_fp16(0x1p-25f), 0x0000);    // half the min subnormal: to even (0)
  EXPECT_EQ(bloomz::fp32_to_fp16(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(bloomz::fp32_to_fp16(-0.0f), 0x8000);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hw_fp32_to_fp16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
__attribute__((target("f16c"))) float hw_fp16_to_fp32(uint16_t h) { return _cvtsh_ss(h); }
#endif

TEST(Fp16, AgreesWithF16cOnRandomFloats) {
#if defined(__x86_64__)
  if (!bloomz::cpu_features().f16c) GTEST_SKIP() << "this CPU has no F16C";
  for (uint32_t h = 0; h < 65536; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) continue;
    ASSERT_EQ(bits(bloomz::fp16_to_fp32(static_cast<uint16_t>(h))), bits(hw_fp16_to_fp32(static_cast<uint16_t>(h))));
  }
  std::mt19937 rng(12345);
  for (int i = 0; i < 4000000; ++i) {
    uint32_t u = rng();
    // concentrate on the half range (exponents 100..145) but also cover everything
    if (i % 4 != 0) u = (u & 0x807FFFFFu) | ((100u + (u >> 7) % 46u) << 23);
    const float f = from_bits(u);
    if (f != f) continue;
    ASSERT_EQ(bloomz::fp32_to_fp16(f), hw_fp32_to_fp16(f)) << std::hex << u;
  }
#else
  GTEST_SKIP() << "not an x86-64 build";
#endif
}

}  // namespace
