// libFuzzer target: Tokenizer::encode on arbitrary bytes with the fixture's real BPE vocabulary.
// First byte: bit 0 parse_special, bit 1 add_special. Checks: every id is in range, decoding
// never fails, and valid UTF-8 without special-token parsing round-trips byte for byte.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bloomz/error.hpp"
#include "fuzz_common.hpp"
#include "unicode.hpp"

using namespace bloomz;

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::fixture_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Tokenizer& tok = fuzz::fixture_tokenizer();
  const bool parse_special = data[0] & 1;
  const bool add_special = data[0] & 2;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, parse_special, add_special);
  } catch (const Error& e) {
    // Only a code point above U+10FFFF may be refused (llama.cpp throws there too).
    if (e.kind() != ErrorKind::Runtime) __builtin_trap();
    return 0;
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
  }
  const std::string back = tok.decode(ids, true);
  if (!parse_special && !add_special && valid_utf8(text) && back != text) __builtin_trap();
  return 0;
}
