// HeadScreen: greedy decoding's arg-max over an fp16 LM head without computing every logit.
//
// The head (n_vocab rows of n_embd fp16 values: 0.5 GB of bloomz-560m's 1.1 GB F16 file) is the
// largest matrix a decoded token reads, and a greedy pick needs only the largest logit. The screen
// keeps an int8 copy of the head (one scale per row: half the bytes) and, per token:
//  1. a_r = scale_r * (q_r . x') for every row r, with x' the head's input rounded to fp16 exactly
//     as the F16 matmul rounds it;
//  2. a bound B_r = slack_r * ||x'||_1 on |a_r - logit_r|, logit_r being what matmul computes:
//     |w - scale q| <= err_r per element gives err_r ||x'||_1, and the rounding of the two f32 sums
//     (whose products are exact) and of the scaling adds at most 3 (n + 4) 2^-24 (amax_r + err_r)
//     ||x'||_1 (slack_r holds both, rounded up);
//  3. the candidates: the rows with a_r + B_r >= max over rows of (a_r - B_r). The arg-max is among
//     them: its logit is at least every logit, so at least that maximum;
//  4. their logits, by gathering their fp16 rows and running matmul on them (per row the same bits
//     as the whole head gives), and the largest, lowest id on ties.
// The token is the one the arg-max of all logits gives; only the work differs. Inputs the bound
// does not cover (a non-finite head input) or too many candidates make argmax() decline, and the
// caller computes every logit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bloomz/mapped_file.hpp"
#include "bloomz/matmul.hpp"
#include "bloomz/tensor.hpp"

namespace bloomz {

class HeadScreen {
 public:
  // Per-session scratch for argmax(): grows once, then reused.
  struct Scratch {
    std::vector<float> x16;       // the head's input rounded to fp16, as floats
    std::vector<uint16_t> x16h;
    std::vector<float> approx;    // a_r, n_vocab
    std::vector<double> item_max;
    std::vector<std::vector<int32_t>> item_ids;  // candidates per item of rows
    std::vector<int32_t> ids;     // candidates, ascending
    std::vector<std::byte> rows;  // their fp16 rows, gathered
    std::vector<float> logits;    // their logits
  };

  // Builds the screen of an fp16 head in `file` (rows in the file's layout), reading it once over
  // the threads. The file pages of the head are released before and as they are read (greedy
  // decoding then never maps most of them again), so the process holds the int8 copy instead of
  // the fp16 rows. nullptr when the head cannot be screened or holds Inf or NaN.
  static std::unique_ptr<HeadScreen> build(const TensorView& head, const MappedFile& file);

  HeadScreen(const HeadScreen&) = delete;
  HeadScreen& operator=(const HeadScreen&) = delete;
  ~HeadScreen();

  // The arg-max over rows != banned (banned < 0: none) of the logits matmul(head, x) gives, lowest
  // id on ties; x: the head's input (cols floats). nullopt when the screen declines: a non-finite
  // input, or more candidates than screening saves (then compute the logits).
  std::optional<int32_t> argmax(const float* x, int32_t banned, Scratch& scratch, MatmulWorkspace& ws) const;

  int64_t rows() const { return rows_; }
  int64_t bytes() const;  // the int8 copy and the per-row numbers
  double build_ms() const { return build_ms_; }
  // Candidates of the last argmax() calls, summed, and the calls (for logs and tests).
  int64_t candidates_total() const { return candidates_total_.load(); }
  int64_t calls() const { return calls_.load(); }

 private:
  HeadScreen() = default;
  struct FreeDeleter {
    size_t bytes;
    void operator()(int8_t* p) const;
  };
  TensorView head_;
  int64_t rows_ = 0, cols_ = 0;
  std::unique_ptr<int8_t, FreeDeleter> q_{nullptr, FreeDeleter{0}};  // [rows][cols], in huge pages
  std::vector<float> scale_;                // per row
  std::vector<float> slack_;                // per row: B_r / ||x'||_1, rounded up
  double build_ms_ = 0;
  mutable std::atomic<int64_t> candidates_total_{0}, calls_{0};
};

}  // namespace bloomz
