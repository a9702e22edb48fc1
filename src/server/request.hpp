// Request bodies of the completion endpoints, parsed and checked before anything reaches the
// model: OpenAI's /v1/completions and llama.cpp server's /completion map onto one
// CompletionRequest, whose defaults are bloomz's (greedy, 256 tokens) so that a request equals
// `bloomz -p PROMPT --no-escape --json` with the same fields. Every problem is an ApiError (400).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bloomz/generate.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz::server {

enum class Dialect { OpenAI, LlamaCpp };

struct CompletionRequest {
  Dialect dialect = Dialect::OpenAI;
  std::string model;                 // echoed back (OpenAI); the loaded model answers regardless
  std::vector<std::string> prompts;  // OpenAI: one choice per prompt
  GenerateRequest gen;               // prompt_tokens is filled per prompt by tokenize_prompts
  std::optional<uint64_t> seed;      // as given; a sampling request without one gets a random seed
  int32_t logprobs = -1;             // -1: none; else top-N alternatives (OpenAI: 0 = chosen only)
  bool stream = false;
  bool echo = false;
  bool include_usage = false;        // OpenAI stream_options.include_usage
};

// Parses a JSON body; n_ctx caps max_tokens / n_predict (-1 and larger values stop at the
// context, as `bloomz -n` does). eos_id goes into the sampler. Throws ApiError.
CompletionRequest parse_completion(std::string_view body, Dialect dialect, int64_t n_ctx, int32_t eos_id);

// Tokenizes each prompt as `bloomz -p` does (special-token text parsed) and checks it against the
// context. Throws ApiError.
std::vector<std::vector<int32_t>> tokenize_prompts(const CompletionRequest& req, const Tokenizer& tok, int64_t n_ctx);

// /tokenize {"content": "..."} and /detokenize {"tokens": [...]}. Throw ApiError.
std::string parse_tokenize(std::string_view body);
std::vector<int32_t> parse_detokenize(std::string_view body, int32_t n_vocab);

}  // namespace bloomz::server
