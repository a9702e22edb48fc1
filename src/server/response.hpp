// Response bodies of the completion endpoints: OpenAI's text_completion (whole, and as stream
// chunks) and llama.cpp server's /completion. The text and tokens are the GenerateResult's, so
// they are what `bloomz -p ... --json` prints for the same request.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bloomz/generate.hpp"
#include "bloomz/tokenizer.hpp"
#include "server/request.hpp"

namespace bloomz::server {

// What every body of one response shares.
struct ResponseMeta {
  std::string id;       // "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::optional<uint64_t> seed;  // the seed used when sampling (null when greedy and none given)
};

// One prompt's outcome.
struct Choice {
  std::string prompt;
  GenerateResult result;
};

// OpenAI's finish_reason for ours: eos and stop strings are "stop", -n and the context "length".
std::string openai_finish_reason(const std::string& reason);

nlohmann::json openai_completion(const CompletionRequest& req, const ResponseMeta& meta, const std::vector<Choice>& choices,
                                 const Tokenizer& tok);
// A stream chunk carrying text of choice `index`; the last chunk of a choice has its finish_reason
// (and, with logprobs, the whole choice's logprobs).
nlohmann::json openai_text_chunk(const ResponseMeta& meta, size_t index, std::string_view text);
nlohmann::json openai_final_chunk(const CompletionRequest& req, const ResponseMeta& meta, size_t index, const Choice& choice,
                                  const Tokenizer& tok);
nlohmann::json openai_usage_chunk(const ResponseMeta& meta, const std::vector<Choice>& choices);

nlohmann::json llamacpp_completion(const CompletionRequest& req, const ResponseMeta& meta, const Choice& choice, const Tokenizer& tok);
nlohmann::json llamacpp_text_chunk(std::string_view text);

// JSON text for the wire: invalid UTF-8 from a token becomes U+FFFD, as in the CLI's --json.
std::string to_wire(const nlohmann::json& j);
// One server-sent event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);

}  // namespace bloomz::server
