// Large arrays in transparent huge pages (see include/bloomz/huge_pages.hpp for why).
#include "bloomz/huge_pages.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace bloomz::huge_pages {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kMinBytes = size_t{1} << 20;  // below this, a huge page would mostly be waste
size_t mapped_size(size_t bytes) { return (bytes + kHuge - 1) / kHuge * kHuge; }
}  // namespace

void* allocate(size_t bytes) {
  if (bytes < kMinBytes) return ::operator new(bytes);
  const size_t size = mapped_size(bytes);
  // Map one huge page more than needed, then trim both ends to a 2 MiB-aligned range.
  void* raw = ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
  if (aligned > base) ::munmap(raw, aligned - base);
  const uintptr_t end = base + size + kHuge;
  if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void deallocate(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kMinBytes) {
    ::operator delete(p);
    return;
  }
  ::munmap(p, mapped_size(bytes));
}

}  // namespace bloomz::huge_pages
