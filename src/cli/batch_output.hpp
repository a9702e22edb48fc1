// Where the results of a --batch-file run go, and what --resume finds already done.
//  - stdout: one line per item in input order (a line that finishes early is held back);
//  - --output FILE: each line appended as its item finishes, whole, with one write() on an
//    O_APPEND descriptor, so a process killed at any moment leaves at most one torn last line;
//  - --resume: FILE is scanned, its torn last line and every line that is not an answer are
//    dropped, and the indexes it answers are skipped by the run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bloomz::cli {

// A set of input-line indexes, one bit each in pages of 65536 (a million done items take 128 kB),
// allocated where indexes fall, so a stray huge index in a result file costs one page.
class IndexSet {
 public:
  void insert(int64_t index);
  bool contains(int64_t index) const;
  int64_t size() const { return size_; }

 private:
  static constexpr int kPageBits = 16;
  std::unordered_map<int64_t, std::vector<bool>> pages_;
  int64_t size_ = 0;
};

// What --resume found in FILE.
struct ResumeScan {
  IndexSet done;          // indexes with an answer: a result line that is not an error or cancelled
  int64_t dropped = 0;    // lines removed: errors, cancelled items, repeats, unparsable lines
  bool torn = false;      // a torn last line (no '\n') was discarded
};

// Reads FILE (missing = empty) and rewrites it to its answer lines only: a torn last line is cut
// off, and if other lines must go the kept ones are written to FILE.resume-tmp, synced and
// renamed over FILE (so a crash during the rewrite leaves the old or the new file, never a mix).
// Throws Error(Usage) naming --output when FILE cannot be read or rewritten.
ResumeScan prepare_resume(const std::string& path);

// The --output file, open for appending.
class ResultFile {
 public:
  // Truncates FILE first unless `append`. Throws Error(Usage) naming --output.
  ResultFile(const std::string& path, bool append);
  ~ResultFile();
  ResultFile(const ResultFile&) = delete;
  ResultFile& operator=(const ResultFile&) = delete;
  // Writes one whole line. On a failure (a full disk) the partial line is cut off again and
  // Error(Io) is thrown naming the file.
  void append(std::string_view line);

 private:
  int fd_ = -1;
  std::string path_;
  off_t size_ = 0;  // bytes known to be whole lines
};

// Sends result lines to the result file as they come, or to stdout in sequence order.
class ResultWriter {
 public:
  explicit ResultWriter(std::unique_ptr<ResultFile> file);  // nullptr: stdout
  ~ResultWriter();
  // The result of the item admitted `seq`-th (0, 1, 2, ... in input order).
  void put(int64_t seq, std::string line);
  // Lines waiting for an earlier item (stdout only); the run stops admitting items while this
  // is large, which bounds memory when one long item holds up many short ones.
  size_t held() const { return held_.size(); }

 private:
  std::unique_ptr<ResultFile> file_;
  std::map<int64_t, std::string> held_;
  int64_t next_seq_ = 0;
};

}  // namespace bloomz::cli
