// libFuzzer target: the request bodies of `bloomz serve`. Byte 0 picks the endpoint (mod 4:
// /v1/completions, /completion, /tokenize, /detokenize), the rest is the body. A body is either
// answered (the request parsed, its prompts tokenized against a 256-token context, and every
// response shape rendered from a made-up result) or rejected with an ApiError of the OpenAI shape
// and a 4xx status; anything else escaping (another exception, a crash) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bloomz/error.hpp"
#include "fuzz_common.hpp"
#include "server/api_error.hpp"
#include "server/request.hpp"
#include "server/response.hpp"

using namespace bloomz;
using namespace bloomz::server;

namespace {

constexpr int64_t kCtx = 256;

// Renders every body a parsed request can lead to, from a result over its own prompt tokens.
void render(const CompletionRequest& req, const std::vector<std::vector<int32_t>>& prompts, const Tokenizer& tok) {
  std::vector<Choice> choices;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Choice c{req.prompts[i], {}};
    c.result.tokens.assign(prompts[i].begin(), prompts[i].begin() + static_cast<long>(std::min<size_t>(prompts[i].size(), 8)));
    c.result.text = tok.decode(c.result.tokens);
    c.result.finish_reason = "length";
    c.result.prompt_n = static_cast<int64_t>(prompts[i].size());
    if (req.gen.logprobs > 0) {
      for (int32_t id : c.result.tokens) {
        StepLogprobs s{{id, -1.0f}, {}};
        for (int32_t k = 0; k < req.gen.logprobs && k < 4; ++k) s.top.push_back({(id + k) % tok.n_vocab(), -1.0f - static_cast<float>(k)});
        c.result.logprobs.push_back(s);
      }
    }
    choices.push_back(std::move(c));
  }
  const ResponseMeta meta{"cmpl-fuzz", 0, "fuzz.gguf", req.seed};
  if (req.dialect == Dialect::OpenAI) {
    (void)to_wire(openai_completion(req, meta, choices, tok));
    for (size_t i = 0; i < choices.size(); ++i) {
      (void)sse_event(openai_text_chunk(meta, i, choices[i].result.text));
      (void)sse_event(openai_final_chunk(req, meta, i, choices[i], tok));
    }
    (void)sse_event(openai_usage_chunk(meta, choices));
  } else {
    (void)to_wire(llamacpp_completion(req, meta, choices[0], tok));
    (void)sse_event(llamacpp_text_chunk(choices[0].result.text));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::fixture_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Tokenizer& tok = fuzz::fixture_tokenizer();
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 4) {
      case 0:
      case 1: {
        const CompletionRequest req = parse_completion(body, data[0] % 4 == 0 ? Dialect::OpenAI : Dialect::LlamaCpp, kCtx, tok.eos_id());
        if (req.prompts.empty()) __builtin_trap();
        if (req.gen.n_predict < 0 || req.gen.n_predict > kCtx + 1) __builtin_trap();  // capped by the context
        const auto prompts = tokenize_prompts(req, tok, kCtx);
        for (const auto& p : prompts) {
          if (p.empty() || static_cast<int64_t>(p.size()) > kCtx) __builtin_trap();
        }
        render(req, prompts, tok);
        break;
      }
      case 2:
        (void)tok.encode(parse_tokenize(body), true);
        break;
      default: {
        const std::vector<int32_t> ids = parse_detokenize(body, tok.n_vocab());
        (void)tok.decode(ids);
        break;
      }
    }
  } catch (const ApiError& e) {
    if (e.status() < 400 || e.status() >= 500) __builtin_trap();
    const auto j = e.body();
    if (!j["error"]["message"].is_string() || !j["error"]["type"].is_string() || !j["error"]["code"].is_string()) __builtin_trap();
  } catch (const Error& e) {
    // /tokenize of text the tokenizer refuses (a sequence above U+10FFFF) is the one library error
    // that may reach the handler; it answers 400 there too.
    if (data[0] % 4 != 2 || e.kind() != ErrorKind::Runtime) __builtin_trap();
  }
  return 0;
}
