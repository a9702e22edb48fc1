// The process-wide thread count, and parallel_for: the only place OpenMP is used.
// Work is split statically, so which thread computes an item never changes its result.
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bloomz {

void set_num_threads(int n);
int num_threads();

// Calls fn(i) for i in [begin, end), split over the threads in contiguous static chunks.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, Fn&& fn) {
#ifdef _OPENMP
  const int64_t n = end - begin;
  if (n <= 1 || num_threads() == 1) {
    for (int64_t i = begin; i < end; ++i) fn(i);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t i = begin; i < end; ++i) fn(i);
#else
  for (int64_t i = begin; i < end; ++i) fn(i);
#endif
}

}  // namespace bloomz
