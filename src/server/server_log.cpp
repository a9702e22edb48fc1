// Logging for `bloomz serve` (server_log.hpp).
#include "server/server_log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

namespace bloomz::server {

namespace {

using nlohmann::json;

LogFormat g_format = LogFormat::Text;

// One JSON object per line: {"time", "level", "msg"}; a message that is itself a JSON object
// (the request lines) has its fields merged in instead of "msg".
class JsonLinesSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    json line = json::object();
    const auto t = std::chrono::duration<double>(msg.time.time_since_epoch()).count();
    line["time"] = t;
    line["level"] = std::string(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size());
    json fields = payload.starts_with('{') ? json::parse(payload, nullptr, false) : json();
    if (fields.is_object()) {
      line.update(fields);
    } else {
      line["msg"] = payload;
    }
    const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// A path is the client's text: in a text log, control bytes could forge lines.
std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

void setup_server_logging(LogFormat format) {
  g_format = format;
  const auto level = spdlog::get_level();
  std::shared_ptr<spdlog::logger> logger;
  if (format == LogFormat::Json) {
    logger = std::make_shared<spdlog::logger>("bloomz-serve", std::make_shared<JsonLinesSink>());
  } else {
    logger = std::make_shared<spdlog::logger>("bloomz-serve", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_pattern("%^%l%$: %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // a log collector sees each line as it happens
  spdlog::set_default_logger(logger);
}

void log_request(const RequestLogLine& l) {
  if (g_format == LogFormat::Json) {
    spdlog::info("{}", json({{"method", l.method}, {"path", l.path}, {"status", l.status}, {"prompt_tokens", l.prompt_tokens},
                             {"gen_tokens", l.gen_tokens}, {"ms", l.ms}})
                           .dump(-1, ' ', false, json::error_handler_t::replace));
  } else {
    spdlog::info("{} {} {} prompt_tokens={} gen_tokens={} {:.1f} ms", printable(l.method), printable(l.path), l.status, l.prompt_tokens, l.gen_tokens, l.ms);
  }
}

}  // namespace bloomz::server
