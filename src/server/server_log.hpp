// Logging for `bloomz serve`: a thread-safe stderr logger (HTTP threads and the scheduler log at
// once), as text or as one JSON object per line for log collectors, and the per-request line.
#pragma once

#include <string>
#include <string_view>

namespace bloomz::server {

enum class LogFormat { Text, Json };

// Replaces the default logger, keeping its level.
void setup_server_logging(LogFormat format);

struct RequestLogLine {
  std::string method, path;
  int status = 0;
  int64_t prompt_tokens = 0, gen_tokens = 0;
  double ms = 0;
};
void log_request(const RequestLogLine& line);

}  // namespace bloomz::server
