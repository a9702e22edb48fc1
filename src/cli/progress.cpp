// Progress lines: see progress.hpp.
#include "cli/progress.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace bloomz::cli {

namespace {

// A terminal is redrawn a few times a second: often enough to look live, rarely enough to cost
// nothing next to decoding.
constexpr std::chrono::milliseconds kLiveEvery{250};

std::string hms(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02}m{:02}s", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

}  // namespace

Progress::Progress(Mode mode, double every_s, std::optional<int64_t> total)
    : mode_(mode),
      every_(mode == Mode::Live ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(kLiveEvery)
                                : std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(every_s))),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::item_done(bool failed) {
  ++done_;
  failed_ += failed ? 1 : 0;
}

std::string Progress::line(double elapsed_s) const {
  std::string s = total_ ? fmt::format("{}/{} items", done_, *total_) : fmt::format("{} items", done_);
  if (failed_ > 0) s += fmt::format(" ({} failed)", failed_);
  s += fmt::format(", {:.1f} tokens/s, {} elapsed", elapsed_s > 0 ? static_cast<double>(tokens_) / elapsed_s : 0.0, hms(elapsed_s));
  if (total_ && done_ > 0 && done_ <= *total_) {
    s += fmt::format(", ETA {}", hms(elapsed_s * static_cast<double>(*total_ - done_) / static_cast<double>(done_)));
  }
  return s;
}

void Progress::print(bool last) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (mode_ == Mode::Live) {
    // \r and "erase to the end of the line": the line is redrawn in place.
    fmt::print(stderr, "\rbloomz: {}\x1b[K{}", line(elapsed), last ? "\n" : "");
  } else {
    fmt::print(stderr, "bloomz: progress: {}\n", line(elapsed));
  }
  std::fflush(stderr);
}

void Progress::tick() {
  if (mode_ == Mode::Off) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < every_) return;
  last_ = now;
  print(false);
}

void Progress::finish() {
  if (mode_ != Mode::Off) print(true);
}

}  // namespace bloomz::cli
