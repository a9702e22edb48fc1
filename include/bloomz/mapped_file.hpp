// MappedFile: owns the bytes of a whole file, either as a read-only memory mapping or (with
// use_mmap = false) as a heap copy. Everything else (GgufFile, TensorView) only borrows them.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace bloomz {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error(Io) naming the path on any failure (missing, directory, unreadable, empty).
  static MappedFile open(const std::string& path, bool use_mmap = true, bool lock = false);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mapped() const { return mapped_; }
  bool is_locked() const { return locked_; }

  // Tell the kernel a byte range will not be needed (after repacking); no-op on heap copies.
  void release(size_t offset, size_t length) const;

 private:
  void reset() noexcept;

  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  bool locked_ = false;
};

}  // namespace bloomz
