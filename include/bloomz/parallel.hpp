// The process-wide thread count, and parallel_for over a persistent team of worker threads.
// Items are handed out one at a time from a shared counter (a thread that is descheduled on a busy
// machine simply takes fewer items); every item is computed by exactly one thread, so which thread
// computes an item never changes its result.
#pragma once

#include <cstdint>
#include <type_traits>

namespace bloomz {

void set_num_threads(int n);
int num_threads();

// A span of memory for prefetch_hint.
struct PrefetchSpan {
  const void* p = nullptr;
  int64_t bytes = 0;
};

// A hint for the team's idle workers, who wait while the caller runs a step alone: worker k
// (1 .. num_threads() - 1) prefetches spans[k] into its L2 cache (spans[0] is the caller's and is
// not read). The bytes are what the next parallel job gives worker k first, so the memory, idle
// during the caller's step, streams them meanwhile. Returns at once; a worker stops when the next
// job opens or a newer hint arrives; a sleeping worker ignores it. n: the number of spans.
void prefetch_hint(const PrefetchSpan* spans, int n);
// Bytes the workers have prefetched on hints so far (tests).
int64_t prefetch_hint_bytes();

namespace detail {
using ItemFn = void (*)(void* ctx, int64_t i);
// Runs fn(ctx, i) for i in [begin, end) on the team (the caller takes part). Falls back to a plain
// loop when called from inside a team item or while another thread is using the team.
void run_parallel(int64_t begin, int64_t end, ItemFn fn, void* ctx);
}  // namespace detail

// Calls fn(i) for i in [begin, end), each exactly once, spread over the threads.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, Fn&& fn) {
  if (end - begin <= 1 || num_threads() == 1) {
    for (int64_t i = begin; i < end; ++i) fn(i);
    return;
  }
  using F = std::remove_reference_t<Fn>;
  detail::run_parallel(
      begin, end, [](void* c, int64_t i) { (*static_cast<F*>(c))(i); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace bloomz
