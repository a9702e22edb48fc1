// UTF-8 helpers with llama.cpp's exact semantics, and GPT-2's byte <-> unicode tables.
//
// llama.cpp decodes text leniently (`unicode_cpt_from_utf8`): the lead byte alone decides the
// length, continuation bytes must be 10xxxxxx, overlong forms and surrogates are accepted, and
// any byte that does not start a decodable sequence becomes U+FFFD (one per byte). The code
// points are re-encoded canonically before byte-level BPE, so the tokenizer sees the
// "llama-normalized" text produced by `normalize_llama`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bloomz::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// llama.cpp's decoder: on success stores the code point (may exceed 0x10FFFF for F5..F7 leads,
// may be a surrogate or an overlong value) and advances `pos`; on failure returns false and
// leaves `pos` unchanged (the caller substitutes U+FFFD and skips one byte).
bool decode_lenient(std::string_view s, size_t& pos, uint32_t& cp);

// Appends the canonical UTF-8 encoding of cp (<= 0x10FFFF; surrogates are encoded as 3 bytes
// like llama.cpp does). Returns false (and appends nothing) for cp > 0x10FFFF.
bool append_utf8(std::string& out, uint32_t cp);

// Number of bytes a sequence starting with this byte claims (llama.cpp's unicode_len_utf8:
// 1 for 0x00..0xBF, 2 for 0xC0..0xDF, 3 for 0xE0..0xEF, 4 for 0xF0..0xFF).
inline size_t len_utf8(unsigned char lead) {
  static constexpr uint8_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[lead >> 4];
}

// True when `s` is exactly what llama.cpp's decode + re-encode produces from it, i.e. every
// sequence is decodable and canonically encoded (surrogates allowed) and <= U+10FFFF.
bool is_llama_normalized(std::string_view s);

// llama.cpp's decode (bad bytes -> U+FFFD) followed by canonical re-encoding. Throws
// bloomz::Error(Runtime) naming the byte offset for a sequence that decodes above U+10FFFF
// (llama.cpp throws std::invalid_argument out of llama_tokenize there).
std::string normalize_llama(std::string_view s);

// llama.cpp's Unicode whitespace set (unicode-data.cpp `unicode_set_whitespace`, the Unicode
// White_Space property): U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_llama_whitespace(uint32_t cp);

// GPT-2 bytes_to_unicode: byte -> code point.
const std::array<uint32_t, 256>& byte_to_cp();
// Inverse: code point -> byte, or -1 when the code point is not one of the 256.
int cp_to_byte(uint32_t cp);

// Strictly valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF)?
bool is_valid_utf8(std::string_view s);
// Replaces every maximal invalid subsequence by U+FFFD (for JSON output).
std::string sanitize_utf8(std::string_view s);

}  // namespace bloomz::unicode
