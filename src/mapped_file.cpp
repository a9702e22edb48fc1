// MappedFile: open + fstat + mmap (or read into memory), with every failure named by path.
#include "bloomz/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "bloomz/error.hpp"

namespace bloomz {

namespace {

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Io, fmt::format("{}: {}", path, what));
}

struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path, bool use_mmap, bool lock) {
  // O_NONBLOCK: opening a FIFO (or a tty) must not wait for a writer; fstat refuses it below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) io_error(path, std::strerror(errno));
  FdGuard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) io_error(path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) io_error(path, "is a directory, not a model file");
  if (!S_ISREG(st.st_mode)) io_error(path, "not a regular file");
  if (st.st_size == 0) io_error(path, "file is empty");

  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (use_mmap) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) io_error(path, fmt::format("mmap failed: {}", std::strerror(errno)));
    file.data_ = static_cast<const std::byte*>(p);
    file.mapped_ = true;
  } else {
    // Page-aligned heap copy, so tensor data keeps the same alignment guarantees as a mapping.
    void* p = std::aligned_alloc(4096, (file.size_ + 4095) / 4096 * 4096);
    if (p == nullptr) io_error(path, "out of memory reading the file");
    file.data_ = static_cast<const std::byte*>(p);
    size_t done = 0;
    while (done < file.size_) {
      const ssize_t n = ::read(fd, static_cast<char*>(p) + done, file.size_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) io_error(path, fmt::format("read failed at byte {}: {}", done, n == 0 ? "unexpected end of file" : std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
  }
  if (lock && ::mlock(file.data_, file.size_) != 0) {
    io_error(path, fmt::format("mlock failed: {} (raise 'ulimit -l')", std::strerror(errno)));
  }
  file.locked_ = lock;
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    mapped_ = other.mapped_;
    locked_ = other.locked_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.mapped_ = false;
    other.locked_ = false;
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() noexcept {
  if (data_ != nullptr) {
    if (mapped_) {
      ::munmap(const_cast<std::byte*>(data_), size_);
    } else {
      std::free(const_cast<std::byte*>(data_));
    }
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  locked_ = false;
}

void MappedFile::release(size_t offset, size_t length) const {
  if (!mapped_ || length == 0 || offset >= size_) return;
  // madvise needs page-aligned starts: release only the whole pages inside the range.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t begin = (offset + page - 1) / page * page;
  const size_t end = std::min(offset + length, size_) / page * page;
  if (end > begin) ::madvise(const_cast<std::byte*>(data_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace bloomz
