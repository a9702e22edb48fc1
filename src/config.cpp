// bloom.* metadata -> BloomConfig, with the consistency checks that keep later allocations sane.
#include "bloomz/config.hpp"

#include <fmt/format.h>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"

namespace bloomz {

namespace {

// Generous upper bounds (BLOOM-176B has 70 layers, n_embd 14336): beyond them a file is corrupt,
// and we refuse it before sizing any buffer from it.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxEmbd = 1 << 17;
constexpr int64_t kMaxCtx = 1 << 20;
constexpr int64_t kMaxVocab = 1 << 22;

int64_t positive(const GgufFile& g, const char* key, int64_t max) {
  const int64_t v = g.get_u32(key);
  if (v <= 0 || v > max) {
    throw Error(ErrorKind::Config, fmt::format("{}: key {} = {} is out of range 1..{}", g.path(), key, v, max));
  }
  return v;
}

}  // namespace

BloomConfig BloomConfig::from_gguf(const GgufFile& g) {
  const std::string_view arch = g.get_string("general.architecture");
  if (arch != "bloom") {
    throw Error(ErrorKind::Unsupported,
                fmt::format("{}: architecture '{}' is not supported (bloomz runs 'bloom' models only)", g.path(), arch));
  }
  BloomConfig c;
  c.n_ctx_train = positive(g, "bloom.context_length", kMaxCtx);
  c.n_embd = positive(g, "bloom.embedding_length", kMaxEmbd);
  c.n_ff = positive(g, "bloom.feed_forward_length", 8 * kMaxEmbd);
  c.n_layer = positive(g, "bloom.block_count", kMaxLayers);
  c.n_head = positive(g, "bloom.attention.head_count", c.n_embd);
  if (auto kv = g.get_u32_opt("bloom.attention.head_count_kv"); kv && static_cast<int64_t>(*kv) != c.n_head) {
    throw Error(ErrorKind::Unsupported, fmt::format("{}: bloom.attention.head_count_kv = {} differs from head_count = {} (BLOOM has no grouped-query attention)", g.path(), *kv, c.n_head));
  }
  if (c.n_embd % c.n_head != 0) {
    throw Error(ErrorKind::Config, fmt::format("{}: bloom.embedding_length {} is not a multiple of bloom.attention.head_count {}", g.path(), c.n_embd, c.n_head));
  }
  c.layer_norm_eps = g.get_f32("bloom.attention.layer_norm_epsilon");
  if (!(c.layer_norm_eps >= 0.0f && c.layer_norm_eps < 1.0f)) {
    throw Error(ErrorKind::Config, fmt::format("{}: bloom.attention.layer_norm_epsilon = {} is not in [0, 1)", g.path(), c.layer_norm_eps));
  }
  c.file_type = g.get_u32_opt("general.file_type");
  if (!g.has("tokenizer.ggml.tokens")) {
    throw Error(ErrorKind::Format, fmt::format("{}: required key tokenizer.ggml.tokens is missing", g.path()));
  }
  const uint64_t n_vocab = g.array_length("tokenizer.ggml.tokens");
  if (n_vocab == 0 || n_vocab > static_cast<uint64_t>(kMaxVocab)) {
    throw Error(ErrorKind::Config, fmt::format("{}: tokenizer.ggml.tokens has {} entries (expected 1..{})", g.path(), n_vocab, kMaxVocab));
  }
  c.n_vocab = static_cast<int64_t>(n_vocab);
  return c;
}

std::string file_type_name(uint32_t ft) {
  switch (ft) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 21: return "Q2_K - Small";
    case 32: return "BF16";
    default: return "unknown";
  }
}

}  // namespace bloomz
