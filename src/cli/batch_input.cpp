// Streaming line input with poll(): see batch_input.hpp.
#include "cli/batch_input.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <vector>

#include "bloomz/error.hpp"

namespace bloomz::cli {

namespace {

constexpr size_t kReadChunk = 1 << 16;
constexpr int kWaitMs = 250;  // a waiting caller gets control back this often (signals, progress)

bool parse_int(std::string_view s, int64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

}  // namespace

std::optional<Shard> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  Shard s;
  if (!parse_int(std::string_view(text).substr(0, slash), s.index) || !parse_int(std::string_view(text).substr(slash + 1), s.count)) {
    return std::nullopt;
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count) return std::nullopt;
  return s;
}

LineSource::LineSource(const std::string& path) : name_(path == "-" ? "stdin" : path) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
    return;
  }
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorKind::Io, fmt::format("{}: {}", path, std::strerror(errno)));
  owned_ = true;
}

LineSource::~LineSource() {
  if (owned_) ::close(fd_);
}

bool LineSource::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, timeout_ms);
  if (ready <= 0) return false;  // nothing yet, or a signal (the caller checks for it)
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {  // keep the buffer to the unreturned bytes
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buf_.size();
  buf_.resize(old + kReadChunk);
  const ssize_t n = ::read(fd_, buf_.data() + old, kReadChunk);
  buf_.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return false;
    throw Error(ErrorKind::Io, fmt::format("{}: {}", name_, std::strerror(errno)));
  }
  if (n == 0) eof_ = true;
  return true;
}

std::optional<InputLine> LineSource::next(bool wait) {
  while (true) {
    const size_t nl = buf_.find('\n', pos_ + scanned_);
    if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
      const size_t end = nl == std::string::npos ? buf_.size() : nl;
      InputLine line{next_index_++, buf_.substr(pos_, end - pos_)};
      if (!line.text.empty() && line.text.back() == '\r') line.text.pop_back();
      pos_ = nl == std::string::npos ? buf_.size() : nl + 1;
      scanned_ = 0;
      return line;
    }
    scanned_ = buf_.size() - pos_;
    if (eof_) return std::nullopt;
    if (!fill(wait ? kWaitMs : 0)) return std::nullopt;
  }
}

bool LineSource::same_file_as(const std::string& path) const {
  struct stat mine {}, other {};
  return ::fstat(fd_, &mine) == 0 && ::stat(path.c_str(), &other) == 0 && mine.st_dev == other.st_dev && mine.st_ino == other.st_ino;
}

std::optional<int64_t> LineSource::count_lines(const std::function<bool(int64_t)>& wanted) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  off_t at = ::lseek(fd_, 0, SEEK_CUR);
  if (at < 0) return std::nullopt;
  // Lines still in the buffer are counted from it, then the rest of the file with pread().
  int64_t index = next_index_, count = 0;
  size_t len = 0;   // bytes of the current line so far
  bool cr = false;  // its last byte is '\r' (dropped when a '\n' follows, as next() does)
  auto feed = [&](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] == '\n') {
        if (len > (cr ? 1u : 0u) && wanted(index)) ++count;
        ++index;
        len = 0;
        cr = false;
      } else {
        ++len;
        cr = p[i] == '\r';
      }
    }
  };
  feed(buf_.data() + pos_, buf_.size() - pos_);
  std::vector<char> chunk(1 << 20);
  while (!eof_) {
    const ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    feed(chunk.data(), static_cast<size_t>(n));
    at += n;
  }
  if (len > (cr ? 1u : 0u) && wanted(index)) ++count;  // a last line without '\n'
  return count;
}

}  // namespace bloomz::cli
