// A tiny BLOOM GGUF (F32, or Q8_0 matrices) built in memory (random weights, an 8-token byte vocabulary), with
// knobs for the faults the loader must refuse.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "bloomz/fp16.hpp"
#include <string>
#include <vector>

#include "support/gguf_builder.hpp"

namespace bloomz::test {

struct TinyBloom {
  uint32_t n_embd = 32, n_head = 2, n_layer = 1, n_ff = 128, n_ctx = 64, n_vocab = 8;
  std::string arch = "bloom";
  // Store the 2-D weight matrices as Q8_0 (d = amax / 127, q = round(x / d)) instead of F32.
  bool q8_0_matrices = false;
  bool with_tokenizer = true;
  bool untied = false;
  // Called with each tensor's (name, ne) before it is written; may change ne (shape faults).
  std::function<void(const std::string&, std::vector<uint64_t>&)> reshape;
  // Called last, to add or replace keys.
  std::function<void(GgufBuilder&)> extra;

  std::vector<uint8_t> build() const {
    GgufBuilder b;
    b.kv_string("general.architecture", arch);
    b.kv_u32("bloom.context_length", n_ctx);
    b.kv_u32("bloom.embedding_length", n_embd);
    b.kv_u32("bloom.feed_forward_length", n_ff);
    b.kv_u32("bloom.block_count", n_layer);
    b.kv_u32("bloom.attention.head_count", n_head);
    b.kv_u32("bloom.attention.head_count_kv", n_head);
    b.kv_f32("bloom.attention.layer_norm_epsilon", 1e-5f);
    b.kv_u32("general.file_type", 0);
    if (with_tokenizer) {
      std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<pad>"};
      std::vector<int32_t> types = {3, 3, 3, 3};
      for (uint32_t i = 4; i < n_vocab; ++i) {
        tokens.push_back(std::string(1, static_cast<char>('a' + (i - 4) % 26)) + std::to_string(i));
        types.push_back(1);
      }
      b.kv_string("tokenizer.ggml.model", "gpt2");
      b.kv_string("tokenizer.ggml.pre", "bloom");
      b.kv_string_array("tokenizer.ggml.tokens", tokens);
      b.kv_i32_array("tokenizer.ggml.token_type", types);
      b.kv_string_array("tokenizer.ggml.merges", {});
      b.kv_u32("tokenizer.ggml.bos_token_id", 1);
      b.kv_u32("tokenizer.ggml.eos_token_id", 2);
      b.kv_u32("tokenizer.ggml.unknown_token_id", 0);
      b.kv_u32("tokenizer.ggml.padding_token_id", 3);
    }
    if (extra) extra(b);
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 0.2f);
    auto add = [&](const std::string& name, std::vector<uint64_t> ne) {
      if (reshape) reshape(name, ne);
      uint64_t n = 1;
      for (uint64_t d : ne) n *= d;
      std::vector<float> v(n);
      for (float& x : v) x = normal(rng);
      if (q8_0_matrices && ne.size() == 2 && ne[0] % 32 == 0) {
        std::vector<uint8_t> bytes;
        for (uint64_t i = 0; i < n; i += 32) {
          float amax = 0.0f;
          for (uint64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[i + j]));
          const float d = amax / 127.0f;
          const uint16_t dh = fp32_to_fp16(d);
          bytes.push_back(static_cast<uint8_t>(dh & 0xFF));
          bytes.push_back(static_cast<uint8_t>(dh >> 8));
          for (uint64_t j = 0; j < 32; ++j)
            bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(d > 0.0f ? std::lround(v[i + j] / d) : 0)));
        }
        b.tensor(name, 8 /* GGML_TYPE_Q8_0 */, ne, std::move(bytes));
        return;
      }
      b.tensor_f32(name, ne, v);
    };
    const uint64_t E = n_embd, F = n_ff, V = n_vocab;
    add("token_embd.weight", {E, V});
    add("token_embd_norm.weight", {E});
    add("token_embd_norm.bias", {E});
    for (uint32_t i = 0; i < n_layer; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      add(p + "attn_norm.weight", {E});
      add(p + "attn_norm.bias", {E});
      add(p + "attn_qkv.weight", {E, 3 * E});
      add(p + "attn_qkv.bias", {3 * E});
      add(p + "attn_output.weight", {E, E});
      add(p + "attn_output.bias", {E});
      add(p + "ffn_norm.weight", {E});
      add(p + "ffn_norm.bias", {E});
      add(p + "ffn_up.weight", {E, F});
      add(p + "ffn_up.bias", {F});
      add(p + "ffn_down.weight", {F, E});
      add(p + "ffn_down.bias", {E});
    }
    add("output_norm.weight", {E});
    add("output_norm.bias", {E});
    if (untied) add("output.weight", {E, V});
    return b.build();
  }
};

}  // namespace bloomz::test
