// The "bloom" pre-tokenizer of llama.cpp (LLAMA_VOCAB_PRE_TYPE_BLOOM, shared with PORO and
// GPT3_FINNISH), written by hand over code points.
//
// llama.cpp runs the regex  " ?[^(\s|.,!?…。，、।۔،)]+"  with std::wregex (ECMAScript, "C"
// locale) over the code points, after replacing every non-ASCII code point of its Unicode
// whitespace set with 0x0B, and keeps the unmatched text between two matches as a piece of
// its own (unicode_regex_split_stl). Hence, with X = "not excluded" where the excluded set is
// ASCII isspace (\t \n \v \f \r and space), llama.cpp's Unicode whitespace, and the 15
// characters ( | . , ! ? ) … 。 ， 、 । ۔ ، :
//   * a match is a maximal run of X, optionally preceded by one U+0020 space;
//   * every stretch of text between matches (and before the first / after the last) is one
//     piece, however long and whatever it contains.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace bloomz {

// Splits `text` (llama-normalized UTF-8, see unicode::normalize_llama; any text that is valid
// UTF-8 qualifies) into consecutive pieces that cover it exactly. Pieces are appended to
// `pieces` as views into `text`.
void pretokenize_bloom(std::string_view text, std::vector<std::string_view>& pieces);

inline std::vector<std::string_view> pretokenize_bloom(std::string_view text) {
  std::vector<std::string_view> pieces;
  pretokenize_bloom(text, pieces);
  return pieces;
}

// The regex's class test: true when the code point may be part of a match's run
// (is not whitespace and not one of the listed punctuation characters).
bool bloom_is_word_cp(uint32_t cp);

}  // namespace bloomz
