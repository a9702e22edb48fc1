// The process-wide thread count and the persistent team behind parallel_for.
//
// One job at a time. Its fields are written by the calling thread while the job is closed and no
// worker holds it; `state` packs (generation, open flag, holders). A worker joins a job by a CAS
// that adds a holder to an open state of a generation it has not served yet, takes items from
// `next` until they run out, then drops its hold. The caller takes items too, then closes the job
// and waits only for the current holders (a worker that has not joined by then never will: its CAS
// fails on the changed state). Idle workers spin briefly, then sleep on the state word (futex).
// While spinning they serve prefetch hints (prefetch_hint): a new `hint_seq` says one is posted;
// worker k reads its span and prefetches it line by line, checking between lines for a new job.
#include "bloomz/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BLOOMZ_CPU_RELAX() _mm_pause()
#define BLOOMZ_PREFETCH_L2(p) _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1)
#else
#define BLOOMZ_CPU_RELAX() std::this_thread::yield()
#define BLOOMZ_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#endif

namespace bloomz {
namespace {

std::atomic<int> g_num_threads{0};  // 0: not set yet, use the default

int default_threads() {
#ifdef _OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

constexpr uint64_t kHolder = 1;
constexpr uint64_t kHolderMask = 0x7FFF;
constexpr uint64_t kOpen = uint64_t(1) << 15;
constexpr int kGenShift = 16;
constexpr int kSpinRounds = 20000;  // pauses before a worker sleeps

thread_local bool t_in_item = false;

constexpr int64_t kHintLinesPerCheck = 16;  // lines prefetched between looks for a new job

class Team {
 public:
  explicit Team(int n_threads) : n_(n_threads), hints_(static_cast<size_t>(n_threads)) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { worker(i); });
  }
  ~Team() {
    stop_.store(true, std::memory_order_relaxed);
    state_.fetch_add(uint64_t(1) << kGenShift, std::memory_order_release);
    state_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  int size() const { return n_; }

  // Called by the thread that holds the team, between jobs. hint_seq_ is odd while the spans are
  // written (a seqlock: a worker serves a span only if the sequence was even and unchanged around
  // its reads).
  void hint(const PrefetchSpan* spans, int n) {
    const uint64_t seq = hint_seq_.load(std::memory_order_relaxed);
    hint_seq_.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (int k = 1; k < n_; ++k) {
      Hint& h = hints_[static_cast<size_t>(k)];
      const bool has = k < n && spans[k].p != nullptr && spans[k].bytes > 0;
      h.p.store(has ? static_cast<const char*>(spans[k].p) : nullptr, std::memory_order_relaxed);
      h.bytes.store(has ? spans[k].bytes : 0, std::memory_order_relaxed);
    }
    hint_seq_.store(seq + 2, std::memory_order_release);
  }

  int64_t hinted_bytes() const { return hinted_bytes_.load(std::memory_order_relaxed); }

  void run(int64_t begin, int64_t end, detail::ItemFn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    end_ = end;
    next_.store(begin, std::memory_order_relaxed);
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> kGenShift) + 1;
    state_.store((gen << kGenShift) | kOpen, std::memory_order_release);
    state_.notify_all();
    std::exception_ptr error;
    try {
      work();
    } catch (...) {
      error = std::current_exception();
      t_in_item = false;
      next_.store(end_, std::memory_order_relaxed);
    }
    // Close, then wait for the holders to finish their items.
    uint64_t s = state_.load(std::memory_order_relaxed);
    while (!state_.compare_exchange_weak(s, s & ~kOpen, std::memory_order_acq_rel)) {
    }
    for (int spins = 0; (state_.load(std::memory_order_acquire) & kHolderMask) != 0; ++spins) {
      if (spins < kSpinRounds) BLOOMZ_CPU_RELAX();
      else std::this_thread::yield();
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  void work() {
    t_in_item = true;
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= end_) break;
      fn_(ctx_, i);
    }
    t_in_item = false;
  }

  // Prefetches this worker's span of the latest hint until it is done, a job opens (state moves
  // from s) or a newer hint arrives.
  void serve_hint(int index, uint64_t s, uint64_t seq) {
    const Hint& h = hints_[static_cast<size_t>(index)];
    const char* p = h.p.load(std::memory_order_relaxed);
    const int64_t bytes = h.bytes.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (hint_seq_.load(std::memory_order_relaxed) != seq) return;  // rewritten meanwhile: the next one is served
    int64_t done = 0;
    while (p != nullptr && done < bytes) {
      const int64_t stop = std::min(bytes, done + 64 * kHintLinesPerCheck);
      for (; done < stop; done += 64) BLOOMZ_PREFETCH_L2(p + done);
      if (state_.load(std::memory_order_relaxed) != s || hint_seq_.load(std::memory_order_relaxed) != seq) break;
    }
    hinted_bytes_.fetch_add(std::min(done, bytes), std::memory_order_relaxed);
  }

  void worker(int index) {
    uint64_t served_gen = 0;
    uint64_t served_hint = 0;
    int spins = 0;
    for (;;) {
      uint64_t s = state_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      const uint64_t gen = s >> kGenShift;
      if ((s & kOpen) && gen != served_gen) {
        if (state_.compare_exchange_weak(s, s + kHolder, std::memory_order_acq_rel)) {
          served_gen = gen;
          work();
          state_.fetch_sub(kHolder, std::memory_order_release);
          spins = 0;
        }
        continue;
      }
      if (const uint64_t seq = hint_seq_.load(std::memory_order_acquire); seq != served_hint && seq % 2 == 0) {
        served_hint = seq;
        serve_hint(index, s, seq);
        spins = 0;
        continue;
      }
      if (spins < kSpinRounds) {
        ++spins;
        BLOOMZ_CPU_RELAX();
      } else {
        state_.wait(s, std::memory_order_acquire);
      }
    }
  }

  struct alignas(64) Hint {
    std::atomic<const char*> p{nullptr};
    std::atomic<int64_t> bytes{0};
  };

  const int n_;
  std::vector<Hint> hints_;  // [worker index]; [0] unused
  alignas(64) std::atomic<uint64_t> hint_seq_{0};     // written by the caller, read by spinning workers
  alignas(64) std::atomic<int64_t> hinted_bytes_{0};  // written by the workers
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> next_{0};
  detail::ItemFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t end_ = 0;
};

std::mutex g_team_mutex;  // held by the thread using the team
std::unique_ptr<Team> g_team;

}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  g_num_threads.store(n, std::memory_order_relaxed);
}

int num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : default_threads();
}

void prefetch_hint(const PrefetchSpan* spans, int n) {
  if (num_threads() <= 1 || t_in_item) return;
  std::unique_lock<std::mutex> lock(g_team_mutex, std::try_to_lock);
  if (!lock.owns_lock() || !g_team || g_team->size() != num_threads()) return;  // no team yet, or in use
  g_team->hint(spans, n);
}

int64_t prefetch_hint_bytes() {
  std::lock_guard<std::mutex> lock(g_team_mutex);
  return g_team ? g_team->hinted_bytes() : 0;
}

namespace detail {

void run_parallel(int64_t begin, int64_t end, ItemFn fn, void* ctx) {
  const int n = num_threads();
  std::unique_lock<std::mutex> lock(g_team_mutex, std::try_to_lock);
  if (t_in_item || !lock.owns_lock() || n <= 1) {
    for (int64_t i = begin; i < end; ++i) fn(ctx, i);
    return;
  }
  if (!g_team || g_team->size() != n) {
    g_team.reset();
    g_team = std::make_unique<Team>(n);
  }
  g_team->run(begin, end, fn, ctx);
}

}  // namespace detail
}  // namespace bloomz
