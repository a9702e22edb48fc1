// libFuzzer target: the streaming detokenizer on arbitrary id sequences. The ids drive the real
// decoding loop (bloomz::Generation, greedy on one-hot logits) with stop strings, and a
// Utf8Streamer fed the same pieces. Input layout: byte 0 flags (bit 0 special, bit 1 ignore_eos,
// bit 2 raw ids, bits 3-4 both set: also run the decoding loop, which costs n_vocab per step), byte 1 stop-string length L (mod 8), L bytes of stop string, then ids as
// little-endian u16 (taken modulo n_vocab unless raw, when out-of-range ids must throw Usage).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bloomz/error.hpp"
#include "bloomz/generate.hpp"
#include "fuzz_common.hpp"

using namespace bloomz;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::fixture_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Tokenizer& tok = fuzz::fixture_tokenizer();
  const int32_t n_vocab = tok.n_vocab();
  const uint8_t flags = data[0];
  const bool special = flags & 1, ignore_eos = flags & 2, raw = flags & 4;
  const size_t stop_len = std::min<size_t>(data[1] % 8, size - 2);
  const std::string stop(reinterpret_cast<const char*>(data + 2), stop_len);
  std::vector<int32_t> ids;
  for (size_t i = 2 + stop_len; i + 1 < size; i += 2) {
    uint16_t v;
    std::memcpy(&v, data + i, 2);
    ids.push_back(raw ? static_cast<int32_t>(v) : static_cast<int32_t>(v % n_vocab));
  }

  if (raw) {
    // decode / token_to_piece on unchecked ids: an error for out-of-range ones, never a crash.
    bool out_of_range = false;
    for (int32_t id : ids) out_of_range |= id >= n_vocab;
    try {
      (void)tok.decode(ids, special);
      if (out_of_range) __builtin_trap();
    } catch (const Error& e) {
      if (!out_of_range || e.kind() != ErrorKind::Usage) __builtin_trap();
    }
    return 0;
  }

  // Utf8Streamer: the concatenated output equals the concatenated input; at most 3 bytes held.
  Utf8Streamer streamer;
  std::string streamed, all;
  for (int32_t id : ids) {
    const std::string piece = tok.token_to_piece(id, special);
    all += piece;
    streamed += streamer.push(piece);
    if (all.size() - streamed.size() > 3) __builtin_trap();
  }
  streamed += streamer.flush();
  if (streamed != all || streamer.pending()) __builtin_trap();

  if ((flags & 0x18) != 0x18) return 0;
  // Generation: one-hot logits make the greedy sampler pick exactly the fuzzed ids.
  GenerateRequest req;
  // The sampler reads all n_vocab logits per step: drive the loop with the first 16 ids only.
  if (ids.size() > 16) ids.resize(16);
  req.n_predict = static_cast<int64_t>(ids.size());
  req.special = special;
  req.sampler.ignore_eos = ignore_eos;
  if (!stop.empty()) req.stops.push_back(stop);
  std::string printed;
  Generation gen(tok, req, [&](std::string_view s) { printed.append(s); });
  std::vector<float> logits(static_cast<size_t>(n_vocab), 0.0f);
  for (size_t i = 0; i < ids.size() && !gen.done(); ++i) {
    const auto at = static_cast<size_t>(ids[i]);
    logits[at] = 1.0f;
    const auto next = gen.step(logits, static_cast<int64_t>(i + 1), 1 << 20);
    logits[at] = 0.0f;
    if (next && *next != ids[i]) __builtin_trap();
    if (!next) break;
  }
  const GenerateResult& r = gen.finish();
  if (printed != r.text) __builtin_trap();
  if (r.tokens.size() > ids.size()) __builtin_trap();
  if (r.finish_reason == "stop") {
    if (stop.empty()) __builtin_trap();
  } else if (r.text.find(stop) != std::string::npos && !stop.empty()) {
    __builtin_trap();  // a stop string in the output must have ended it
  }
  // Without a stop string, the text is exactly the tokens decoded (EOS printed only if special).
  if (stop.empty() && r.finish_reason != "eos" && r.text != tok.decode(r.tokens, special)) __builtin_trap();
  return 0;
}
