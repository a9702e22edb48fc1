// libFuzzer target: CLI option parsing. The input is split at NUL bytes into argv (after
// "bloomz"); the real app (cli/app.cpp) parses it. CLI::ParseError is the documented outcome of
// bad input (main() maps it to exit 2, or prints help/version); any other exception would escape
// main() and is a finding. Nothing runs: parsing only fills option structs.
// (tests/data/fuzz/cli.dict: the flags and values, for -dict.)
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"bloomz"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  if (!cur.empty() && args.size() < 64) args.push_back(cur);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Building the app costs milliseconds: build it once and clear() its parse results per input
  // (the option structs keep stale values, which parsing never reads).
  static bloomz::cli::CommonOptions common;
  static std::vector<bloomz::cli::Command> commands;
  static CLI::App app;
  static const bloomz::cli::Command generate = bloomz::cli::build_app(app, common, commands);
  (void)generate;
  app.clear();
  try {
    app.parse(static_cast<int>(args.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    (void)app.exit(e, out, err);  // what main() prints for help, version and errors
  }
  return 0;
}
