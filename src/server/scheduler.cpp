// The continuous-batching loop (scheduler.hpp).
#include "server/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>

#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"

namespace bloomz::server {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
}  // namespace

struct Scheduler::Slot {
  Session* session = nullptr;
  std::shared_ptr<Job> job;
  std::unique_ptr<Generation> gen;
  size_t prompt_done = 0;  // prompt tokens evaluated so far
  int32_t next = 0;        // the token to evaluate next, once decoding
  uint64_t order = 0;      // admission order: the oldest prompt is evaluated first
  double prompt_ms = 0;
  Clock::time_point gen_start;
  bool busy() const { return job != nullptr; }
  bool decoding() const { return busy() && prompt_done == job->req.prompt_tokens.size(); }
};

Scheduler::Scheduler(const Model& model, const Tokenizer& tok, SchedulerOptions options)
    : model_(model), tok_(tok), opt_(std::move(options)) {
  opt_.slots = std::max<size_t>(1, opt_.slots);
  opt_.prompt_chunk = std::max<int64_t>(1, opt_.prompt_chunk);
  // Every slot's KV cache is allocated now: memory does not grow with the load.
  for (size_t i = 0; i < opt_.slots; ++i) sessions_.push_back(std::make_unique<Session>(model_, opt_.session));
  n_ctx_ = sessions_[0]->n_ctx();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { shutdown(); }

bool Scheduler::submit(const std::vector<std::shared_ptr<Job>>& jobs) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || in_flight_ + jobs.size() > opt_.slots + opt_.queue) return false;
    for (const auto& j : jobs) queue_.push_back(j);
    in_flight_ += jobs.size();
  }
  cv_.notify_one();
  return true;
}

void Scheduler::shutdown() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  std::lock_guard lk(join_mu_);  // the signal thread and main may both get here
  if (thread_.joinable()) thread_.join();
}

void Scheduler::admit(std::vector<Slot>& slots) {
  for (Slot& s : slots) {
    if (s.busy() || queue_.empty()) continue;
    s.job = std::move(queue_.front());
    queue_.pop_front();
    s.gen = std::make_unique<Generation>(tok_, s.job->req, s.job->on_text);
    s.session->reset();
    s.prompt_done = 0;
    s.prompt_ms = 0;
    s.order = admitted_++;
  }
}

void Scheduler::finish(Slot& s) {
  GenerateResult& r = s.gen->finish();
  r.prompt_n = static_cast<int64_t>(s.job->req.prompt_tokens.size());
  r.prompt_ms = s.prompt_ms;
  r.gen_ms = s.decoding() ? ms_since(s.gen_start) : 0.0;
  s.job->on_done(r);
  s.gen.reset();
  s.job.reset();
  std::lock_guard lk(mu_);
  --in_flight_;
}

void Scheduler::fail(Slot& s, const std::string& message) {
  spdlog::error("request failed: {}", message);
  s.job->on_error(message);
  s.gen.reset();
  s.job.reset();
  std::lock_guard lk(mu_);
  --in_flight_;
}

// Evaluates up to `chunk` more tokens of the slot's prompt; after the last one, the first
// sampling step (as generate() does right after the prompt).
void Scheduler::prompt_step(Slot& s, int64_t chunk) {
  const std::vector<int32_t>& prompt = s.job->req.prompt_tokens;
  const size_t n = std::min(prompt.size() - s.prompt_done, static_cast<size_t>(chunk));
  const bool last = s.prompt_done + n == prompt.size();
  try {
    const auto t0 = Clock::now();
    const std::span<const float> logits =
        s.session->eval(std::span<const int32_t>(prompt).subspan(s.prompt_done, n), last ? LogitsMode::Last : LogitsMode::None);
    s.prompt_done += n;
    s.prompt_ms += ms_since(t0);
    if (!last) return;
    s.gen_start = Clock::now();
    const std::optional<int32_t> next = s.gen->step(logits, s.session->n_past(), s.session->n_ctx());
    if (next) {
      s.next = *next;
    } else {
      finish(s);
    }
  } catch (const std::exception& e) {
    fail(s, e.what());
  }
}

// One token for every decoding slot in one forward pass; the sampling steps run in parallel.
void Scheduler::decode_step(std::vector<Slot*>& decoding) {
  std::vector<Session*> sessions;
  std::vector<int32_t> tokens;
  for (Slot* s : decoding) {
    sessions.push_back(s->session);
    tokens.push_back(s->next);
  }
  std::span<const float> logits;
  try {
    logits = Session::eval_together(sessions, tokens);
  } catch (const std::exception& e) {
    for (Slot* s : decoding) fail(*s, e.what());
    return;
  }
  const size_t V = static_cast<size_t>(model_.config().n_vocab);
  std::vector<std::optional<int32_t>> nexts(decoding.size());
  std::vector<std::string> errors(decoding.size());
  parallel_for(0, static_cast<int64_t>(decoding.size()), [&](int64_t j) {
    const auto i = static_cast<size_t>(j);
    Slot& s = *decoding[i];
    try {
      nexts[i] = s.gen->step(logits.subspan(i * V, V), s.session->n_past(), s.session->n_ctx());
    } catch (const std::exception& e) {
      errors[i] = e.what();
      if (errors[i].empty()) errors[i] = "generation failed";
    }
  });
  for (size_t i = 0; i < decoding.size(); ++i) {
    Slot& s = *decoding[i];
    if (!errors[i].empty()) {
      fail(s, errors[i]);
    } else if (nexts[i]) {
      s.next = *nexts[i];
    } else {
      finish(s);
    }
  }
}

void Scheduler::run() {
  std::vector<Slot> slots(opt_.slots);
  for (size_t i = 0; i < slots.size(); ++i) slots[i].session = sessions_[i].get();
  auto any_busy = [&] { return std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy(); }); };
  while (true) {
    bool stop = false;
    std::deque<std::shared_ptr<Job>> dropped;
    {
      std::unique_lock lk(mu_);
      const bool busy = any_busy();
      cv_.wait(lk, [&] { return stopping_ || busy || !queue_.empty(); });
      stop = stopping_;
      if (stop) {
        dropped.swap(queue_);
      } else {
        admit(slots);
      }
    }
    // Cancelled jobs (client gone, or shutting down) leave their slot now.
    for (Slot& s : slots) {
      if (!s.busy() || !(stop || s.job->cancel.load())) continue;
      s.gen->cancel();
      finish(s);
    }
    if (stop) {
      for (auto& job : dropped) {
        Generation gen(tok_, job->req, job->on_text);
        gen.cancel();
        job->on_done(gen.finish());
      }
      std::lock_guard lk(mu_);
      in_flight_ -= dropped.size();
      return;
    }
    std::vector<Slot*> decoding;
    Slot* prompting = nullptr;
    for (Slot& s : slots) {
      if (s.decoding()) {
        decoding.push_back(&s);
      } else if (s.busy() && (prompting == nullptr || s.order < prompting->order)) {
        prompting = &s;
      }
    }
    // Alone, a prompt goes in n_batch chunks; next to decoding slots, in small ones, so that
    // each of their tokens waits for at most one chunk.
    if (prompting != nullptr) prompt_step(*prompting, decoding.empty() ? opt_.session.n_batch : opt_.prompt_chunk);
    if (!decoding.empty()) decode_step(decoding);
  }
}

}  // namespace bloomz::server
