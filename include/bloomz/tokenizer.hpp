// bloomz::Tokenizer: BLOOM's byte-level BPE tokenizer, token for token what llama.cpp produces
// (tokenizer.ggml.model "gpt2", pre-tokenizer "bloom").
//
// encode():  special-token partition (llama.cpp's tokenizer_st_partition) -> per raw fragment:
//            llama.cpp's lenient UTF-8 decode (each undecodable byte becomes U+FFFD) and
//            canonical re-encode -> "bloom" pre-tokenizer -> BPE per piece (merge rank, leftmost
//            first on ties) -> ids. A sequence that decodes above U+10FFFF (lead bytes F5..F7,
//            or F4 90+) throws Error(Runtime): llama.cpp throws std::invalid_argument there.
// decode():  the tokens' bytes concatenated, no clean-up; CONTROL/UNKNOWN tokens are empty
//            unless `special`; UNUSED / BYTE / UNDEFINED tokens are always empty.
// A Tokenizer owns copies of all its strings: it does not borrow from the GGUF file.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bloomz/huge_pages.hpp"

namespace bloomz {

class GgufFile;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

// Everything a Tokenizer is built from, as found in the GGUF keys (views must stay valid during
// Tokenizer::from_vocab only).
struct VocabData {
  HugeVector<std::string_view> tokens;   // tokenizer.ggml.tokens
  std::vector<int32_t> token_types;      // tokenizer.ggml.token_type (empty: all Normal)
  HugeVector<std::string_view> merges;   // tokenizer.ggml.merges, "left right"
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1 = none
  bool add_bos = false, add_eos = false;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,pre,tokens,token_type,merges,*_token_id,add_*_token}.
  // Requires model "gpt2"; pre "bloom" (or "poro"/"gpt3-finnish", same regex), or absent when
  // general.architecture is "bloom". Throws Error(Format) naming key and index for bad data,
  // Error(Unsupported) for another tokenizer.
  static Tokenizer from_gguf(const GgufFile& gguf);
  // Same validation on in-memory data (the key names in messages are the GGUF ones).
  static Tokenizer from_vocab(const VocabData& data);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text to ids. parse_special: the text of CONTROL/UNKNOWN tokens (`<s>`, `</s>`, `<unk>`,
  // `<pad>`) becomes that token (USER_DEFINED tokens always do). add_special: prepend BOS /
  // append EOS when the vocabulary says so (never for BLOOM).
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true,
                              bool add_special = true) const;

  // Raw bytes of one token (possibly an incomplete UTF-8 sequence). Throws Error(Usage) for an
  // id out of range.
  std::string token_to_piece(int32_t id, bool special = false) const;
  std::string decode(std::span<const int32_t> ids, bool special = false) const;

  int32_t n_vocab() const;
  size_t n_merges() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;
  bool add_bos() const;
  bool add_eos() const;
  bool is_eog(int32_t id) const;
  bool is_special(int32_t id) const;  // CONTROL, UNKNOWN or USER_DEFINED
  TokenType token_type(int32_t id) const;
  std::string_view token_text(int32_t id) const;  // as stored (byte-level form)
  // Id of an exact token text, or -1.
  int32_t find_token(std::string_view text) const;

 private:
  struct Impl;
  Tokenizer();
  std::unique_ptr<Impl> impl_;
};

// Streaming decoder: push raw token bytes, get back only complete UTF-8 sequences. Bytes that
// can never complete a sequence (stray continuation bytes, invalid leads, a broken sequence)
// are passed through unchanged as soon as that is known; an incomplete tail is held back
// (at most 3 bytes) until more bytes arrive or flush() is called.
class Utf8Streamer {
 public:
  std::string push(std::string_view bytes);
  std::string flush();
  bool pending() const { return !held_.empty(); }

 private:
  std::string held_;
};

}  // namespace bloomz
