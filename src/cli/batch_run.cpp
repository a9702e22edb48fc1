// The --batch-file scheduler: see batch_run.hpp. Every item runs through the same Generation
// state machine as a single prompt; a slot's prompt is evaluated alone, then the active slots'
// next tokens go through one forward pass.
#include "cli/batch_run.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fmt/format.h>
#include <optional>
#include <vector>

#include "bloomz/error.hpp"
#include "bloomz/generate.hpp"
#include "bloomz/parallel.hpp"
#include "cli/progress.hpp"
#include "cli/result_json.hpp"
#include "cli/signals.hpp"

namespace bloomz::cli {

namespace {

// Results held back for stdout's input order, beyond which no new item is admitted: one long
// item then stalls the others instead of letting memory grow with the input.
constexpr size_t kMaxHeldResults = 1024;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Slot {
  std::unique_ptr<Session> session;  // made on the slot's first item, kept for the next ones
  std::optional<BatchItem> item;
  std::unique_ptr<Generation> gen;   // set while an item is in flight
  int64_t seq = 0;
  int32_t next = 0;
  double prompt_ms = 0;
  std::chrono::steady_clock::time_point gen_start;
};

// The decoding side of a run: up to --parallel slots, each item's result written as it ends.
class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tok, const BatchDefaults& defaults, const SessionOptions& so, double load_ms,
            int64_t parallel, ResultWriter& out, Progress& progress)
      : model_(model), tok_(tok), defaults_(defaults), so_(so), load_ms_(load_ms), slots_(static_cast<size_t>(parallel)), out_(out),
        progress_(progress) {}

  bool any_active() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.gen != nullptr; });
  }
  bool any_free() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.gen == nullptr; });
  }
  int64_t failures() const { return failures_; }

  // Parses the line; an error is written at once, an item takes a free slot: its prompt is
  // evaluated alone and its first token sampled.
  void admit(const InputLine& line) {
    Slot& s = *std::find_if(slots_.begin(), slots_.end(), [](const Slot& x) { return x.gen == nullptr; });
    if (!s.session) s.session = std::make_unique<Session>(model_, so_);
    BatchItem item = parse_batch_line(line.text, line.index, defaults_, tok_, s.session->n_ctx());
    const int64_t seq = next_seq_++;
    if (!item.error.empty()) {
      spdlog::warn("item {}: {}", line.index + 1, item.error);
      complete(seq, dump({{"id", item.id}, {"index", item.index}, {"error", item.error}}), true);
      return;
    }
    s.seq = seq;
    s.item = std::move(item);
    s.session->reset();
    s.gen = std::make_unique<Generation>(tok_, s.item->req, [](std::string_view) {});
    const auto t0 = std::chrono::steady_clock::now();
    std::span<const float> logits = s.session->eval(s.item->req.prompt_tokens, LogitsMode::Last);
    s.prompt_ms = ms_since(t0);
    s.gen_start = std::chrono::steady_clock::now();
    const std::optional<int32_t> next = s.gen->step(logits, s.session->n_past(), s.session->n_ctx());
    progress_.tokens(s.item->req.n_predict == 0 ? 0 : 1);  // the first step sampled one token
    if (next) {
      s.next = *next;
    } else {
      finish(s);
    }
  }

  // One token for every item in flight, through one forward pass.
  void step() {
    std::vector<Session*> sessions;
    std::vector<int32_t> tokens;
    std::vector<Slot*> active;
    for (Slot& s : slots_) {
      if (!s.gen) continue;
      sessions.push_back(s.session.get());
      tokens.push_back(s.next);
      active.push_back(&s);
    }
    if (active.empty()) return;
    std::span<const float> logits = Session::eval_together(sessions, tokens);
    const size_t V = static_cast<size_t>(model_.config().n_vocab);
    // The sequences' sampling steps are independent: one per task. Errors are raised in slot order.
    std::vector<std::optional<int32_t>> nexts(active.size());
    std::vector<std::exception_ptr> errors(active.size());
    parallel_for(0, static_cast<int64_t>(active.size()), [&](int64_t j) {
      const auto i = static_cast<size_t>(j);
      Slot& s = *active[i];
      try {
        nexts[i] = s.gen->step(logits.subspan(i * V, V), s.session->n_past(), s.session->n_ctx());
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
    for (const std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
    progress_.tokens(static_cast<int64_t>(active.size()));
    for (size_t i = 0; i < active.size(); ++i) {
      if (nexts[i]) {
        active[i]->next = *nexts[i];
      } else {
        finish(*active[i]);
      }
    }
  }

  // A stop signal: every item in flight ends "cancelled" and is written.
  void cancel_all() {
    for (Slot& s : slots_) {
      if (!s.gen) continue;
      s.gen->cancel();
      finish(s);
    }
  }

 private:
  void complete(int64_t seq, std::string line, bool failed) {
    out_.put(seq, std::move(line));
    failures_ += failed ? 1 : 0;
    progress_.item_done(failed);
    progress_.tick();
  }

  void finish(Slot& s) {
    GenerateResult& r = s.gen->finish();
    r.prompt_ms = s.prompt_ms;
    r.prompt_n = static_cast<int64_t>(s.item->req.prompt_tokens.size());
    r.gen_ms = ms_since(s.gen_start);
    nlohmann::json j = result_json(s.item->id, s.item->prompt, s.item->req, r, tok_, s.item->seed, load_ms_);
    j["index"] = s.item->index;
    complete(s.seq, dump(j), false);
    s.gen.reset();
    s.item.reset();
  }

  const Model& model_;
  const Tokenizer& tok_;
  const BatchDefaults& defaults_;
  const SessionOptions& so_;
  double load_ms_;
  std::vector<Slot> slots_;
  ResultWriter& out_;
  Progress& progress_;
  int64_t next_seq_ = 0;  // admission order, which is input order (stdout keeps it)
  int64_t failures_ = 0;
};

}  // namespace

BatchRun::BatchRun(const BatchOptions& options) : opt_(options), input_(options.file) {
  if (!opt_.shard.empty()) {
    const std::optional<Shard> s = parse_shard(opt_.shard);
    if (!s) throw Error(ErrorKind::Usage, fmt::format("--shard: expected I/N with 0 <= I < N, got '{}'", opt_.shard));
    shard_ = *s;
  }
  if (opt_.output.empty()) {
    out_ = std::make_unique<ResultWriter>(nullptr);
    return;
  }
  if (input_.same_file_as(opt_.output)) {
    throw Error(ErrorKind::Usage, fmt::format("--output {}: is the --batch-file input", opt_.output));
  }
  if (opt_.resume) {
    resumed_ = prepare_resume(opt_.output);
    if (resumed_.done.size() > 0 || resumed_.dropped > 0 || resumed_.torn) {
      spdlog::info("--resume: {} items already done in {}; {} lines dropped (errors, cancelled, repeated){}", resumed_.done.size(),
                   opt_.output, resumed_.dropped, resumed_.torn ? ", a torn last line cut off" : "");
    }
  }
  out_ = std::make_unique<ResultWriter>(std::make_unique<ResultFile>(opt_.output, opt_.resume));
}

int BatchRun::run(const Model& model, const Tokenizer& tok, const BatchDefaults& defaults, const SessionOptions& so, double load_ms) {
  auto wanted = [&](int64_t index) { return shard_.takes(index) && !resumed_.done.contains(index); };
  Progress::Mode mode = Progress::Mode::Off;
  if (opt_.progress_s > 0) {
    mode = Progress::Mode::Plain;
  } else if (::isatty(STDERR_FILENO) == 1 && !opt_.quiet) {
    mode = Progress::Mode::Live;
  }
  Progress progress(mode, opt_.progress_s, mode == Progress::Mode::Off ? std::nullopt : input_.count_lines(wanted));

  Scheduler sched(model, tok, defaults, so, load_ms, opt_.parallel, *out_, progress);
  while (true) {
    // Admit items while a slot is free; wait for input only when nothing is in flight.
    while (sched.any_free() && !stop_requested().load() && out_->held() < kMaxHeldResults) {
      const std::optional<InputLine> line = input_.next(!sched.any_active());
      if (!line) break;
      if (!line->text.empty() && wanted(line->index)) sched.admit(*line);
    }
    if (stop_requested().load()) {
      sched.cancel_all();
      break;
    }
    if (!sched.any_active()) {
      if (input_.at_end()) break;
      progress.tick();
      continue;  // next() waited a while for input
    }
    sched.step();
    progress.tick();
  }
  progress.finish();
  if (stop_signal() != 0) return 128 + stop_signal();
  return sched.failures() > 0 ? 1 : 0;
}

}  // namespace bloomz::cli
