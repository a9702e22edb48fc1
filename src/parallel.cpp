// The process-wide thread count used by parallel_for.
#include "bloomz/parallel.hpp"

#include <atomic>

namespace bloomz {
namespace {
std::atomic<int> g_num_threads{0};  // 0: not set yet, use the OpenMP default
}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  g_num_threads.store(n, std::memory_order_relaxed);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace bloomz
