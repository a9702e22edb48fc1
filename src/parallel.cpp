// The process-wide thread count and the persistent team behind parallel_for.
//
// One job at a time. Its fields are written by the calling thread while the job is closed and no
// worker holds it; `state` packs (generation, open flag, holders). A worker joins a job by a CAS
// that adds a holder to an open state of a generation it has not served yet, takes items from
// `next` until they run out, then drops its hold. The caller takes items too, then closes the job
// and waits only for the current holders (a worker that has not joined by then never will: its CAS
// fails on the changed state). Idle workers spin briefly, then sleep on the state word (futex).
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
#else
#define BLOOMZ_CPU_RELAX() std::this_thread::yield()
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

class Team {
 public:
  explicit Team(int n_threads) : n_(n_threads) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this] { worker(); });
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

  void worker() {
    uint64_t served_gen = 0;
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
      if (spins < kSpinRounds) {
        ++spins;
        BLOOMZ_CPU_RELAX();
      } else {
        state_.wait(s, std::memory_order_acquire);
      }
    }
  }

  const int n_;
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
