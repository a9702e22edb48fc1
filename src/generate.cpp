// The decoding loop: prompt evaluation, sampling, stop conditions and streaming of complete text.
#include "bloomz/generate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

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

GenerateResult generate(Session& session, const Tokenizer& tokenizer, const GenerateRequest& req,
                        const std::function<void(std::string_view)>& on_text, const std::atomic<bool>* cancel) {
  GenerateResult r;
  Sampler sampler(req.sampler);
  std::vector<int32_t> history = req.prompt_tokens;

  auto t0 = std::chrono::steady_clock::now();
  std::span<const float> logits = session.eval(req.prompt_tokens, LogitsMode::Last);
  r.prompt_ms = ms_since(t0);
  r.prompt_n = static_cast<int64_t>(req.prompt_tokens.size());

  std::string text;      // everything decoded so far
  size_t printed = 0;    // bytes of `text` already handed to on_text
  size_t max_stop = 0;
  for (const auto& s : req.stops) max_stop = std::max(max_stop, s.size());
  auto t1 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  while (true) {
    if (req.n_predict >= 0 && static_cast<int64_t>(r.tokens.size()) >= req.n_predict) {
      r.finish_reason = "length";
      break;
    }
    if (cancel != nullptr && cancel->load()) {
      r.finish_reason = "cancelled";
      break;
    }
    const int32_t tok = sampler.sample(logits, history);
    if (req.logprobs > 0) r.logprobs.push_back(logprobs_of(logits, tok, req.logprobs));
    r.tokens.push_back(tok);
    history.push_back(tok);
    if (tokenizer.is_eog(tok) && !req.sampler.ignore_eos) {
      if (req.special) text += tokenizer.token_to_piece(tok, true);
      r.finish_reason = "eos";
      break;
    }
    text += tokenizer.token_to_piece(tok, req.special);

    // A stop string ends the output just before it; it is never printed.
    bool stopped = false;
    if (!req.stops.empty()) {
      const size_t from = printed > max_stop ? printed - max_stop : 0;
      size_t cut = std::string::npos;
      for (const auto& s : req.stops) {
        if (s.empty()) continue;
        const size_t at = text.find(s, from);
        if (at != std::string::npos) cut = std::min(cut, at);
      }
      if (cut != std::string::npos) {
        text.resize(cut);
        stopped = true;
      }
    }
    if (stopped) {
      r.finish_reason = "stop";
      break;
    }
    size_t ready = text.size() - stop_prefix_overlap(std::string_view(text).substr(printed), req.stops);
    ready = printed + utf8_complete_prefix(std::string_view(text).substr(printed, ready - printed));
    if (ready > printed) {
      on_text(std::string_view(text).substr(printed, ready - printed));
      printed = ready;
    }
    if (session.n_past() >= session.n_ctx()) {
      r.finish_reason = "context";
      break;
    }
    logits = session.eval(std::span<const int32_t>(&tok, 1), LogitsMode::Last);
  }
  if (printed < text.size()) on_text(std::string_view(text).substr(printed));
  r.gen_ms = ms_since(t1);
  r.gen_n = static_cast<int64_t>(r.tokens.size());
  r.text = std::move(text);
  return r;
}

}  // namespace bloomz
