// Writes the small GGUF seed files of tests/data/fuzz/gguf: tiny valid BLOOM models (a few KB)
// in several shapes and tensor types, so the fuzzers start from inputs that load.
// Usage: make_fuzz_seeds OUT_DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "support/tiny_model.hpp"

using bloomz::test::GgufBuilder;
using bloomz::test::TinyBloom;

namespace {

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}

TinyBloom small() {
  TinyBloom t;
  t.n_embd = 4;
  t.n_head = 1;
  t.n_ff = 8;
  t.n_ctx = 16;
  t.n_vocab = 6;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  write(dir + "/tiny-tied.gguf", small().build());
  {
    TinyBloom t = small();
    t.untied = true;
    t.n_layer = 2;
    write(dir + "/tiny-untied-2layer.gguf", t.build());
  }
  {
    TinyBloom t = small();
    t.n_head = 2;
    t.extra = [](GgufBuilder& b) {
      b.kv_u32("general.alignment", 64);
      b.kv_bool("tokenizer.ggml.add_bos_token", false);
      b.kv_bool("tokenizer.ggml.add_eos_token", false);
    };
    write(dir + "/tiny-align64.gguf", t.build());
  }
  {
    // Header only: every metadata value type once, one Q8_0 tensor (block of 32).
    GgufBuilder b;
    b.kv_string("general.architecture", "bloom");
    b.kv_u32("u32", 7);
    b.kv_i32("i32", -7);
    b.kv_f32("f32", 0.5f);
    b.kv_bool("bool", true);
    b.kv_string_array("strs", {"x", "", "yz"});
    b.kv_i32_array("ints", {1, 2, 3});
    b.tensor("q", 8, {32, 2}, std::vector<uint8_t>(2 * 34, 1));
    write(dir + "/types.gguf", b.build());
  }
  return 0;
}
