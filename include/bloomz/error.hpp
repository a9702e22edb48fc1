// bloomz::Error: the one exception type of the library. It carries a kind (which maps to the
// CLI's exit status) and a one-line message that already names the file, key, tensor or flag.
// Hot paths (kernels, forward) never throw; load-time and CLI code do.
#pragma once

#include <stdexcept>
#include <string>

namespace bloomz {

enum class ErrorKind {
  Io,           // cannot open/read/map a file
  Format,       // the bytes of a file are not a valid GGUF / model
  Unsupported,  // valid but not something bloomz runs (architecture, type, version)
  Config,       // inconsistent hyperparameters or tensor shapes
  Runtime,      // prompt too long, empty prompt, out of memory, ...
  Usage,        // bad command-line value (exit status 2)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// Exit status for an error kind: 2 for usage errors, 1 for everything else (cli.md).
inline int exit_status(ErrorKind kind) { return kind == ErrorKind::Usage ? 2 : 1; }

}  // namespace bloomz
