// BloomConfig: BLOOM hyperparameters read from the bloom.* metadata keys with llama.cpp's strict
// types, and checked for consistency (nothing about any particular model size is assumed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bloomz {

class GgufFile;

struct BloomConfig {
  int64_t n_vocab = 0;      // length of tokenizer.ggml.tokens
  int64_t n_ctx_train = 0;  // bloom.context_length
  int64_t n_embd = 0;       // bloom.embedding_length
  int64_t n_ff = 0;         // bloom.feed_forward_length
  int64_t n_layer = 0;      // bloom.block_count
  int64_t n_head = 0;       // bloom.attention.head_count
  float layer_norm_eps = 1e-5f;       // bloom.attention.layer_norm_epsilon
  float max_alibi_bias = 8.0f;        // hard-coded for BLOOM in llama.cpp (not a GGUF key)
  std::optional<uint32_t> file_type;  // general.file_type (informational only)

  int64_t head_dim() const { return n_embd / n_head; }

  // Throws Error(Unsupported) for another architecture, Error(Format/Config) for bad keys.
  static BloomConfig from_gguf(const GgufFile& gguf);
};

// llama.cpp's name for a general.file_type value ("Q4_K - Medium"), or "unknown".
std::string file_type_name(uint32_t file_type);

}  // namespace bloomz
