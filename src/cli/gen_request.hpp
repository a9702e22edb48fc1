// Building GenerateRequests: prompt tokenization with its checks, the seed rules, and one
// --batch-file input line (JSON with per-item overrides, or a plain prompt) turned into an item.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bloomz/generate.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz::cli {

// Tokenizes a prompt and checks it against the context; throws Error(Runtime) with both numbers.
std::vector<int32_t> prompt_tokens(const Tokenizer& tok, const std::string& prompt, bool parse_special, int64_t n_ctx);

uint64_t random_seed();

// One input line of --batch-file, parsed: the request or the error to report for it.
struct BatchItem {
  int64_t index = 0;  // 0-based input line
  nlohmann::json id = nullptr;
  std::string prompt;
  GenerateRequest req;
  std::optional<uint64_t> seed;
  std::string error;
};

// What every item starts from before its own overrides: the command line's request and -s.
struct BatchDefaults {
  GenerateRequest req;
  std::optional<uint64_t> seed;  // -s S
  bool parse_special = true;
};

// Parses input line `index` (0-based; messages say "line index+1"). The seed is the item's own
// `seed`, else batch_item_seed(S, index) with -s S, else random when the item samples.
BatchItem parse_batch_line(const std::string& line, int64_t index, const BatchDefaults& defaults, const Tokenizer& tok,
                           int64_t n_ctx);

}  // namespace bloomz::cli
