// Model: the immutable BLOOM weights. It owns the file bytes (MappedFile), the parsed header
// (GgufFile) and the configuration, and binds every tensor as a view into the bytes through one
// manifest (GGUF name, expected shape, allowed types), validated once at load. Sessions (KV cache,
// scratch) borrow a const Model; several can share one.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bloomz/config.hpp"
#include "bloomz/gguf.hpp"
#include "bloomz/head_screen.hpp"
#include "bloomz/mapped_file.hpp"
#include "bloomz/tensor.hpp"

namespace bloomz {

// GGUF names follow llama.cpp (HF name in the comment): one comment here records the mapping.
struct LayerWeights {
  const float* attn_norm_w = nullptr;  // input_layernorm.weight          [n_embd]
  const float* attn_norm_b = nullptr;  // input_layernorm.bias            [n_embd]
  TensorView attn_qkv;                 // self_attention.query_key_value  [n_embd -> 3*n_embd], rows [Q | K | V]
  const float* attn_qkv_b = nullptr;   //                                 [3*n_embd]
  TensorView attn_output;              // self_attention.dense            [n_embd -> n_embd]
  const float* attn_output_b = nullptr;
  const float* ffn_norm_w = nullptr;   // post_attention_layernorm        [n_embd]
  const float* ffn_norm_b = nullptr;
  TensorView ffn_up;                   // mlp.dense_h_to_4h               [n_embd -> n_ff]
  const float* ffn_up_b = nullptr;
  TensorView ffn_down;                 // mlp.dense_4h_to_h               [n_ff -> n_embd]
  const float* ffn_down_b = nullptr;
};

struct LoadOptions {
  bool use_mmap = true;
  bool lock = false;
  // Store Q4_0 / Q8_0 / Q4_K / Q6_K matrices in the x8 layout (src/kernels/repack.hpp) when the active
  // kernel table has dots for it; the file pages they came from are then released.
  bool repack = true;
  // Map the weight pages into the process in a background thread, in the order the forward pass
  // reads them, while the caller builds the tokenizer (file layout over mmap only). The pages
  // are in the page cache but not in this process's page tables; faulting them inside the first
  // forward pass costs that pass 30-100 ms.
  bool prefault = false;
};

// One entry of the tensor manifest, as bound (for inspect and tests).
struct BoundTensor {
  const GgufTensorInfo* info = nullptr;
  bool required = true;
};

class Model {
 public:
  // Opens, parses, validates and binds. Throws bloomz::Error naming the file and the fault.
  static std::unique_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});

  const BloomConfig& config() const { return config_; }
  const GgufFile& gguf() const { return gguf_; }
  const MappedFile& file() const { return file_; }

  TensorView token_embd;                  // word_embeddings         [n_embd -> n_vocab rows]
  const float* token_embd_norm_w = nullptr;  // word_embeddings_layernorm
  const float* token_embd_norm_b = nullptr;
  std::vector<LayerWeights> layers;
  const float* output_norm_w = nullptr;   // ln_f
  const float* output_norm_b = nullptr;
  TensorView output;                      // LM head: output.weight, or token_embd when tied
  bool tied_output = true;

  // Ends the LoadOptions::prefault thread at its next 2 MiB step: once the forward pass runs, the
  // thread would take a core from it (its pages then fault in inside the pass, as without it).
  void stop_prefault() const;

  // The LM head's screen for greedy decoding (head_screen.hpp), built on the first call (once,
  // whichever thread asks); nullptr when the head cannot be screened (not fp16, or Inf/NaN in it)
  // or the file is not mapped or is locked in memory (the head's pages could not be given back).
  const HeadScreen* head_screen() const;
  // The screen if a head_screen() call has built it, else nullptr (any thread, any time).
  const HeadScreen* head_screen_if_built() const { return screen_built_.load(std::memory_order_acquire) ? screen_.get() : nullptr; }

  // Bytes of weights one decoded token reads (every matrix once; the embedding row is tiny).
  int64_t weight_bytes_per_token() const;
  int64_t n_params() const;  // every tensor in the file, as llama.cpp counts
  int64_t repacked_bytes() const { return repacked_bytes_; }

 private:
  Model() = default;
  void repack_matrices();
  void start_prefault();
  struct FreeDeleter { void operator()(std::byte* p) const; };
  MappedFile file_;
  std::unique_ptr<std::byte, FreeDeleter> repacked_;  // owns the x8 copies of repacked matrices
  int64_t repacked_bytes_ = 0;
  GgufFile gguf_;
  BloomConfig config_;
  mutable std::once_flag screen_once_;
  mutable std::unique_ptr<HeadScreen> screen_;
  mutable std::atomic<bool> screen_built_{false};
  mutable std::jthread prefault_;  // last: stopped and joined before the mapping goes
};

}  // namespace bloomz
