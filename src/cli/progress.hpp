// Progress of a --batch-file run on stderr (never stdout): on a terminal a live line redrawn in
// place, or with --progress N a plain line every N seconds for logs. Items done (of the total
// when it is known), failures, generated tokens per second and the time left.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace bloomz::cli {

class Progress {
 public:
  enum class Mode { Off, Live, Plain };
  // every_s: seconds between plain lines (Plain); total: items this run has to do, if known.
  Progress(Mode mode, double every_s, std::optional<int64_t> total);
  void item_done(bool failed);
  void tokens(int64_t n) { tokens_ += n; }
  // Prints when a line is due; cheap otherwise (call it as often as convenient).
  void tick();
  // The last state (and the end of the live line).
  void finish();

 private:
  std::string line(double elapsed_s) const;
  void print(bool last);

  Mode mode_;
  std::chrono::steady_clock::duration every_;
  std::optional<int64_t> total_;
  std::chrono::steady_clock::time_point start_, last_;
  int64_t done_ = 0, failed_ = 0, tokens_ = 0;
};

}  // namespace bloomz::cli
