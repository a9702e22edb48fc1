// The JSON result of a generation (cli.md, "The JSON result") and the timing summary on stderr,
// shared by --json and --batch-file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bloomz/generate.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz::cli {

double tps(int64_t n, double ms);

nlohmann::json result_json(const nlohmann::json& id, const std::string& prompt, const GenerateRequest& req,
                           const GenerateResult& r, const Tokenizer& tok, std::optional<uint64_t> seed, double load_ms);

// One line of JSON ending in '\n'; invalid UTF-8 in strings becomes U+FFFD (cli.md).
std::string dump(const nlohmann::json& j);

// llama.cpp's four-line timing summary, on stderr.
void print_timings(double load_ms, const GenerateResult& r);

}  // namespace bloomz::cli
