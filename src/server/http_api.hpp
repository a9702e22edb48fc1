// HttpApi: the endpoints of `bloomz serve` on a cpp-httplib server. It checks the API key and
// body size, turns bodies into Jobs for the Scheduler, and answers with whole JSON bodies or
// server-sent events. Errors are OpenAI-shaped and stay with the request that caused them.
#pragma once

#include <cstddef>
#include <string>

#include "bloomz/tokenizer.hpp"
#include "server/scheduler.hpp"

namespace httplib {
class Server;
}

namespace bloomz::server {

struct ApiOptions {
  std::string api_key;     // empty: no key required
  size_t max_body = 1 << 20;
  std::string model_name;  // what /v1/models lists and responses name
};

class HttpApi {
 public:
  HttpApi(const Tokenizer& tok, Scheduler& scheduler, ApiOptions options);
  // Registers routes, auth, limits, error bodies and the request log on `server`.
  void install(httplib::Server& server);

 private:
  const Tokenizer& tok_;
  Scheduler& scheduler_;
  ApiOptions opt_;
};

// Equality of two strings in time that depends only on the expected one's length (an API key must
// not leak through the timing of a mismatch).
bool constant_time_equal(std::string_view given, std::string_view expected);

}  // namespace bloomz::server
