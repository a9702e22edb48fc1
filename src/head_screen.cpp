// HeadScreen: the int8 copy of an fp16 LM head and the bounded arg-max (see head_screen.hpp).
#include "bloomz/head_screen.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "bloomz/fp16.hpp"
#include "bloomz/huge_pages.hpp"
#include "bloomz/parallel.hpp"

namespace bloomz {

namespace {

constexpr int64_t kRowsPerItem = 1024;       // rows per parallel item (2 MB of fp16 at 1024 columns)
constexpr int64_t kRowsPerRelease = 16384;   // rows read between releases of their file pages
// More candidates than 1 in kMaxCandidateShare rows: gathering them would cost more than the
// screen saves, so argmax() declines (random and trained heads give tens, see docs/performance.md).
constexpr int64_t kMaxCandidateShare = 16;

// (n + 4) 2^-24: the relative rounding bound of an f32 sum of n exact products, in any order
// (n - 1 additions, one for each product fused or not), with room to spare.
double sum_rounding(int64_t n) { return static_cast<double>(n + 4) * std::ldexp(1.0, -24); }

}  // namespace

void HeadScreen::FreeDeleter::operator()(int8_t* p) const { huge_pages::deallocate(p, bytes); }

HeadScreen::~HeadScreen() = default;

int64_t HeadScreen::bytes() const {
  return rows_ * cols_ + rows_ * static_cast<int64_t>(sizeof(float) * 2);
}

std::unique_ptr<HeadScreen> HeadScreen::build(const TensorView& head, const MappedFile& file) {
  if (head.type != GgmlType::F16 || head.x8 || head.rows <= 0 || head.cols <= 0) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<HeadScreen> s(new HeadScreen());
  s->head_ = head;
  s->rows_ = head.rows;
  s->cols_ = head.cols;
  const size_t qbytes = static_cast<size_t>(head.rows) * static_cast<size_t>(head.cols);
  s->q_ = std::unique_ptr<int8_t, FreeDeleter>(static_cast<int8_t*>(huge_pages::allocate(qbytes)), FreeDeleter{qbytes});
  s->scale_.resize(static_cast<size_t>(head.rows));
  s->slack_.resize(static_cast<size_t>(head.rows));
  // Per unit of (amax + err) ||x'||_1: the two f32 sums and the scaling (3 times the sum bound), and
  // the double arithmetic of argmax()'s comparisons (a few 2^-53 of |a_r| + B_r: 2^-44 covers it).
  const double rounding = 3.0 * sum_rounding(head.cols) + std::ldexp(1.0, -44);
  const auto* file_begin = file.data();
  const bool in_file = head.data >= file_begin && head.data < file_begin + file.size();

  // Unmapping the head first keeps the peak down: its rows come back one chunk at a time (from the
  // page cache, 20 ms for a 560m head) and go again as soon as they are read.
  if (in_file) file.release(static_cast<size_t>(head.data - file_begin), static_cast<size_t>(head.rows * head.row_bytes));
  bool finite = true;
  for (int64_t c0 = 0; c0 < head.rows && finite; c0 += kRowsPerRelease) {
    const int64_t c1 = std::min(head.rows, c0 + kRowsPerRelease);
    const int64_t items = (c1 - c0 + kRowsPerItem - 1) / kRowsPerItem;
    std::vector<char> ok(static_cast<size_t>(items), 1);
    parallel_for(0, items, [&](int64_t it) {
      const int64_t r0 = c0 + it * kRowsPerItem, r1 = std::min(c1, r0 + kRowsPerItem);
      for (int64_t r = r0; r < r1; ++r) {
        float scale = 0, err = 0, amax = 0;
        const auto* w = reinterpret_cast<const uint16_t*>(head.row(r));
        if (!screen_quantize_row(w, s->q_.get() + r * head.cols, head.cols, scale, err, amax)) {
          ok[static_cast<size_t>(it)] = 0;
          return;
        }
        // err is |w - scale q| rounded once: 2^-22 more covers it; the float of the double is
        // then stepped up once, so slack never rounds below the bound.
        const double slack = static_cast<double>(err) * (1.0 + std::ldexp(1.0, -22)) +
                             rounding * (static_cast<double>(amax) + static_cast<double>(err));
        s->scale_[static_cast<size_t>(r)] = scale;
        s->slack_[static_cast<size_t>(r)] = std::nextafter(static_cast<float>(slack), std::numeric_limits<float>::infinity());
      }
    });
    finite = std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; });
    if (in_file) {
      file.release(static_cast<size_t>(head.row(c0) - file_begin), static_cast<size_t>((c1 - c0) * head.row_bytes));
    }
  }
  if (!finite) return nullptr;
  s->build_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

std::optional<int32_t> HeadScreen::argmax(const float* x, int32_t banned, Scratch& sc, MatmulWorkspace& ws) const {
  const int64_t n = cols_, V = rows_;
  // x' = x rounded to fp16, as the F16 matmul rounds its activations; its 1-norm in double.
  sc.x16h.resize(static_cast<size_t>(n));
  sc.x16.resize(static_cast<size_t>(n));
  to_fp16(x, sc.x16h.data(), n);
  double x1 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = fp16_to_fp32(sc.x16h[static_cast<size_t>(i)]);
    if (!std::isfinite(v)) return std::nullopt;
    sc.x16[static_cast<size_t>(i)] = v;
    x1 += std::fabs(static_cast<double>(v));
  }
  x1 *= 1.0 + 1e-12;  // the double sum's own rounding (n < 2^20 terms)

  // 1-2: a_r for every row; per item, the largest lower end a_r - B_r.
  const int64_t items = (V + kRowsPerItem - 1) / kRowsPerItem;
  sc.approx.resize(static_cast<size_t>(V));
  sc.item_max.assign(static_cast<size_t>(items), -std::numeric_limits<double>::infinity());
  parallel_for(0, items, [&](int64_t it) {
    const int64_t r0 = it * kRowsPerItem, r1 = std::min(V, r0 + kRowsPerItem);
    screen_dot(q_.get(), scale_.data(), sc.x16.data(), n, r0, r1, sc.approx.data());
    double best = -std::numeric_limits<double>::infinity();
    for (int64_t r = r0; r < r1; ++r) {
      if (r == banned) continue;
      const double lo = static_cast<double>(sc.approx[static_cast<size_t>(r)]) -
                        static_cast<double>(slack_[static_cast<size_t>(r)]) * x1;
      best = lo > best ? lo : best;
    }
    sc.item_max[static_cast<size_t>(it)] = best;
  });
  const double floor = *std::max_element(sc.item_max.begin(), sc.item_max.end());
  if (!std::isfinite(floor)) return std::nullopt;

  // 3: the candidates, ascending: per item over the threads, then joined in item order.
  sc.item_ids.resize(static_cast<size_t>(items));
  parallel_for(0, items, [&](int64_t it) {
    std::vector<int32_t>& ids = sc.item_ids[static_cast<size_t>(it)];
    ids.clear();
    const int64_t r0 = it * kRowsPerItem, r1 = std::min(V, r0 + kRowsPerItem);
    for (int64_t r = r0; r < r1; ++r) {
      const double hi = static_cast<double>(sc.approx[static_cast<size_t>(r)]) +
                        static_cast<double>(slack_[static_cast<size_t>(r)]) * x1;
      if (hi >= floor && r != banned) ids.push_back(static_cast<int32_t>(r));
    }
  });
  sc.ids.clear();
  const size_t limit = static_cast<size_t>(std::max<int64_t>(1, V / kMaxCandidateShare));
  for (const std::vector<int32_t>& ids : sc.item_ids) {
    if (sc.ids.size() + ids.size() > limit) return std::nullopt;
    sc.ids.insert(sc.ids.end(), ids.begin(), ids.end());
  }
  if (sc.ids.empty()) return std::nullopt;  // cannot happen with finite bounds; be safe

  // 4: their logits through matmul on the gathered rows, then the largest (first on ties).
  const auto k = static_cast<int64_t>(sc.ids.size());
  const auto rb = static_cast<size_t>(head_.row_bytes);
  sc.rows.resize(static_cast<size_t>(k) * rb);
  for (int64_t j = 0; j < k; ++j) std::memcpy(sc.rows.data() + static_cast<size_t>(j) * rb, head_.row(sc.ids[static_cast<size_t>(j)]), rb);
  TensorView gathered = head_;
  gathered.rows = k;
  gathered.data = sc.rows.data();
  sc.logits.resize(static_cast<size_t>(k));
  matmul(gathered, x, 1, sc.logits.data(), ws);
  size_t best = 0;
  for (size_t j = 1; j < sc.ids.size(); ++j) {
    if (sc.logits[j] > sc.logits[best]) best = j;
  }
  candidates_total_ += k;
  ++calls_;
  return sc.ids[best];
}

}  // namespace bloomz
