// Stop requests by signal: SIGINT for one prompt; SIGINT, SIGTERM and SIGHUP for --batch-file
// runs (cli.md: a batch run ends on any of them with its finished items written). The handler
// only records the signal; the decoding loops poll it between tokens.
#pragma once

#include <atomic>
#include <initializer_list>

namespace bloomz::cli {

// Installs the recording handler for each signal. Blocking reads and polls are interrupted
// (no SA_RESTART), so a run waiting for input notices the signal at once.
void install_stop_handlers(std::initializer_list<int> signals);
// True once one of the installed signals has arrived (for generate()'s cancel flag).
const std::atomic<bool>& stop_requested();
// The first signal that arrived, or 0.
int stop_signal();

}  // namespace bloomz::cli
