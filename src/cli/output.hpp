// Writing results to stdout: a closed pipe (`bloomz ... | head -1`) ends the run quietly.
#pragma once

#include <string_view>

namespace bloomz::cli {

// Writes all bytes to stdout; if the reader has gone away (EPIPE), exits 0 without a message.
void write_stdout(std::string_view bytes);
// Flushes stdout (same EPIPE rule).
void flush_stdout();
bool stdout_is_terminal();

}  // namespace bloomz::cli
