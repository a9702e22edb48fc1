// libFuzzer target: GgufFile::parse on arbitrary bytes, then every typed getter on every key,
// every tensor's data range, BloomConfig::from_gguf and Tokenizer::from_gguf. Pure in-memory
// (no file), so it runs at full speed. Any exception other than bloomz::Error is a finding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "bloomz/config.hpp"
#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "bloomz/tokenizer.hpp"

using namespace bloomz;

namespace {

// Reads one byte through a pointer so that ASan checks the address.
volatile uint8_t g_sink;
void touch(const std::byte* p) { g_sink = static_cast<uint8_t>(*p); }

template <typename F>
void expect_error_or_value(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

void exercise_getters(const GgufFile& g) {
  // The getter that matches each key's type (no exception: fast), then one mismatched call.
  for (const GgufKv& kv : g.kvs()) {
    const std::string_view k = kv.key;
    switch (kv.value.type) {
      case GgufType::UINT32: (void)g.get_u32(k); break;
      case GgufType::FLOAT32: (void)g.get_f32(k); break;
      case GgufType::BOOL: (void)g.get_bool(k, false); break;
      case GgufType::STRING: (void)g.get_string(k); break;
      case GgufType::ARRAY:
        (void)g.array_length(k);
        if (kv.value.array_type == GgufType::STRING) {
          for (std::string_view s : g.get_string_array(k)) {
            if (!s.empty()) g_sink = static_cast<uint8_t>(s.back());
          }
        } else if (kv.value.array_type == GgufType::INT32) {
          (void)g.get_i32_array(k);
        }
        break;
      default: break;
    }
  }
  if (!g.kvs().empty()) {
    const std::string_view k = g.kvs().front().key;
    expect_error_or_value([&] { (void)g.get_u32(k); });
    expect_error_or_value([&] { (void)g.get_i32_array(k); });
  }
  for (const GgufTensorInfo& t : g.tensors()) {
    if (t.file_offset > g.file_size() || t.n_bytes > g.file_size() - t.file_offset) __builtin_trap();
    if (t.n_bytes > 0) {
      touch(t.data);
      touch(t.data + t.n_bytes - 1);
    }
    if (g.find_tensor(t.name) != &t) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const GgufFile g = GgufFile::parse(bytes, "fuzz.gguf");
    exercise_getters(g);
    expect_error_or_value([&] { (void)BloomConfig::from_gguf(g); });
    expect_error_or_value([&] {
      const Tokenizer tok = Tokenizer::from_gguf(g);
      const std::vector<int32_t> ids = tok.encode("Hello world </s> \xe2\x82\xac", true, true);
      for (int32_t id : ids) {
        if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
      }
      (void)tok.decode(ids, true);
    });
  } catch (const Error&) {
  }
  return 0;
}
