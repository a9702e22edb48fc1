// Result lines of --batch-file runs: stdout in order, the --output file, and --resume's scan.
#include "cli/batch_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "bloomz/error.hpp"
#include "cli/output.hpp"

namespace bloomz::cli {

namespace {

Error output_error(const std::string& path, const std::string& what) {
  return Error(ErrorKind::Usage, fmt::format("--output {}: {}", path, what));
}

// The index a result line answers, or nullopt when the line does not count as an answer
// (not JSON, no index, an error, or an item cancelled by a signal: those are run again).
std::optional<int64_t> answered_index(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || j.contains("error")) return std::nullopt;
  const auto index = j.find("index");
  if (index == j.end() || !index->is_number_integer() || index->get<int64_t>() < 0) return std::nullopt;
  const auto reason = j.find("finish_reason");
  if (reason == j.end() || !reason->is_string() || *reason == "cancelled") return std::nullopt;
  return index->get<int64_t>();
}

// Writes the lines of `path` marked in `keep` to path.resume-tmp, syncs it and renames it over
// path. A crash before the rename leaves the original file, after it the new one.
void rewrite_kept(const std::string& path, const std::vector<bool>& keep, mode_t mode) {
  const std::string tmp = path + ".resume-tmp";
  std::ifstream in(path, std::ios::binary);
  FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!in || out == nullptr) {
    if (out != nullptr) std::fclose(out);
    throw output_error(tmp, std::strerror(errno));
  }
  std::string line;
  bool ok = true;
  for (size_t i = 0; i < keep.size() && std::getline(in, line); ++i) {
    if (!keep[i]) continue;
    line += '\n';
    ok = ok && std::fwrite(line.data(), 1, line.size(), out) == line.size();
  }
  ok = ok && std::fflush(out) == 0 && ::fchmod(::fileno(out), mode) == 0 && ::fsync(::fileno(out)) == 0;
  const int saved = errno;
  ok = std::fclose(out) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved);
    std::remove(tmp.c_str());
    throw output_error(path, "cannot rewrite it for --resume (" + why + ")");
  }
}

}  // namespace

void IndexSet::insert(int64_t index) {
  std::vector<bool>& page = pages_[index >> kPageBits];
  if (page.empty()) page.resize(size_t{1} << kPageBits, false);
  const auto bit = static_cast<size_t>(index & ((int64_t{1} << kPageBits) - 1));
  if (!page[bit]) ++size_;
  page[bit] = true;
}

bool IndexSet::contains(int64_t index) const {
  const auto page = pages_.find(index >> kPageBits);
  return page != pages_.end() && page->second[static_cast<size_t>(index & ((int64_t{1} << kPageBits) - 1))];
}

ResumeScan prepare_resume(const std::string& path) {
  ResumeScan scan;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return scan;  // nothing done yet
    throw output_error(path, std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw output_error(path, "--resume needs a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw output_error(path, std::strerror(errno));
  std::vector<bool> keep;
  std::string line;
  off_t whole = 0;  // bytes up to the end of the last complete line
  while (std::getline(in, line)) {
    if (in.eof()) {  // no '\n': the write of this line was cut short
      scan.torn = true;
      break;
    }
    whole += static_cast<off_t>(line.size()) + 1;
    const std::optional<int64_t> index = answered_index(line);
    const bool kept = index && !scan.done.contains(*index);
    if (kept) scan.done.insert(*index);
    scan.dropped += kept ? 0 : 1;
    keep.push_back(kept);
  }
  if (in.bad()) throw output_error(path, "read error");
  in.close();
  if (scan.dropped > 0) {
    rewrite_kept(path, keep, st.st_mode & 07777);
  } else if (scan.torn && ::truncate(path.c_str(), whole) != 0) {
    throw output_error(path, fmt::format("cannot cut off the torn last line ({})", std::strerror(errno)));
  }
  return scan;
}

ResultFile::ResultFile(const std::string& path, bool append) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0644);
  if (fd_ < 0) throw output_error(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0) size_ = st.st_size;
}

ResultFile::~ResultFile() { ::close(fd_); }

void ResultFile::append(std::string_view line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      // Leave no torn line behind if we can (--resume discards one anyway).
      const bool cut = done == 0 || ::ftruncate(fd_, size_) == 0;
      throw Error(ErrorKind::Io, fmt::format("--output {}: {}{}", path_, std::strerror(err), cut ? "" : " (a torn last line is left)"));
    }
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<off_t>(line.size());
}

ResultWriter::ResultWriter(std::unique_ptr<ResultFile> file) : file_(std::move(file)) {}

ResultWriter::~ResultWriter() = default;

void ResultWriter::put(int64_t seq, std::string line) {
  if (file_) {
    file_->append(line);
    return;
  }
  held_.emplace(seq, std::move(line));
  while (!held_.empty() && held_.begin()->first == next_seq_) {
    write_stdout(held_.begin()->second);
    held_.erase(held_.begin());
    ++next_seq_;
  }
  flush_stdout();
}

}  // namespace bloomz::cli
