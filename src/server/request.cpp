// Parsing and checking of the completion, tokenize and detokenize bodies (request.hpp).
#include "server/request.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "bloomz/error.hpp"
#include "bloomz/sampler.hpp"
#include "server/api_error.hpp"

namespace bloomz::server {

namespace {

using nlohmann::json;

json parse_object(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad_request("the body is not valid JSON", "invalid_json");
  if (!j.is_object()) throw bad_request("the body must be a JSON object", "invalid_json");
  return j;
}

// Typed access to the body's fields: a wrong type is a 400 naming the field; null counts as absent
// (OpenAI's clients send explicit nulls for unset optional fields).
class Fields {
 public:
  explicit Fields(const json& j) : j_(j) {}

  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<int64_t> integer(const char* key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    // 16.0 is an integer too; 16.5 is not.
    if (v->is_number_float() && std::isfinite(v->get<double>()) && std::floor(v->get<double>()) == v->get<double>() &&
        std::fabs(v->get<double>()) < 9.0e15) {
      return static_cast<int64_t>(v->get<double>());
    }
    throw wrong_type(key, "an integer");
  }
  std::optional<float> number(const char* key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number() || !std::isfinite(v->get<float>())) throw wrong_type(key, "a finite number");
    return v->get<float>();
  }
  std::optional<bool> boolean(const char* key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) throw wrong_type(key, "a boolean");
    return v->get<bool>();
  }
  std::optional<std::string> string(const char* key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) throw wrong_type(key, "a string");
    return v->get<std::string>();
  }
  // A string or a list of strings.
  std::optional<std::vector<std::string>> strings(const char* key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) return std::vector<std::string>{v->get<std::string>()};
    if (!v->is_array()) throw wrong_type(key, "a string or a list of strings");
    std::vector<std::string> out;
    for (const json& e : *v) {
      if (!e.is_string()) throw wrong_type(key, "a string or a list of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  static ApiError wrong_type(const char* key, const char* what) {
    return bad_request(fmt::format("'{}' must be {}", key, what), "invalid_type");
  }

 private:
  const json& j_;
};

// The bounded integer fields: out of range is a 400 naming the field.
int64_t in_range(const char* key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) throw bad_request(fmt::format("'{}' must be in [{}, {}] (got {})", key, lo, hi, v));
  return v;
}

// logit_bias: OpenAI's {"id": bias} or llama.cpp's [[id, bias], ...] (bias false = never).
void parse_logit_bias(const json& v, SamplerParams& s) {
  auto add = [&](int64_t id, float bias) {
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) throw bad_request("'logit_bias' has a token id out of range");
    s.logit_bias.emplace_back(static_cast<int32_t>(id), bias);
  };
  if (v.is_object()) {
    for (const auto& [key, bias] : v.items()) {
      int64_t id = 0;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        throw bad_request(fmt::format("'logit_bias' key '{}' is not a token id", key), "invalid_type");
      }
      if (!bias.is_number()) throw Fields::wrong_type("logit_bias", "a map of token ids to numbers");
      add(id, bias.get<float>());
    }
  } else if (v.is_array()) {
    for (const json& pair : v) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() || !(pair[1].is_number() || pair[1].is_boolean())) {
        throw Fields::wrong_type("logit_bias", "a list of [token id, bias] pairs");
      }
      add(pair[0].get<int64_t>(), pair[1].is_boolean() ? -std::numeric_limits<float>::infinity() : pair[1].get<float>());
    }
  } else {
    throw Fields::wrong_type("logit_bias", "an object or a list of pairs");
  }
}

void parse_openai(const Fields& f, CompletionRequest& r) {
  if (const json* p = f.find("prompt"); p == nullptr) {
    throw bad_request("'prompt' is required", "missing_field");
  }
  r.prompts = *f.strings("prompt");
  if (r.prompts.empty()) throw bad_request("'prompt' must not be an empty list");
  r.model = f.string("model").value_or("");
  if (auto n = f.integer("max_tokens")) r.gen.n_predict = *n;
  if (auto v = f.integer("n"); v && *v != 1) throw bad_request("only 'n': 1 is supported");
  if (auto v = f.integer("best_of"); v && *v != 1) throw bad_request("only 'best_of': 1 is supported");
  if (auto v = f.string("suffix"); v && !v->empty()) throw bad_request("'suffix' is not supported");
  if (auto v = f.integer("logprobs")) r.logprobs = static_cast<int32_t>(in_range("logprobs", *v, 0, 20));
  if (auto v = f.boolean("echo")) r.echo = *v;
  if (const json* so = f.find("stream_options")) {
    if (!so->is_object()) throw Fields::wrong_type("stream_options", "an object");
    if (auto v = Fields(*so).boolean("include_usage")) r.include_usage = *v;
  }
}

void parse_llamacpp(const Fields& f, CompletionRequest& r) {
  const auto prompt = f.string("prompt");
  if (!prompt) throw bad_request("'prompt' is required (a string)", "missing_field");
  r.prompts = {*prompt};
  if (auto n = f.integer("n_predict")) r.gen.n_predict = *n;
  if (auto v = f.integer("n_probs"); v && *v > 0) r.logprobs = static_cast<int32_t>(in_range("n_probs", *v, 0, 20));
}

}  // namespace

CompletionRequest parse_completion(std::string_view body, Dialect dialect, int64_t n_ctx, int32_t eos_id) {
  const json j = parse_object(body);
  const Fields f(j);
  CompletionRequest r;
  r.dialect = dialect;
  r.gen.sampler.eos_id = eos_id;
  if (dialect == Dialect::OpenAI) {
    parse_openai(f, r);
  } else {
    parse_llamacpp(f, r);
  }
  // Limits: -1 (and anything past the context) runs until EOS or the context is full, with the
  // same finish reason as `bloomz -n`; n_ctx + 1 tokens can never fit, so that is the cap.
  if (r.gen.n_predict < -1) throw bad_request(dialect == Dialect::OpenAI ? "'max_tokens' must be >= 0" : "'n_predict' must be >= -1");
  if (r.gen.n_predict == -1 || r.gen.n_predict > n_ctx) r.gen.n_predict = n_ctx + 1;

  SamplerParams& s = r.gen.sampler;
  if (auto v = f.number("temperature")) s.temp = *v;
  if (auto v = f.number("top_p")) s.top_p = *v;
  if (auto v = f.integer("top_k")) s.top_k = static_cast<int32_t>(in_range("top_k", *v, 0, std::numeric_limits<int32_t>::max()));
  if (auto v = f.number("min_p")) s.min_p = *v;
  if (auto v = f.number("typical_p")) s.typical_p = *v;
  if (auto v = f.number("repeat_penalty")) s.repeat_penalty = *v;
  if (auto v = f.integer("repeat_last_n")) s.repeat_last_n = static_cast<int32_t>(in_range("repeat_last_n", *v, -1, 1 << 20));
  if (auto v = f.number("presence_penalty")) s.presence_penalty = *v;
  if (auto v = f.number("frequency_penalty")) s.frequency_penalty = *v;
  if (auto v = f.boolean("ignore_eos")) s.ignore_eos = *v;
  if (const json* lb = f.find("logit_bias")) parse_logit_bias(*lb, s);
  try {
    validate(s);
  } catch (const Error& e) {
    throw bad_request(e.what());  // names the CLI flag, which is the field's spelling with dashes
  }
  // seed: >= 0 as `bloomz -s`; llama.cpp's -1 means random.
  if (auto v = f.integer("seed"); v && *v != -1) r.seed = static_cast<uint64_t>(in_range("seed", *v, 0, std::numeric_limits<int64_t>::max()));
  if (auto v = f.strings("stop")) r.gen.stops = *v;
  if (auto v = f.boolean("stream")) r.stream = *v;
  if (r.logprobs >= 0) r.gen.logprobs = std::max(1, r.logprobs);  // the chosen token's value needs a step record
  return r;
}

std::vector<std::vector<int32_t>> tokenize_prompts(const CompletionRequest& req, const Tokenizer& tok, int64_t n_ctx) {
  std::vector<std::vector<int32_t>> out;
  for (const std::string& prompt : req.prompts) {
    if (prompt.empty()) throw bad_request("'prompt' is empty");
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(prompt, /*parse_special=*/true);
    } catch (const Error& e) {
      throw bad_request(fmt::format("'prompt' cannot be tokenized: {}", e.what()));
    }
    if (ids.empty()) throw bad_request("'prompt' has no tokens");
    if (static_cast<int64_t>(ids.size()) > n_ctx) {
      throw bad_request(fmt::format("'prompt' has {} tokens, more than the context of {}", ids.size(), n_ctx), "context_length_exceeded");
    }
    out.push_back(std::move(ids));
  }
  return out;
}

std::string parse_tokenize(std::string_view body) {
  const json j = parse_object(body);
  const auto content = Fields(j).string("content");
  if (!content) throw bad_request("'content' is required (a string)", "missing_field");
  return *content;
}

std::vector<int32_t> parse_detokenize(std::string_view body, int32_t n_vocab) {
  const json j = parse_object(body);
  const json* tokens = Fields(j).find("tokens");
  if (tokens == nullptr) throw bad_request("'tokens' is required (a list of token ids)", "missing_field");
  if (!tokens->is_array()) throw Fields::wrong_type("tokens", "a list of token ids");
  std::vector<int32_t> ids;
  for (const json& t : *tokens) {
    if (!t.is_number_integer()) throw Fields::wrong_type("tokens", "a list of token ids");
    ids.push_back(static_cast<int32_t>(in_range("tokens", t.get<int64_t>(), 0, n_vocab - 1)));
  }
  return ids;
}

}  // namespace bloomz::server
