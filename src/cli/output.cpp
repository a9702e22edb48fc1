// stdout writes with the closed-pipe rule of cli.md: SIGPIPE is ignored at start-up, and EPIPE
// here means the reader is done, so the process exits 0 without a message.
#include "cli/output.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace bloomz::cli {

void write_stdout(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) {
    if (errno == EPIPE) std::_Exit(0);
  }
}

void flush_stdout() {
  if (std::fflush(stdout) != 0 && errno == EPIPE) std::_Exit(0);
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

}  // namespace bloomz::cli
