// Reading prompt text for the commands: -p (with escape processing), -f FILE, -f -, or stdin
// when it is not a terminal.
#pragma once

#include <string>

namespace bloomz::cli {

// Processes \n \r \t \' \" \\ in -p text; any other backslash sequence is kept as written.
std::string process_escapes(const std::string& text);
// Whole file (or stdin for "-") byte for byte; throws Error(Io) naming the path.
std::string read_file_or_stdin(const std::string& path);
bool stdin_is_terminal();

}  // namespace bloomz::cli
