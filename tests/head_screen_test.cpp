// The LM-head screen (head_screen.hpp): its arg-max equals the arg-max of every logit matmul gives
// (lowest id on ties, a banned id left out) on synthetic heads built to have exact ties and
// near-ties, and greedy generation on the fp16 fixtures gives the same tokens with the screen as
// with every logit computed, for every thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "bloomz/fp16.hpp"
#include "bloomz/generate.hpp"
#include "bloomz/head_screen.hpp"
#include "bloomz/model.hpp"
#include "bloomz/parallel.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "support/test_files.hpp"

using namespace bloomz;

namespace {

// The reference: every logit through matmul, then the first maximum among ids != banned.
int32_t full_argmax(const TensorView& head, const float* x, int32_t banned) {
  std::vector<float> logits(static_cast<size_t>(head.rows));
  MatmulWorkspace ws;
  matmul(head, x, 1, logits.data(), ws);
  int32_t best = -1;
  for (int32_t r = 0; r < static_cast<int32_t>(head.rows); ++r) {
    if (r == banned) continue;
    if (best < 0 || logits[static_cast<size_t>(r)] > logits[static_cast<size_t>(best)]) best = r;
  }
  return best;
}

struct SyntheticHead {
  std::vector<uint16_t> w;
  TensorView view;
};

// rows x cols fp16 values, N(0, 0.05), with exact copies of rows (ties) and rows one fp16 step
// away from another in one element (near-ties below any int8 resolution).
SyntheticHead make_head(int64_t rows, int64_t cols, uint32_t seed) {
  SyntheticHead h;
  h.w.resize(static_cast<size_t>(rows * cols));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (auto& v : h.w) v = fp32_to_fp16(nd(rng));
  for (int64_t r = 10; r < rows; r += 97) {  // row r copies row r - 7; row r + 1 differs from it in one step
    std::copy_n(h.w.begin() + (r - 7) * cols, cols, h.w.begin() + r * cols);
    if (r + 1 < rows) {
      std::copy_n(h.w.begin() + (r - 7) * cols, cols, h.w.begin() + (r + 1) * cols);
      h.w[static_cast<size_t>((r + 1) * cols + r % cols)] += 1;
    }
  }
  h.view = TensorView{GgmlType::F16, cols, rows, cols * 2, reinterpret_cast<const std::byte*>(h.w.data()), false};
  return h;
}

// A greedy run of n tokens with EOS ignored (and `stop`, when given, as its one stop string).
std::vector<int32_t> greedy_tokens(const Model& model, const Tokenizer& tok, const char* prompt, int64_t n,
                                   int32_t logprobs = 0, const char* stop = nullptr) {
  GenerateRequest req;
  req.prompt_tokens = tok.encode(prompt);
  req.n_predict = n;
  if (stop != nullptr) req.stops = {stop};
  req.sampler.ignore_eos = true;
  req.sampler.eos_id = tok.eos_id();
  req.logprobs = logprobs;
  Session s(model, {});
  return generate(s, tok, req, [](std::string_view) {}).tokens;
}

}  // namespace

TEST(HeadScreen, ArgmaxEqualsFullArgmaxWithTiesAndBans) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t cols : {64, 100, 256}) {
      const SyntheticHead h = make_head(3001, cols, static_cast<uint32_t>(cols));
      const MappedFile none;
      const auto screen = HeadScreen::build(h.view, none);
      ASSERT_NE(screen, nullptr);
      HeadScreen::Scratch sc;
      MatmulWorkspace ws;
      std::mt19937 rng(7);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      std::vector<float> x(static_cast<size_t>(cols));
      for (int trial = 0; trial < 60; ++trial) {
        // Half the inputs point at a row, so that it, its copy and its near-copy compete.
        const int64_t target = 10 + 97 * (trial % 30);
        for (int64_t i = 0; i < cols; ++i) {
          x[static_cast<size_t>(i)] = trial % 2 ? nd(rng) : fp16_to_fp32(h.w[static_cast<size_t>(target * cols + i)]) * 40.0f;
        }
        for (int32_t banned : {-1, 0, static_cast<int32_t>(target), full_argmax(h.view, x.data(), -1)}) {
          const std::optional<int32_t> got = screen->argmax(x.data(), banned, sc, ws);
          ASSERT_TRUE(got.has_value()) << "cols " << cols << " trial " << trial;
          ASSERT_EQ(*got, full_argmax(h.view, x.data(), banned)) << "cols " << cols << " trial " << trial << " banned " << banned;
        }
      }
      // It screens: a few candidates per call, not the whole head.
      EXPECT_LT(screen->candidates_total(), screen->calls() * 3001 / 16) << cols;
    }
  }
  set_num_threads(2);
}

// Rows whose int8 codes rank them the other way round from their logits: row 1 rounds every value
// down by 0.49 of a code step, row 2 every value up by 0.49 except one that rounds up by 0.51 (one
// code more). Row 2 has the larger approximation, row 1 the larger logit; only the bound keeps
// row 1 a candidate.
TEST(HeadScreen, BoundKeepsRowsTheCodesMisrank) {
  const int64_t cols = 96, rows = 700;
  SyntheticHead h = make_head(rows, cols, 5);
  std::mt19937 rng(9);
  for (int64_t i = 0; i < cols; ++i) {
    const int k = 1 + static_cast<int>(rng() % 20);
    const float step = 1.0f / 127.0f;  // both rows hold a 1.0, so amax = 1 and the code step is 1/127
    h.w[static_cast<size_t>(1 * cols + i)] = fp32_to_fp16(i == 0 ? 1.0f : (static_cast<float>(k) + 0.49f) * step);
    h.w[static_cast<size_t>(2 * cols + i)] = fp32_to_fp16(i == 0 ? 1.0f : (static_cast<float>(k) - (i == 5 ? -0.51f : 0.49f)) * step);
  }
  const MappedFile none;
  const auto screen = HeadScreen::build(h.view, none);
  ASSERT_NE(screen, nullptr);
  std::vector<float> x(static_cast<size_t>(cols), 1.0f);
  x[5] = 2.0f;
  ASSERT_EQ(full_argmax(h.view, x.data(), -1), 1);
  HeadScreen::Scratch sc;
  MatmulWorkspace ws;
  EXPECT_EQ(screen->argmax(x.data(), -1, sc, ws), std::optional<int32_t>(1));
}

TEST(HeadScreen, DeclinesWhatItCannotBound) {
  SyntheticHead h = make_head(500, 64, 3);
  const MappedFile none;
  auto screen = HeadScreen::build(h.view, none);
  ASSERT_NE(screen, nullptr);
  HeadScreen::Scratch sc;
  MatmulWorkspace ws;
  std::vector<float> x(64, 1.0f);
  x[5] = 1e6f;  // beyond fp16: the rounded input is Inf
  EXPECT_FALSE(screen->argmax(x.data(), -1, sc, ws).has_value());
  x[5] = NAN;
  EXPECT_FALSE(screen->argmax(x.data(), -1, sc, ws).has_value());
  // A head holding Inf or NaN gets no screen (greedy decoding then sees the non-finite logits).
  for (uint16_t bad : {uint16_t{0x7C00}, uint16_t{0x7E00}}) {
    SyntheticHead b = make_head(500, 64, 4);
    b.w[12345] = bad;
    EXPECT_EQ(HeadScreen::build(b.view, none), nullptr);
  }
  // Not fp16: no screen.
  TensorView q = h.view;
  q.type = GgmlType::Q8_0;
  EXPECT_EQ(HeadScreen::build(q, none), nullptr);
}

// Greedy generation past the point where the screen takes over (the 8th generated token, when -n
// leaves 16 more): the same tokens as with every logit computed (--logprobs makes generate() take
// that path), for 1 and 2 threads, and the screen did the picking. A generation too short to pay
// for the screen does not build it.
TEST(HeadScreen, GreedyGenerationKeepsTheTokens) {
  for (const char* name : {"tiny-odd-f16", "small256-f16"}) {
    auto model = Model::load(bloomz::test::data_path(std::string("models/") + name + ".gguf"));
    const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
    // A stop string that never occurs: the length is not known in advance, so from the 8th token.
    auto run = [&](const char* prompt, int64_t n, int32_t logprobs) {
      return greedy_tokens(*model, tok, prompt, n, logprobs, "never in the output");
    };
    EXPECT_EQ(run("Hello", 23, 0).size(), 23u);
    EXPECT_EQ(model->head_screen_if_built(), nullptr) << name << ": 23 tokens leave fewer than 16 after the 8th";
    std::vector<std::vector<int32_t>> runs;
    for (int threads : {2, 1}) {
      set_num_threads(threads);
      for (int32_t logprobs : {0, 1}) {
        for (const char* prompt : {"Hello", "The capital of France is", "def f(x):"}) {
          runs.push_back(run(prompt, 48, logprobs));
          ASSERT_EQ(runs.back().size(), 48u);
        }
      }
    }
    for (size_t i = 3; i < runs.size(); ++i) EXPECT_EQ(runs[i], runs[i % 3]) << name << " run " << i;
    const HeadScreen* screen = model->head_screen_if_built();
    ASSERT_NE(screen, nullptr) << name;
    EXPECT_EQ(screen->calls(), 2 * 3 * (48 - 8)) << name;
    // Without stop strings and with EOS ignored the length is known: the screen picks from the
    // prompt's pass on: 48 picks, the prompt's and those after each of the first 47 tokens.
    const int64_t before = screen->calls();
    EXPECT_EQ(greedy_tokens(*model, tok, "Hello", 48), runs[0]) << name;
    EXPECT_EQ(screen->calls() - before, 48) << name;
  }
  set_num_threads(2);
}

// Without a mapping (--no-mmap) or with the pages locked (--mlock) the head's pages cannot be
// given back, so greedy decoding computes every logit rather than hold the screen as well; the
// tokens are the same.
TEST(HeadScreen, NotBuiltOverAHeapCopy) {
  const std::string path = bloomz::test::data_path("models/tiny-odd-f16.gguf");
  std::vector<int32_t> tokens[2];
  for (bool mmap : {true, false}) {
    auto model = Model::load(path, {.use_mmap = mmap});
    const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
    tokens[mmap ? 0 : 1] = greedy_tokens(*model, tok, "Hello", 40);
    EXPECT_EQ(model->head_screen_if_built() != nullptr, mmap);
  }
  EXPECT_EQ(tokens[0], tokens[1]);
}
