// Runs the built bloomz binary through the shell for end-to-end tests: stdin from a string (or
// /dev/null), stdout and stderr captured, the exit status decoded.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/test_files.hpp"

namespace bloomz::test {

struct Outcome {
  int status = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `prefix bloomz args`; `prefix` may be e.g. "setpriv ... ".
inline Outcome run_bloomz(const std::string& args, const std::string& input = "", const std::string& prefix = "") {
  const TempFile err({}, "stderr");
  const TempFile in(std::vector<uint8_t>(input.begin(), input.end()), "stdin");
  const std::string cmd = prefix + std::string(BLOOMZ_BINARY) + " " + args + " <" + (input.empty() ? "/dev/null" : in.path()) +
                          " 2>" + err.path();
  Outcome r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = read_text(err.path());
  return r;
}

}  // namespace bloomz::test
