// Placeholder until the tokenizer lands (issue 4): the commands exist and exit 2.
#include "cli/commands.hpp"

namespace bloomz::cli {
Command add_tokenize_command(CLI::App& root, CommonOptions&) {
  return add_unbuilt_command(root, "tokenize", "Text to token ids, like llama-tokenize");
}
Command add_detokenize_command(CLI::App& root, CommonOptions&) {
  return add_unbuilt_command(root, "detokenize", "Token ids to text");
}
}  // namespace bloomz::cli
