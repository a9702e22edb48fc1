// Shared by the libFuzzer targets: where the fixture model is, and loading its tokenizer once.
#pragma once

#include <cstdlib>
#include <string>

#include "bloomz/gguf.hpp"
#include "bloomz/mapped_file.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz::fuzz {

// $BLOOMZ_FUZZ_MODEL, else the tiny fixture of the source tree this target was built from.
inline std::string fixture_model() {
  if (const char* env = std::getenv("BLOOMZ_FUZZ_MODEL"); env != nullptr && *env != '\0') return env;
  return std::string(BLOOMZ_SOURCE_DIR) + "/tests/data/models/tiny-odd-q4_0.gguf";
}

// The fixture's real BPE vocabulary (4260 tokens, merges, specials); built once per process.
inline const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tok = [] {
    const MappedFile f = MappedFile::open(fixture_model());
    const GgufFile g = GgufFile::parse(f.bytes(), fixture_model());
    return Tokenizer::from_gguf(g);
  }();
  return tok;
}

}  // namespace bloomz::fuzz
