#include "pretokenize.hpp"

#include <array>
#include <cstdint>

#include "unicode.hpp"

namespace bloomz {

namespace {

constexpr std::array<bool, 128> make_ascii_word() {
  std::array<bool, 128> t{};
  for (int c = 0; c < 128; ++c) t[c] = true;
  // std::wregex \s in the "C" locale: isspace.
  for (int c : {'\t', '\n', '\v', '\f', '\r', ' '}) t[c] = false;
  // The literal characters of the class: ( | . , ! ? )
  for (int c : {'(', '|', '.', ',', '!', '?', ')'}) t[c] = false;
  return t;
}
constexpr std::array<bool, 128> kAsciiWord = make_ascii_word();

// Decodes one code point of llama-normalized text (well-formed apart from surrogates).
inline uint32_t next_cp(const unsigned char* p, size_t& i) {
  const unsigned char c0 = p[i];
  if (c0 < 0x80) {
    i += 1;
    return c0;
  }
  if (c0 < 0xE0) {
    const uint32_t cp = ((c0 & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
    i += 2;
    return cp;
  }
  if (c0 < 0xF0) {
    const uint32_t cp = ((c0 & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
    i += 3;
    return cp;
  }
  const uint32_t cp = ((c0 & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) |
                      ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
  i += 4;
  return cp;
}

}  // namespace

bool bloom_is_word_cp(uint32_t cp) {
  if (cp < 0x80) return kAsciiWord[cp];
  switch (cp) {
    case 0x2026:  // …
    case 0x3002:  // 。
    case 0xFF0C:  // ，
    case 0x3001:  // 、
    case 0x0964:  // ।
    case 0x06D4:  // ۔
    case 0x060C:  // ،
      return false;
    default:
      return !unicode::is_llama_whitespace(cp);
  }
}

void pretokenize_bloom(std::string_view text, std::vector<std::string_view>& pieces) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t gap_start = 0;  // start of the text not yet emitted
  size_t i = 0;
  while (i < n) {
    const size_t start = i;
    const uint32_t cp = next_cp(p, i);
    bool match = bloom_is_word_cp(cp);
    if (!match && cp == ' ' && i < n) {
      size_t j = i;
      match = bloom_is_word_cp(next_cp(p, j));
      if (match) i = j;
    }
    if (!match) continue;
    // Extend the run of word code points greedily.
    while (i < n) {
      size_t j = i;
      if (!bloom_is_word_cp(next_cp(p, j))) break;
      i = j;
    }
    if (start > gap_start) pieces.push_back(text.substr(gap_start, start - gap_start));
    pieces.push_back(text.substr(start, i - start));
    gap_start = i;
  }
  if (gap_start < n) pieces.push_back(text.substr(gap_start));
}

}  // namespace bloomz
