// The matmul driver: identical bits for any thread count, for any batch size T (row t of a T = 64
// batch equals the same row computed with T = 1 and T = 3), on every runnable ISA and every type.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/fp16.hpp"
#include "bloomz/matmul.hpp"
#include "bloomz/parallel.hpp"
#include "kernels/kernels.hpp"
#include "kernels/repack.hpp"
#include "kernels/row_regions.hpp"

namespace {

using namespace bloomz;

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

struct Matrix {
  std::vector<std::byte> bytes;
  TensorView view;
};

// Random valid weights: random quant bytes, realistic fp16 scales; row_bytes padded by `pad`.
Matrix random_matrix(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng, int64_t pad = 0) {
  kernels::WType w{};
  EXPECT_TRUE(kernels::wtype_of(t, w));
  const int64_t bs = kernels::w_block_size(w), bb = kernels::w_block_bytes(w);
  const int64_t row_bytes = cols / bs * bb + pad;
  Matrix m;
  m.bytes.resize(static_cast<size_t>(rows * row_bytes));
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (auto& b : m.bytes) b = static_cast<std::byte>(rng());
  for (int64_t r = 0; r < rows; ++r) {
    std::byte* row = m.bytes.data() + r * row_bytes;
    if (bs == 1) {
      for (int64_t i = 0; i < cols; ++i) {
        const float v = nd(rng);
        if (t == GgmlType::F32) std::memcpy(row + 4 * i, &v, 4);
        else {
          const uint16_t h = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
          std::memcpy(row + 2 * i, &h, 2);
        }
      }
      continue;
    }
    std::vector<int> offs;
    switch (t) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: offs = {0}; break;
      case GgmlType::Q2_K: offs = {80, 82}; break;
      case GgmlType::Q3_K: offs = {108}; break;
      case GgmlType::Q6_K: offs = {208}; break;
      default: offs = {0, 2}; break;
    }
    for (int64_t b = 0; b < cols / bs; ++b)
      for (int off : offs) {
        const uint16_t h = fp32_to_fp16(std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, -8 - static_cast<int>(rng() % 4)));
        std::memcpy(row + b * bb + off, &h, 2);
      }
  }
  m.view = TensorView{t, cols, rows, row_bytes, m.bytes.data()};
  return m;
}

std::vector<float> random_acts(int64_t n_tok, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * cols));
  for (auto& v : x) v = nd(rng);
  return x;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

class MatmulDeterminism : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulDeterminism, ThreadsAndBatchSizeDoNotChangeBits) {
  const GgmlType t = GetParam();
  std::mt19937 rng(static_cast<unsigned>(t) + 100);
  const int64_t rows = 77, cols = 512, T = 64;
  const Matrix m = random_matrix(t, rows, cols, rng, t == GgmlType::F16 ? 6 : 0);
  const std::vector<float> x = random_acts(T, cols, rng);
  for (Isa isa : usable_isas()) {
    MatmulWorkspace ws;
    set_num_threads(1);
    std::vector<float> y1(static_cast<size_t>(T * rows));
    matmul(m.view, x.data(), T, y1.data(), ws, isa);
    for (int th : {2, 3, 7}) {
      set_num_threads(th);
      std::vector<float> y(static_cast<size_t>(T * rows), NAN);
      matmul(m.view, x.data(), T, y.data(), ws, isa);
      ASSERT_TRUE(same_bits(y.data(), y1.data(), y.size())) << isa_name(isa) << " threads " << th;
    }
    set_num_threads(2);
    for (int64_t t0 : {int64_t{0}, int64_t{5}, int64_t{60}, int64_t{63}}) {
      std::vector<float> ya(static_cast<size_t>(rows));
      matmul(m.view, x.data() + t0 * cols, 1, ya.data(), ws, isa);
      ASSERT_TRUE(same_bits(ya.data(), y1.data() + t0 * rows, static_cast<size_t>(rows))) << isa_name(isa) << " T=1 token " << t0;
      if (t0 + 3 <= T) {
        std::vector<float> yb(static_cast<size_t>(3 * rows));
        matmul(m.view, x.data() + t0 * cols, 3, yb.data(), ws, isa);
        ASSERT_TRUE(same_bits(yb.data(), y1.data() + t0 * rows, yb.size())) << isa_name(isa) << " T=3 from " << t0;
      }
    }
    // A larger batch than one token chunk, and the default-ISA entry point agrees with its ISA.
    if (isa == active_isa()) {
      std::vector<float> yd(static_cast<size_t>(T * rows));
      matmul(m.view, x.data(), T, yd.data(), ws);
      ASSERT_TRUE(same_bits(yd.data(), y1.data(), yd.size()));
    }
  }
  set_num_threads(1);
}

TEST_P(MatmulDeterminism, MatchesRowDotOfDequantizedWeightsLoosely) {
  // Sanity: the result is close to an f64 product of dequantized weights and raw activations
  // (differences come from activation quantization, so the bound is loose: 2% of sum |w||x|).
  const GgmlType t = GetParam();
  std::mt19937 rng(static_cast<unsigned>(t) + 7);
  const int64_t rows = 9, cols = 256, T = 5;
  const Matrix m = random_matrix(t, rows, cols, rng);
  const std::vector<float> x = random_acts(T, cols, rng);
  MatmulWorkspace ws;
  std::vector<float> y(static_cast<size_t>(T * rows));
  matmul(m.view, x.data(), T, y.data(), ws);
  std::vector<float> wrow(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(t, m.view.row(r), wrow.data(), cols);
    for (int64_t k = 0; k < T; ++k) {
      double s = 0, a = 0;
      for (int64_t i = 0; i < cols; ++i) {
        s += static_cast<double>(wrow[i]) * x[k * cols + i];
        a += std::fabs(static_cast<double>(wrow[i]) * x[k * cols + i]);
      }
      EXPECT_NEAR(y[k * rows + r], s, 0.02 * a + 1e-6) << "row " << r << " tok " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulDeterminism, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& p) {
                           std::string s(type_name(p.param));
                           for (char& c : s) if (c == '_') c = 'x';
                           return s;
                         });

// The x8 layout (kernels/repack.hpp): repacking round-trips, and a matmul over the repacked
// matrix gives exactly the bits of the plain one, on every ISA (native x8 kernels or the unpacking
// fallback), for any T and thread count.
class MatmulX8 : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulX8, RepackRoundTripsAndMatmulIsBitIdentical) {
  const GgmlType t = GetParam();
  std::mt19937 rng(static_cast<unsigned>(t) + 900);
  const bool k_quant = t == GgmlType::Q4_K || t == GgmlType::Q6_K;
  const int64_t rows = 72, cols = k_quant ? 1280 : 1024 + 96, T = 67;
  const Matrix m = random_matrix(t, rows, cols, rng);
  ASSERT_TRUE(kernels::x8_supported(t, cols, rows, m.view.row_bytes));
  EXPECT_FALSE(kernels::x8_supported(t, cols, rows - 4, m.view.row_bytes)) << "rows must be a multiple of 8";
  EXPECT_FALSE(kernels::x8_supported(t, cols, rows, m.view.row_bytes + 2)) << "padded rows are not repacked";
  EXPECT_FALSE(kernels::x8_supported(GgmlType::Q5_K, 256, 8, 176));

  std::vector<std::byte> x8(m.bytes.size()), back(m.bytes.size());
  const int64_t group = 8 * m.view.row_bytes;
  for (int64_t g = 0; g < rows / 8; ++g) {
    kernels::repack_x8(t, m.bytes.data() + g * group, m.view.row_bytes, x8.data() + g * group);
    kernels::unpack_x8(t, x8.data() + g * group, m.view.row_bytes, back.data() + g * group);
  }
  ASSERT_EQ(std::memcmp(back.data(), m.bytes.data(), back.size()), 0);
  ASSERT_NE(std::memcmp(x8.data(), m.bytes.data(), x8.size()), 0);
  // Spot-check the documented layout (repack.hpp) on block 1 of row 3.
  if (t == GgmlType::Q6_K) {
    const std::byte* plain = m.bytes.data() + 3 * m.view.row_bytes + 210;
    const std::byte* blk = x8.data() + 8 * 210;
    EXPECT_EQ(std::memcmp(blk + 2 * 3, plain + 208, 2), 0);            // d
    EXPECT_EQ(blk[16 + 8 * 5 + 3], plain[192 + 5]);                   // scale of half-group 5
    EXPECT_EQ(std::memcmp(blk + 144 + ((2 * 1 + 1) * 8 + 6) * 32 + 4 * 3, plain + 64 + 32 + 24, 4), 0);  // ql (n 1, m 1, j 6)
    EXPECT_EQ(std::memcmp(blk + 1168 + (8 * 1 + 2) * 32 + 4 * 3, plain + 128 + 32 + 8, 4), 0);          // qh (n 1, j 2)
  } else if (t == GgmlType::Q4_K) {
    const std::byte* plain = m.bytes.data() + 3 * m.view.row_bytes + 144;
    const std::byte* blk = x8.data() + 8 * 144;
    EXPECT_EQ(std::memcmp(blk + 2 * 3, plain, 2), 0);                          // d
    EXPECT_EQ(std::memcmp(blk + 16 + 2 * 3, plain + 2, 2), 0);                 // dmin
    EXPECT_EQ(std::memcmp(blk + 32 + 12 * 3, plain + 4, 12), 0);               // scales
    EXPECT_EQ(std::memcmp(blk + 128 + (8 * 2 + 5) * 32 + 4 * 3, plain + 16 + 64 + 20, 4), 0);  // qs (j 2, m 5)
  } else {
    const int64_t bb = t == GgmlType::Q4_0 ? 18 : 34;
    const std::byte* plain = m.bytes.data() + 3 * m.view.row_bytes + bb;
    const std::byte* blk = x8.data() + 8 * bb;
    EXPECT_EQ(std::memcmp(blk + 2 * 3, plain, 2), 0);
    for (int64_t j = 0; j < (bb - 2) / 4; ++j) EXPECT_EQ(std::memcmp(blk + 16 + 32 * j + 4 * 3, plain + 2 + 4 * j, 4), 0);
  }

  TensorView v = m.view;
  v.data = x8.data();
  v.x8 = true;
  const std::vector<float> x = random_acts(T, cols, rng);
  for (Isa isa : usable_isas()) {
    MatmulWorkspace ws;
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{8}, int64_t{16}, T}) {
      set_num_threads(1);
      std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size(), NAN);
      matmul(m.view, x.data(), n, want.data(), ws, isa);
      for (int th : {1, 2, 3}) {
        set_num_threads(th);
        matmul(v, x.data(), n, got.data(), ws, isa);
        ASSERT_TRUE(same_bits(got.data(), want.data(), got.size())) << isa_name(isa) << " T " << n << " threads " << th;
      }
    }
    // One token (the decoding kernels) at the edges of the int8 activations: every element at the
    // block's extreme (quantized to +-127 / -128), alternating signs, and a single large element.
    std::vector<std::vector<float>> edges(3, std::vector<float>(static_cast<size_t>(cols)));
    for (int64_t i = 0; i < cols; ++i) {
      edges[0][static_cast<size_t>(i)] = -1000.0f;
      edges[1][static_cast<size_t>(i)] = i % 2 ? 1000.0f : -1000.0f;
      edges[2][static_cast<size_t>(i)] = i == cols / 2 ? 5000.0f : 0.001f * static_cast<float>(i % 7);
    }
    for (const std::vector<float>& e : edges) {
      std::vector<float> want(static_cast<size_t>(rows)), got(want.size(), NAN);
      matmul(m.view, e.data(), 1, want.data(), ws, isa);
      matmul(v, e.data(), 1, got.data(), ws, isa);
      ASSERT_TRUE(same_bits(got.data(), want.data(), got.size())) << isa_name(isa) << " edge activations";
    }
  }
  set_num_threads(1);
}

// Kernels keep what they derive from the activations for the rest of one matmul (DotArgs::a_id):
// a second matmul with new values in the same buffers (same workspace, same x storage) must not
// see the first one's.
TEST_P(MatmulX8, NewActivationsInTheSameBuffersAreNotStale) {
  const GgmlType t = GetParam();
  std::mt19937 rng(static_cast<unsigned>(t) + 77);
  const int64_t rows = 64, cols = t == GgmlType::Q4_K || t == GgmlType::Q6_K ? 512 : 256;
  const Matrix m = random_matrix(t, rows, cols, rng);
  std::vector<std::byte> x8(m.bytes.size());
  for (int64_t g = 0; g < rows / 8; ++g)
    kernels::repack_x8(t, m.bytes.data() + g * 8 * m.view.row_bytes, m.view.row_bytes, x8.data() + g * 8 * m.view.row_bytes);
  TensorView v = m.view;
  v.data = x8.data();
  v.x8 = true;
  for (int64_t n : {int64_t{1}, int64_t{8}, int64_t{11}}) {
    std::vector<float> x = random_acts(n, cols, rng);
    MatmulWorkspace ws, ws_plain;
    std::vector<float> got(static_cast<size_t>(n * rows)), want(got.size());
    for (int th : {1, 2}) {
      set_num_threads(th);
      for (int round = 0; round < 3; ++round) {
        for (float& e : x) e = -e * 0.5f + 0.25f;  // new contents, same storage
        matmul(v, x.data(), n, got.data(), ws);
        matmul(m.view, x.data(), n, want.data(), ws_plain);
        ASSERT_TRUE(same_bits(got.data(), want.data(), got.size())) << "T " << n << " threads " << th << " round " << round;
      }
    }
  }
  set_num_threads(1);
}

INSTANTIATE_TEST_SUITE_P(X8Types, MatmulX8, ::testing::Values(GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& p) {
                           std::string s(type_name(p.param));
                           for (char& c : s) if (c == '_') c = 'x';
                           return s;
                         });


// Decoding splits a matmul's rows into one region per thread (kernels/row_regions.hpp): owners
// take chunks from the front, helpers from the back; every row is handed out exactly once.
struct Chunk {
  int64_t r0, r1;
  int region;
  bool front;
};

void expect_each_row_once(const std::vector<Chunk>& chunks, int64_t rows, int64_t align, const char* what) {
  std::vector<int> seen(static_cast<size_t>(rows), 0);
  for (const Chunk& c : chunks) {
    ASSERT_LT(c.r0, c.r1) << what;
    ASSERT_LE(c.r1 - c.r0, 256) << what;
    ASSERT_EQ(c.r0 % align, 0) << what;
    ASSERT_TRUE(c.r1 % align == 0 || c.r1 == rows) << what;
    for (int64_t r = c.r0; r < c.r1; ++r) ++seen[static_cast<size_t>(r)];
  }
  for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(seen[static_cast<size_t>(r)], 1) << what << ": row " << r << " of " << rows;
}

TEST(RowRegions, RegionsTileTheRowsAndEveryRowIsTakenOnce) {
  std::mt19937 rng(5);
  kernels::RowRegions regions;
  for (int64_t rows : {int64_t{0}, int64_t{5}, int64_t{8}, int64_t{77}, int64_t{1024}, int64_t{3072}, int64_t{250880}}) {
    for (int n : {1, 2, 3, 7}) {
      for (int64_t align : {int64_t{8}, int64_t{16}}) {
        const std::string what = "rows " + std::to_string(rows) + " regions " + std::to_string(n) + " align " + std::to_string(align);
        regions.reset(rows, n, align);
        ASSERT_EQ(regions.size(), n);
        EXPECT_EQ(regions.end(n - 1), rows) << what;
        for (int i = 0; i + 1 < n; ++i) {
          EXPECT_EQ(regions.end(i) % align, 0) << what;
          EXPECT_LE(regions.end(i), regions.end(i + 1)) << what;
        }
        // Owners and helpers in a random order; the owner's chunks come in row order.
        std::vector<Chunk> chunks;
        std::vector<int64_t> last_front(static_cast<size_t>(n), -1);
        std::vector<bool> open(static_cast<size_t>(n), true);
        for (int left = n; left > 0;) {
          const int region = static_cast<int>(rng() % static_cast<unsigned>(n));
          if (!open[static_cast<size_t>(region)]) continue;
          const bool front = rng() % 3 != 0;
          int64_t r0 = 0, r1 = 0;
          if (!(front ? regions.take_front(region, r0, r1) : regions.take_back(region, r0, r1))) {
            open[static_cast<size_t>(region)] = false;
            --left;
            int64_t a = 0, b = 0;
            EXPECT_FALSE(regions.take_front(region, a, b)) << what;
            EXPECT_FALSE(regions.take_back(region, a, b)) << what;
            continue;
          }
          const int64_t begin = region == 0 ? 0 : regions.end(region - 1);
          EXPECT_EQ(kernels::RowRegions::region_begin(rows, n, align, region), begin) << what;
          EXPECT_GE(r0, begin) << what;
          EXPECT_LE(r1, regions.end(region)) << what;
          if (front) {
            EXPECT_GT(r0, last_front[static_cast<size_t>(region)]) << what;
            last_front[static_cast<size_t>(region)] = r0;
          }
          chunks.push_back({r0, r1, region, front});
        }
        expect_each_row_once(chunks, rows, align, what.c_str());
      }
    }
  }
}

// Threads running their shares at once (RowRegions::run, as matmul does: own region from the
// front, then the others' from the back), one of them starting late so that the others take its rows.
TEST(RowRegions, ConcurrentOwnersAndHelpersTakeEveryRowOnce) {
  kernels::RowRegions regions;
  const int64_t rows = 250880;
  for (int round = 0; round < 20; ++round) {
    const int n = 2 + round % 3;
    regions.reset(rows, n, 8);
    std::vector<std::vector<Chunk>> taken(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int own = 0; own < n; ++own) {
      threads.emplace_back([&, own] {
        if (own == n - 1 && round % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::vector<Chunk>& mine = taken[static_cast<size_t>(own)];
        regions.run(own, [&](int64_t r0, int64_t r1, int64_t stream_end) {
          // a chunk of the thread's own region is told that region's end; another's ends its stream
          const bool own_region = r0 >= (own == 0 ? 0 : regions.end(own - 1)) && r1 <= regions.end(own);
          EXPECT_EQ(stream_end, own_region ? regions.end(own) : r1);
          mine.push_back({r0, r1, own, own_region});
        });
      });
    }
    for (std::thread& t : threads) t.join();
    std::vector<Chunk> all;
    for (const auto& v : taken) all.insert(all.end(), v.begin(), v.end());
    expect_each_row_once(all, rows, 8, ("round " + std::to_string(round)).c_str());
  }
}

// Wakes the team with a job (a sleeping worker ignores hints), posts a hint and waits for the
// workers to serve it: true when one try prefetches exactly `want` bytes (a worker woken late may
// first serve an older hint, so a try can count more; up to 50 tries).
bool hint_prefetches_exactly(int64_t want, const std::function<void()>& post) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    parallel_for(0, 64, [](int64_t) {});
    const int64_t before = prefetch_hint_bytes();
    post();
    for (int i = 0; i < 20 && prefetch_hint_bytes() - before < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (prefetch_hint_bytes() - before == want) return true;
  }
  return false;
}

// Idle workers prefetch the span a hint gives each of them (prefetch_hint), and matmul's hint gives
// worker k the first bytes of region k of a decoding matmul, up to max_bytes.
TEST(PrefetchHint, IdleWorkersPrefetchTheirSpans) {
  set_num_threads(3);
  std::vector<std::byte> buf(size_t{1} << 20);
  const PrefetchSpan spans[3] = {{buf.data(), 999}, {buf.data() + 4096, 256 << 10}, {buf.data() + (512 << 10), 128 << 10}};
  EXPECT_TRUE(hint_prefetches_exactly((256 + 128) << 10, [&] { prefetch_hint(spans, 3); })) << "the workers' spans";

  std::mt19937 rng(9);
  const Matrix m = random_matrix(GgmlType::Q4_0, 777, 1024, rng);  // 576 bytes a row
  const int64_t r1 = kernels::RowRegions::region_begin(777, 3, 16, 1), r2 = kernels::RowRegions::region_begin(777, 3, 16, 2);
  EXPECT_TRUE(hint_prefetches_exactly((777 - r1) * m.view.row_bytes, [&] { matmul_prefetch_hint(m.view, 1 << 20); }))
      << "regions 1 and 2 whole";
  EXPECT_TRUE(hint_prefetches_exactly(4096 + 4096, [&] { matmul_prefetch_hint(m.view, 4096); })) << "each region cut at max_bytes";
  EXPECT_LT(r1, r2);

  set_num_threads(1);
  const int64_t before = prefetch_hint_bytes();
  prefetch_hint(spans, 3);  // one thread: no workers, nothing happens
  EXPECT_EQ(prefetch_hint_bytes(), before);
}

TEST(IsaSelection, UnknownOrUnrunnableIsAUsageError) {
  EXPECT_THROW(select_isa("no-such-isa"), Error);
  try {
    select_isa("no-such-isa");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("--isa"), std::string::npos);
  }
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot}) {
    if (isa_runnable(isa)) {
      EXPECT_EQ(select_isa(isa_name(isa)), isa);
    } else {
      EXPECT_THROW(select_isa(isa_name(isa)), Error) << isa_name(isa);
    }
  }
  EXPECT_EQ(select_isa("ref"), Isa::Ref);
  EXPECT_EQ(active_isa(), Isa::Ref);
  EXPECT_EQ(select_isa("auto"), best_isa());
  EXPECT_EQ(usable_isas().front(), Isa::Ref);
}

TEST(IsaSelection, EnvironmentVariableIsHonouredByAuto) {
  ::setenv("BLOOMZ_ISA", "ref", 1);
  EXPECT_EQ(select_isa("auto"), Isa::Ref);
  EXPECT_EQ(select_isa(""), Isa::Ref);
  EXPECT_EQ(select_isa(isa_name(best_isa())), best_isa());  // an explicit --isa wins over the variable
  ::setenv("BLOOMZ_ISA", "bogus", 1);
  try {
    select_isa("auto");
    ADD_FAILURE() << "BLOOMZ_ISA=bogus accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("BLOOMZ_ISA"), std::string::npos) << e.what();
  }
  ::unsetenv("BLOOMZ_ISA");
  EXPECT_EQ(select_isa("auto"), best_isa());
}

}  // namespace
