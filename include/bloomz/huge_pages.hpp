// HugePageAllocator: large arrays in transparent huge pages.
//
// Touching fresh anonymous memory costs a page fault per 4 KiB page; on the VMs this runs on
// that is 5-17 us a page (a host fault behind each guest one), so the 26 MB of tables the
// tokenizer builds at load cost 30-70 ms in faults alone. Transparent huge pages take one fault
// per 2 MiB (32 MB: 2-6 ms instead of 60-170 ms, measured on an EPYC VM with THP in "madvise"
// mode). Arrays of 1 MiB or more are mapped 2 MiB-aligned and marked MADV_HUGEPAGE; smaller ones
// come from operator new. Where THP is off the hint is ignored.
#pragma once

#include <cstddef>
#include <new>
#include <string_view>
#include <vector>

namespace bloomz {

namespace huge_pages {
void* allocate(size_t bytes);             // never null: throws std::bad_alloc
void deallocate(void* p, size_t bytes) noexcept;
}  // namespace huge_pages

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() noexcept = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(huge_pages::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { huge_pages::deallocate(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

template <typename T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace bloomz
