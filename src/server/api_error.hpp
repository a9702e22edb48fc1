// ApiError: a failure that belongs to one HTTP request. It carries the status and OpenAI's error
// shape {"error": {"message", "type", "code"}}, so every endpoint answers errors the same way.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace bloomz::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)), code_(std::move(code)) {}
  int status() const noexcept { return status_; }
  nlohmann::json body() const { return {{"error", {{"message", what()}, {"type", type_}, {"code", code_}}}}; }

 private:
  int status_;
  std::string type_, code_;
};

// 400 for a field the client got wrong (OpenAI's "invalid_request_error").
inline ApiError bad_request(const std::string& message, const std::string& code = "invalid_value") {
  return ApiError(400, "invalid_request_error", code, message);
}

}  // namespace bloomz::server
