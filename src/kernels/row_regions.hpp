// Rows of a one-token matmul split into one contiguous region per thread.
//
// A decode step reads each weight once, and a thread's weight stream costs most where it starts
// cold: the kernels prefetch ahead within what they are given, so the first bytes of every new
// range arrive at the memory's latency. Here each thread owns one region and takes its chunks
// front to back, letting the kernels prefetch past a chunk up to the region's end, so the stream
// starts once per matmul. A thread done with its own region takes chunks from the back of the
// others' (a thread the host has descheduled then delays nobody); which thread computes a row
// never changes the row's result.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace bloomz::kernels {

class RowRegions {
 public:
  // rows split into n_regions regions; region and chunk bounds are multiples of align (the last
  // region ends at rows).
  void reset(int64_t rows, int n_regions, int64_t align) {
    if (n_regions > capacity_) {
      slots_ = std::make_unique<Slot[]>(static_cast<size_t>(n_regions));
      capacity_ = n_regions;
    }
    n_ = n_regions;
    // chunks of an eighth of the region, 32..256 rows: the stream does not restart between them,
    // and the last one a thread takes keeps the other waiting at most that long
    const int64_t lo = (32 + align - 1) / align * align, hi = std::max(lo, 256 / align * align);
    for (int i = 0; i < n_regions; ++i) {
      Slot& s = slots_[static_cast<size_t>(i)];
      s.begin = region_begin(rows, n_regions, align, i);
      s.end = region_begin(rows, n_regions, align, i + 1);
      s.chunk = std::clamp((s.end - s.begin) / 8 / align * align, lo, hi);
      const int64_t n_chunks = s.end > s.begin ? (s.end - s.begin + s.chunk - 1) / s.chunk : 0;
      s.ends.store(static_cast<uint64_t>(n_chunks) << 32, std::memory_order_relaxed);
    }
  }

  // The first row of region i of reset(rows, n_regions, align) (rows for i = n_regions).
  static int64_t region_begin(int64_t rows, int n_regions, int64_t align, int i) {
    return i >= n_regions ? rows : rows / align * i / n_regions * align;
  }

  int size() const { return n_; }
  int64_t end(int region) const { return slots_[static_cast<size_t>(region)].end; }

  // The next chunk from the front of a region (its owner): false when none is left.
  bool take_front(int region, int64_t& r0, int64_t& r1) { return take(region, true, r0, r1); }
  // The last chunk left in a region (another thread helping): false when none is left.
  bool take_back(int region, int64_t& r0, int64_t& r1) { return take(region, false, r0, r1); }

  // One thread's share: region own's chunks front to back, then what is left of the others' from
  // their backs. fn(r0, r1, stream_end): rows [r1, stream_end) are this thread's next ones (its
  // own region's end), or stream_end = r1 for a chunk taken from another region.
  template <typename Fn>
  void run(int own, Fn&& fn) {
    int64_t r0 = 0, r1 = 0;
    while (take_front(own, r0, r1)) fn(r0, r1, end(own));
    for (int k = 1; k < n_; ++k) {
      const int other = (own + k) % n_;
      while (take_back(other, r0, r1)) fn(r0, r1, r1);
    }
  }

 private:
  // ends: chunks taken from the front (low 32 bits) and the index one past the last chunk not
  // taken from the back (high 32 bits); the region is done when they meet.
  struct alignas(64) Slot {
    std::atomic<uint64_t> ends{0};
    int64_t begin = 0, end = 0, chunk = 1;
  };

  bool take(int region, bool front, int64_t& r0, int64_t& r1) {
    Slot& s = slots_[static_cast<size_t>(region)];
    uint64_t e = s.ends.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t lo = e & 0xFFFFFFFFu, hi = e >> 32;
      if (lo >= hi) return false;
      const uint64_t next = front ? e + 1 : e - (uint64_t(1) << 32);
      if (s.ends.compare_exchange_weak(e, next, std::memory_order_relaxed)) {
        const int64_t c = static_cast<int64_t>(front ? lo : hi - 1);
        r0 = s.begin + c * s.chunk;
        r1 = std::min(s.end, r0 + s.chunk);
        return true;
      }
    }
  }

  std::unique_ptr<Slot[]> slots_;
  int capacity_ = 0;
  int n_ = 0;
};

}  // namespace bloomz::kernels
