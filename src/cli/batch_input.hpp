// The input of a --batch-file run, read as a stream: lines come out one at a time with their
// 0-based index, the look-ahead is one read buffer, and a caller with work in flight can ask
// for a line without blocking (a slowly fed pipe still gets answers for what it has sent).
// Also --shard I/N, which selects lines by index.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace bloomz::cli {

// --shard I/N: this process takes the input lines with index % N == I.
struct Shard {
  int64_t index = 0, count = 1;
  bool takes(int64_t line) const { return line % count == index; }
};

// Parses "I/N" (0 <= I < N); returns nullopt for anything else.
std::optional<Shard> parse_shard(const std::string& text);

struct InputLine {
  int64_t index = 0;  // 0-based over all lines, empty ones included
  std::string text;   // without the '\n' (and a '\r' before it)
};

class LineSource {
 public:
  // Opens `path` ('-' = stdin). Throws Error(Io) naming the file.
  explicit LineSource(const std::string& path);
  ~LineSource();
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;

  // The next line. wait = false: only if it can be had without blocking. wait = true: blocks
  // until a line or the end comes, a signal arrives or a quarter of a second passes.
  // Throws Error(Io) on a read error.
  std::optional<InputLine> next(bool wait);
  // Every line has been returned.
  bool at_end() const { return eof_ && pos_ == buf_.size(); }

  // The input is the file at `path` (same device and inode), e.g. an --output that would
  // overwrite it.
  bool same_file_as(const std::string& path) const;

  // For a regular file, the number of non-empty lines from here on that `wanted(index)` accepts,
  // read without moving the stream (for the progress total); nullopt for pipes and terminals.
  std::optional<int64_t> count_lines(const std::function<bool(int64_t)>& wanted) const;

 private:
  bool fill(int timeout_ms);  // one read(); false when nothing came

  int fd_ = -1;
  bool owned_ = false;
  std::string name_;
  std::string buf_;      // bytes read and not yet returned start at pos_
  size_t pos_ = 0;
  size_t scanned_ = 0;   // bytes from pos_ on known to hold no '\n'
  bool eof_ = false;
  int64_t next_index_ = 0;
};

}  // namespace bloomz::cli
