// A --batch-file run: streams the input lines, takes those of its --shard that --resume has not
// found done, decodes up to --parallel of them together, and writes each result as it finishes
// (cli.md, "Batch runs at scale"). SIGINT, SIGTERM and SIGHUP end it with the items in flight
// written as "cancelled" and exit 128 + the signal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/batch_input.hpp"
#include "cli/batch_output.hpp"
#include "cli/gen_request.hpp"

namespace bloomz::cli {

struct BatchOptions {
  std::string file;        // --batch-file ('-' = stdin)
  int64_t parallel = 1;    // --parallel
  std::string output;      // --output (empty: stdout)
  bool resume = false;     // --resume
  std::string shard;       // --shard I/N (empty: all lines)
  double progress_s = 0;   // --progress N (0: a live line on a terminal only)
  bool quiet = false;      // -q: no live line
};

class BatchRun {
 public:
  // Opens the input and the output (scanning it first for --resume) before the model is loaded,
  // so a bad path fails at once. Throws Error(Io) for the input, Error(Usage) for --output.
  explicit BatchRun(const BatchOptions& options);
  // Runs every wanted line; returns the exit status (0, 1 if an item failed, 128 + signal).
  int run(const Model& model, const Tokenizer& tok, const BatchDefaults& defaults, const SessionOptions& so, double load_ms);

 private:
  BatchOptions opt_;
  Shard shard_;
  LineSource input_;
  ResumeScan resumed_;
  std::unique_ptr<ResultWriter> out_;
};

}  // namespace bloomz::cli
