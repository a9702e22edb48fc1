// The decoding loop: prompt evaluation, sampling, stop conditions and streaming of complete text.
#include "bloomz/generate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "bloomz/error.hpp"

namespace bloomz {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Bytes at the end of `text` that could still grow into one of the stop strings.
size_t stop_prefix_overlap(std::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    const size_t max = std::min(s.size() - 1, text.size());
    for (size_t len = max; len > held; --len) {
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a sequence that is not finished yet.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    return need > back ? n - back : n;
  }
  return n;
}

// One pass with no early exit (it vectorizes): an exponent of all ones is Inf or NaN.
bool all_finite(std::span<const float> v) {
  uint32_t bad = 0;
  for (const float f : v) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    bad |= static_cast<uint32_t>((u & 0x7F800000u) == 0x7F800000u);
  }
  return bad == 0;
}

StepLogprobs logprobs_of(std::span<const float> logits, int32_t chosen, int32_t n) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  StepLogprobs out;
  out.chosen = {chosen, logits[static_cast<size_t>(chosen)] - log_z};
  if (n > 0) {
    std::vector<int32_t> idx(logits.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
    const size_t k = std::min(idx.size(), static_cast<size_t>(n));
    std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(), [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < k; ++i) out.top.push_back({idx[i], logits[static_cast<size_t>(idx[i])] - log_z});
  }
  return out;
}

Generation::Generation(const Tokenizer& tokenizer, const GenerateRequest& request, std::function<void(std::string_view)> on_text)
    : tok_(tokenizer), req_(request), on_text_(std::move(on_text)), sampler_(request.sampler), history_(request.prompt_tokens) {
  for (const auto& s : req_.stops) max_stop_ = std::max(max_stop_, s.size());
  result_.finish_reason = "length";
  if (req_.n_predict == 0) done_ = true;
}

void Generation::cancel() {
  if (done_) return;
  result_.finish_reason = "cancelled";
  done_ = true;
}

std::optional<int32_t> Generation::step(std::span<const float> logits, int64_t n_past, int64_t n_ctx) {
  if (done_) return std::nullopt;
  // NaN/Inf weights surface here: refuse them rather than sample garbage (hardening, issue 8).
  if (!all_finite(logits)) {
    const float l = *std::find_if(logits.begin(), logits.end(), [](float v) { return !std::isfinite(v); });
    throw Error(ErrorKind::Runtime, fmt::format("the model produced a non-finite logit ({}) after {} tokens: its weights contain NaN or Inf", l,
                                                history_.size()));
  }
  const int32_t tok = sampler_.sample(logits, history_);
  if (req_.logprobs > 0) result_.logprobs.push_back(logprobs_of(logits, tok, req_.logprobs));
  return step_with(tok, n_past, n_ctx);
}

std::optional<int32_t> Generation::step_with(int32_t tok, int64_t n_past, int64_t n_ctx) {
  if (done_) return std::nullopt;
  std::string& text = result_.text;
  result_.tokens.push_back(tok);
  history_.push_back(tok);
  if (tok_.is_eog(tok) && !req_.sampler.ignore_eos) {
    if (req_.special) text += tok_.token_to_piece(tok, true);
    result_.finish_reason = "eos";
    done_ = true;
    return std::nullopt;
  }
  text += tok_.token_to_piece(tok, req_.special);

  // A stop string ends the output just before it; it is never printed.
  if (!req_.stops.empty()) {
    const size_t from = printed_ > max_stop_ ? printed_ - max_stop_ : 0;
    size_t cut = std::string::npos;
    for (const auto& s : req_.stops) {
      if (s.empty()) continue;
      const size_t at = text.find(s, from);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      text.resize(cut);
      result_.finish_reason = "stop";
      done_ = true;
      return std::nullopt;
    }
  }
  // Print what is complete UTF-8 and cannot be the start of a stop string.
  size_t ready = text.size() - stop_prefix_overlap(std::string_view(text).substr(printed_), req_.stops);
  ready = printed_ + utf8_complete_prefix(std::string_view(text).substr(printed_, ready - printed_));
  if (ready > printed_) {
    on_text_(std::string_view(text).substr(printed_, ready - printed_));
    printed_ = ready;
  }
  if (req_.n_predict >= 0 && static_cast<int64_t>(result_.tokens.size()) >= req_.n_predict) {
    result_.finish_reason = "length";
    done_ = true;
    return std::nullopt;
  }
  if (n_past >= n_ctx) {
    result_.finish_reason = "context";
    done_ = true;
    return std::nullopt;
  }
  return tok;
}

GenerateResult& Generation::finish() {
  if (printed_ < result_.text.size()) {
    on_text_(std::string_view(result_.text).substr(printed_));
    printed_ = result_.text.size();
  }
  result_.gen_n = static_cast<int64_t>(result_.tokens.size());
  return result_;
}

GenerateResult generate(Session& session, const Tokenizer& tokenizer, const GenerateRequest& req,
                        const std::function<void(std::string_view)>& on_text, const std::atomic<bool>* cancel) {
  Generation gen(tokenizer, req, on_text);
  // Greedy picks go through eval_argmax, which computes only the logits that can win when the
  // model's head allows it (an fp16 head: head_screen.hpp); picked = its token, else the logits.
  // The screen's first use builds it (60-400 ms on a 560m head, most of it faulting in fresh
  // memory); then it saves 10-14 ms a token. So it is used while -n leaves at least kScreenLeft
  // more tokens, and only from the kScreenAfter-th generated token on, so that answers ending at
  // EOS within a few tokens (most of bloomz's) never pay for it; from the first pick when their
  // length is known (EOS ignored, no stop strings).
  constexpr int64_t kScreenAfter = 8, kScreenLeft = 16;
  const bool argmax = gen.picks_argmax();
  const int64_t screen_from = req.sampler.ignore_eos && req.stops.empty() && req.n_predict >= 0 ? 0 : kScreenAfter;
  int64_t evaluated = 0;
  std::optional<int32_t> picked;
  auto evaluate = [&](std::span<const int32_t> tokens) {
    const int64_t done = evaluated++;  // tokens generated so far (the prompt's pass is 0)
    const bool budget = req.n_predict < 0 || req.n_predict - done >= kScreenLeft;
    if (argmax && done >= screen_from && (budget || session.model().head_screen_if_built() != nullptr)) {
      picked = session.eval_argmax(tokens, gen.banned());
    } else {
      picked.reset();
      session.eval(tokens, LogitsMode::Last);
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  evaluate(req.prompt_tokens);
  const double prompt_ms = ms_since(t0);
  auto t1 = std::chrono::steady_clock::now();
  while (!gen.done()) {
    if (cancel != nullptr && cancel->load()) {
      gen.cancel();
      break;
    }
    const std::optional<int32_t> next = picked ? gen.step_with(*picked, session.n_past(), session.n_ctx())
                                               : gen.step(session.logits(), session.n_past(), session.n_ctx());
    if (!next) break;
    evaluate(std::span<const int32_t>(&*next, 1));
  }
  GenerateResult r = std::move(gen.finish());
  r.prompt_ms = prompt_ms;
  r.prompt_n = static_cast<int64_t>(req.prompt_tokens.size());
  r.gen_ms = ms_since(t1);
  return r;
}

}  // namespace bloomz
