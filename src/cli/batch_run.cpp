// The --batch-file scheduler: see batch_run.hpp. Every item runs through the same Generation
// state machine as a single prompt; a slot's prompt is evaluated alone, then the active slots'
// next tokens go through one forward pass.
#include "cli/batch_run.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

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
  std::unique_ptr<Session> session;
  std::optional<BatchItem> item;
  std::unique_ptr<Generation> gen;
  int64_t seq = 0;
  int32_t next = 0;
  double prompt_ms = 0;
  std::chrono::steady_clock::time_point gen_start;
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

  std::vector<Slot> slots(static_cast<size_t>(opt_.parallel));
  int64_t next_seq = 0, failures = 0;
  auto complete = [&](int64_t seq, std::string line, bool failed) {
    out_->put(seq, std::move(line));
    failures += failed ? 1 : 0;
    progress.item_done(failed);
    progress.tick();
  };
  auto finish_slot = [&](Slot& s) {
    GenerateResult& r = s.gen->finish();
    r.prompt_ms = s.prompt_ms;
    r.prompt_n = static_cast<int64_t>(s.item->req.prompt_tokens.size());
    r.gen_ms = ms_since(s.gen_start);
    nlohmann::json j = result_json(s.item->id, s.item->prompt, s.item->req, r, tok, s.item->seed, load_ms);
    j["index"] = s.item->index;
    complete(s.seq, dump(j), false);
    s.gen.reset();
    s.item.reset();
  };
  auto any_active = [&] {
    for (const Slot& s : slots) {
      if (s.gen) return true;
    }
    return false;
  };

  while (true) {
    // Fill free slots: evaluate each new prompt alone and take its first step. The input is
    // waited for only when nothing is in flight.
    for (Slot& s : slots) {
      while (!s.gen && !stop_requested().load() && out_->held() < kMaxHeldResults) {
        const std::optional<InputLine> line = input_.next(!any_active());
        if (!line) break;
        if (line->text.empty() || !wanted(line->index)) continue;
        if (!s.session) s.session = std::make_unique<Session>(model, so);
        BatchItem item = parse_batch_line(line->text, line->index, defaults, tok, s.session->n_ctx());
        const int64_t seq = next_seq++;
        if (!item.error.empty()) {
          spdlog::warn("item {}: {}", line->index + 1, item.error);
          complete(seq, dump({{"id", item.id}, {"index", item.index}, {"error", item.error}}), true);
          continue;
        }
        s.seq = seq;
        s.item = std::move(item);
        s.session->reset();
        s.gen = std::make_unique<Generation>(tok, s.item->req, [](std::string_view) {});
        const auto t0 = std::chrono::steady_clock::now();
        std::span<const float> logits = s.session->eval(s.item->req.prompt_tokens, LogitsMode::Last);
        s.prompt_ms = ms_since(t0);
        s.gen_start = std::chrono::steady_clock::now();
        const std::optional<int32_t> next = s.gen->step(logits, s.session->n_past(), s.session->n_ctx());
        progress.tokens(s.item->req.n_predict == 0 ? 0 : 1);  // the first step sampled one token
        if (next) {
          s.next = *next;
        } else {
          finish_slot(s);
        }
      }
    }
    std::vector<Session*> active;
    std::vector<int32_t> tokens;
    std::vector<Slot*> active_slots;
    for (Slot& s : slots) {
      if (!s.gen) continue;
      if (stop_requested().load()) {
        s.gen->cancel();
        finish_slot(s);
        continue;
      }
      active.push_back(s.session.get());
      tokens.push_back(s.next);
      active_slots.push_back(&s);
    }
    if (active.empty()) {
      if (input_.at_end() || stop_requested().load()) break;
      progress.tick();
      continue;  // waiting for input (next() waited a while)
    }
    // One pass over the weights serves every active sequence.
    std::span<const float> logits = Session::eval_together(active, tokens);
    const size_t V = static_cast<size_t>(model.config().n_vocab);
    // The sequences' sampling steps are independent: one per task. Errors are raised in slot order.
    const size_t n_active = active_slots.size();
    std::vector<std::optional<int32_t>> nexts(n_active);
    std::vector<std::exception_ptr> errors(n_active);
    parallel_for(0, static_cast<int64_t>(n_active), [&](int64_t j) {
      const auto i = static_cast<size_t>(j);
      Slot& s = *active_slots[i];
      try {
        nexts[i] = s.gen->step(logits.subspan(i * V, V), s.session->n_past(), s.session->n_ctx());
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
    for (size_t i = 0; i < n_active; ++i) {
      if (errors[i]) std::rethrow_exception(errors[i]);
    }
    progress.tokens(static_cast<int64_t>(n_active));
    for (size_t i = 0; i < n_active; ++i) {
      Slot& s = *active_slots[i];
      if (nexts[i]) {
        s.next = *nexts[i];
      } else {
        finish_slot(s);
      }
    }
    progress.tick();
  }
  progress.finish();
  if (stop_signal() != 0) return 128 + stop_signal();
  return failures > 0 ? 1 : 0;
}

}  // namespace bloomz::cli
