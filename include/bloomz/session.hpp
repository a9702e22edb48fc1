// Session: one conversation over a shared, immutable Model: the KV cache, scratch buffers and the
// position. eval() runs a batch of tokens through the forward pass (weights read once per
// batch), appends their keys and values to the cache, and returns the requested logits.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "bloomz/head_screen.hpp"
#include "bloomz/matmul.hpp"
#include "bloomz/model.hpp"

namespace bloomz {

// The KV cache's precision: fp16 (the default, llama.cpp's), f32, or llama.cpp's q8_0 blocks
// (`-ctk q8_0 -ctv q8_0`: 32 int8 values and an fp16 scale; half the bytes of fp16 read per
// decoded token; needs a head dimension that is a multiple of 32).
enum class KvType { F16, F32, Q8_0 };

// ggml's name of the cache type ("f16", "f32", "q8_0").
const char* kv_type_name(KvType t);
// Bytes of one cached row of n values (one position's keys, or values, of one layer).
int64_t kv_row_bytes(KvType t, int64_t n);

struct SessionOptions {
  int64_t n_ctx = 0;    // 0 = the model's bloom.context_length
  int64_t n_batch = 512;  // tokens per forward call when evaluating a prompt
  KvType kv_type = KvType::F16;
  // Attention skips the keys ALiBi gives a weight of exactly 0 (ops::alibi_first_key): the same
  // bits, fewer cache reads at depth. false reads every key (for tests and measurements).
  bool alibi_skip = true;
};

enum class LogitsMode { None, Last, All };

class Session {
 public:
  Session(const Model& model, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Evaluates tokens at positions n_past() .. n_past() + tokens.size() - 1 (in chunks of n_batch).
  // Returns the logits: none, the last token's row, or one row per token ([n_tokens][n_vocab]).
  // Throws Error(Runtime) when the tokens do not fit in the context, or a token id is out of range.
  std::span<const float> eval(std::span<const int32_t> tokens, LogitsMode mode);

  // Greedy decoding's shortcut: evaluates tokens as eval(tokens, Last) does and returns the
  // arg-max of the last row's logits over the ids other than `banned` (< 0: none), lowest id on
  // ties, computing only the logits that could be it when the model's head has a screen
  // (head_screen.hpp). nullopt when it computed the whole row instead: logits() then holds it.
  std::optional<int32_t> eval_argmax(std::span<const int32_t> tokens, int32_t banned);
  // The logits the last eval() or eval_argmax() left (empty after a screened eval_argmax()).
  std::span<const float> logits() const { return logits_; }

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_vocab() const { return model_.config().n_vocab; }
  const Model& model() const { return model_; }
  // The KV-cache rows attention has read so far: one row is the key and the value of one head at
  // one position of one layer (kv_row_bytes each); the rows of one forward call's window count
  // once per call. ALiBi lets attention skip keys whose weight is exactly 0 (ops::alibi_first_key),
  // so this is what `bloomz bench` counts as cache traffic.
  int64_t kv_rows_read() const;
  // Forget everything after the first n positions (n <= n_past()).
  void truncate(int64_t n);
  void reset() { truncate(0); }

  // One token for each of several sessions of the same model, in one forward pass: every weight is
  // read once for all of them, and each session's logits are bit-identical to what eval() of that
  // token alone gives. Returns [sessions.size()][n_vocab].
  static std::span<const float> eval_together(std::span<Session* const> sessions, std::span<const int32_t> tokens);

 private:
  struct Buffers;
  struct Row;
  // want_last with logits_out == nullptr: the last row's head input (output_norm) is left in the
  // scratch's first row and the head is not run.
  static void forward_rows(std::span<const Row> rows, Buffers& scratch, bool want_all, bool want_last, float* logits_out);
  // eval()'s checks and batches; run_head false: the head is not run (mode Last: the last row's
  // head input is left in the scratch's first row).
  void eval_chunks(std::span<const int32_t> tokens, LogitsMode mode, bool run_head);

  const Model& model_;
  SessionOptions options_;
  int64_t n_ctx_ = 0;
  int64_t n_past_ = 0;
  std::unique_ptr<Buffers> buf_;
  std::vector<float> logits_;
  MatmulWorkspace ws_;
  HeadScreen::Scratch screen_scratch_;
};

}  // namespace bloomz
