// JSON Lines output of the bloomz binary (--batch-file results), parsed line by line.
#pragma once

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace bloomz::test {

// One object per line; throws nlohmann::json::parse_error for a line that is not JSON.
inline std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace bloomz::test
