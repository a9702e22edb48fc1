// libFuzzer target: Model::load (parse, configuration, tensor binding) on arbitrary bytes, plus
// Tokenizer::from_gguf on what loaded. Model::load takes a path, so each input is written to one
// memfd reused for the whole run (no disk I/O); a file-backed load is what the CLI does.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/tokenizer.hpp"

using namespace bloomz;

namespace {

int g_fd = -1;
std::string g_path;

volatile float g_sink;

bool write_input(const uint8_t* data, size_t size) {
  if (ftruncate(g_fd, 0) != 0) return false;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(g_fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_fd = memfd_create("bloomz-fuzz-model", MFD_CLOEXEC);
  if (g_fd < 0) __builtin_trap();
  g_path = "/proc/self/fd/" + std::to_string(g_fd);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!write_input(data, size)) __builtin_trap();
  for (const bool use_mmap : {true, false}) {
    try {
      const auto m = Model::load(g_path, LoadOptions{use_mmap, false});
      const BloomConfig& c = m->config();
      // Every bound vector and matrix lies inside the file: read their ends.
      g_sink = m->token_embd_norm_w[c.n_embd - 1] + m->output_norm_b[c.n_embd - 1];
      for (const LayerWeights& l : m->layers) g_sink = l.ffn_up_b[c.n_ff - 1] + l.attn_qkv_b[3 * c.n_embd - 1];
      for (const TensorView* t : {&m->token_embd, &m->output}) {
        const auto* last = reinterpret_cast<const volatile uint8_t*>(t->data) + t->rows * t->row_bytes - 1;
        g_sink = *last;
      }
      (void)m->weight_bytes_per_token();
      (void)m->n_params();
      const Tokenizer tok = Tokenizer::from_gguf(m->gguf());
      if (tok.n_vocab() != c.n_vocab) __builtin_trap();
    } catch (const Error&) {
    }
    if (size > 4096) break;  // the read-into-memory path once is enough for big inputs
  }
  return 0;
}
