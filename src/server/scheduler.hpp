// Scheduler: continuous batching over a fixed set of slots. One thread owns the model's sessions;
// HTTP threads hand it Jobs. At every step it admits queued jobs into free slots, evaluates a
// chunk of one new prompt (small while others are decoding, so they are not stalled for long),
// then decodes one token for every decoding slot in one pass over the weights
// (Session::eval_together, whose logits equal each sequence's alone). A job that finishes or is
// cancelled frees its slot before the next step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bloomz/generate.hpp"
#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"

namespace bloomz::server {

// One prompt's generation. The callbacks run on the scheduler thread: they must be quick and
// must not throw. Exactly one of on_done / on_error is called, once.
struct Job {
  GenerateRequest req;  // prompt_tokens already checked against the context
  std::function<void(std::string_view)> on_text;
  std::function<void(GenerateResult&)> on_done;  // finish_reason "cancelled" when cancelled
  std::function<void(const std::string&)> on_error;
  std::atomic<bool> cancel{false};  // set by the HTTP side (client gone); honoured at the next step
};

struct SchedulerOptions {
  size_t slots = 4;            // sequences decoded together
  size_t queue = 64;           // jobs waiting for a slot beyond those
  SessionOptions session;      // per-slot context and KV type
  int64_t prompt_chunk = 64;   // prompt tokens per step while other slots are decoding
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tok, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues all jobs or none: false when slots and queue cannot take them all, or after shutdown().
  bool submit(const std::vector<std::shared_ptr<Job>>& jobs);
  // Refuses new jobs, cancels running and queued ones (their on_done sees "cancelled") and joins
  // the thread. Idempotent, from any thread.
  void shutdown();
  int64_t n_ctx() const { return n_ctx_; }

 private:
  struct Slot;
  void run();
  void admit(std::vector<Slot>& slots);
  void prompt_step(Slot& s, int64_t chunk);
  void decode_step(std::vector<Slot*>& decoding);
  void finish(Slot& s);
  void fail(Slot& s, const std::string& message);

  const Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  int64_t n_ctx_ = 0;
  std::vector<std::unique_ptr<Session>> sessions_;
  uint64_t admitted_ = 0;  // scheduler thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_
  size_t in_flight_ = 0;                    // queued + in slots; guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace bloomz::server
