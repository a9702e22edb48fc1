// The HTTP endpoints of `bloomz serve` (http_api.hpp). Completion answers, streamed or not, are
// written by one content-provider call that drains the request's events: the client going away
// shows up as a failed write (or an unwritable socket while waiting) and cancels its jobs.
#include "server/http_api.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <random>

#include "bloomz/error.hpp"
#include "server/api_error.hpp"
#include "server/request.hpp"
#include "server/response.hpp"
#include "server/server_log.hpp"

namespace bloomz::server {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// What the request's log line needs. httplib runs routing, the content provider and the logger of
// one request on the same worker thread, so a thread_local record follows the request.
struct RequestStats {
  std::optional<Clock::time_point> start;
  int64_t prompt_tokens = 0, gen_tokens = 0;
};
thread_local RequestStats t_stats;

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(to_wire(j), "application/json");
}

// Events of one completion request, from the scheduler thread to the worker that answers it.
class Channel {
 public:
  enum class Kind { Text, Done, Failed };
  struct Event {
    Kind kind;
    size_t index;
    std::string text;  // the piece (Text) or the message (Failed)
    GenerateResult result;
  };
  void push(Event e) {
    {
      std::lock_guard lk(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  std::optional<Event> pop(std::chrono::milliseconds wait) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, wait, [&] { return !events_.empty(); })) return std::nullopt;
    Event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

// A completion request in flight: one job per prompt, their events, the choices gathered so far.
struct Exchange {
  CompletionRequest req;
  ResponseMeta meta;
  std::vector<Choice> choices;
  std::vector<std::shared_ptr<Job>> jobs;
  std::shared_ptr<Channel> channel = std::make_shared<Channel>();
  std::optional<ApiError> failure;

  void cancel() {
    for (const auto& j : jobs) j->cancel.store(true);
  }
};

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

std::string completion_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = random_seed();
  return fmt::format("cmpl-{:016x}{:08x}", salt, counter.fetch_add(1));
}

std::shared_ptr<Job> make_job(const Exchange& ex, size_t index, std::vector<int32_t> prompt_tokens) {
  auto job = std::make_shared<Job>();
  job->req = ex.req.gen;
  job->req.prompt_tokens = std::move(prompt_tokens);
  job->req.sampler.seed = ex.meta.seed.value_or(0);
  std::shared_ptr<Channel> ch = ex.channel;
  if (ex.req.stream) {
    job->on_text = [ch, index](std::string_view s) { ch->push({Channel::Kind::Text, index, std::string(s), {}}); };
  } else {
    job->on_text = [](std::string_view) {};
  }
  job->on_done = [ch, index](GenerateResult& r) { ch->push({Channel::Kind::Done, index, {}, std::move(r)}); };
  job->on_error = [ch, index](const std::string& m) { ch->push({Channel::Kind::Failed, index, m, {}}); };
  return job;
}

// The body parts of one completion answer, in either dialect.
std::string echo_events(const Exchange& ex) {
  std::string out;
  if (ex.req.stream && ex.req.echo && ex.req.dialect == Dialect::OpenAI) {
    for (size_t i = 0; i < ex.choices.size(); ++i) out += sse_event(openai_text_chunk(ex.meta, i, ex.choices[i].prompt));
  }
  return out;
}

std::string text_event(const Exchange& ex, size_t index, std::string_view text) {
  return sse_event(ex.req.dialect == Dialect::OpenAI ? openai_text_chunk(ex.meta, index, text) : llamacpp_text_chunk(text));
}

std::string final_event(const Exchange& ex, size_t index, const Tokenizer& tok) {
  if (ex.req.dialect == Dialect::OpenAI) return sse_event(openai_final_chunk(ex.req, ex.meta, index, ex.choices[index], tok));
  json j = llamacpp_completion(ex.req, ex.meta, ex.choices[index], tok);
  j["content"] = "";  // the text went out in the chunks before
  return sse_event(j);
}

std::string closing(const Exchange& ex, const Tokenizer& tok) {
  if (ex.req.stream) {
    if (ex.req.dialect == Dialect::LlamaCpp) return {};
    std::string out;
    if (ex.req.include_usage) out += sse_event(openai_usage_chunk(ex.meta, ex.choices));
    return out + "data: [DONE]\n\n";
  }
  if (ex.failure) return to_wire(ex.failure->body());
  if (ex.req.dialect == Dialect::OpenAI) return to_wire(openai_completion(ex.req, ex.meta, ex.choices, tok));
  return to_wire(llamacpp_completion(ex.req, ex.meta, ex.choices[0], tok));
}

// Writes the whole answer: echo, then each event as it comes, then the closing part. Returns false
// (and cancels the jobs) when the client has gone away.
bool serve_events(Exchange& ex, httplib::DataSink& sink, const Tokenizer& tok) {
  auto write = [&](const std::string& s) { return s.empty() || sink.write(s.data(), s.size()); };
  if (!write(echo_events(ex))) {
    ex.cancel();
    return false;
  }
  size_t remaining = ex.jobs.size();
  while (remaining > 0) {
    std::optional<Channel::Event> ev = ex.channel->pop(std::chrono::milliseconds(100));
    if (!ev) {
      // Nothing to send for a while (queued, or a long prompt): check the client is still there.
      if (!sink.is_writable()) {
        spdlog::debug("{}: the client has gone away while waiting", ex.meta.id);
        ex.cancel();
        return false;
      }
      continue;
    }
    std::string out;
    switch (ev->kind) {
      case Channel::Kind::Text:
        out = text_event(ex, ev->index, ev->text);
        break;
      case Channel::Kind::Done:
        --remaining;
        t_stats.gen_tokens += static_cast<int64_t>(ev->result.tokens.size());
        ex.choices[ev->index].result = std::move(ev->result);
        if (ex.req.stream) out = final_event(ex, ev->index, tok);
        break;
      case Channel::Kind::Failed:
        --remaining;
        ex.failure = ApiError(500, "server_error", "generation_failed", ev->text);
        if (ex.req.stream) out = sse_event(ex.failure->body());
        break;
    }
    if (!write(out)) {
      spdlog::debug("{}: the client has gone away", ex.meta.id);
      ex.cancel();
      return false;
    }
  }
  if (!write(closing(ex, tok))) return false;
  sink.done();
  return true;
}

std::string model_list_json(const std::string& model) {
  return to_wire({{"object", "list"}, {"data", json::array({{{"id", model}, {"object", "model"}, {"created", 0}, {"owned_by", "bloomz"}}})}});
}

}  // namespace

bool constant_time_equal(std::string_view given, std::string_view expected) {
  // Walk the expected string whatever `given` is; a length mismatch only sets a bit.
  unsigned diff = given.size() != expected.size() ? 1u : 0u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = given.empty() ? 0 : static_cast<unsigned char>(given[i % given.size()]);
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

HttpApi::HttpApi(const Tokenizer& tok, Scheduler& scheduler, ApiOptions options)
    : tok_(tok), scheduler_(scheduler), opt_(std::move(options)) {}

void HttpApi::install(httplib::Server& svr) {
  svr.set_payload_max_length(opt_.max_body);

  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_stats = RequestStats{};
    t_stats.start = Clock::now();
    if (opt_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string_view prefix = "Bearer ";
    const std::string_view given = auth.starts_with(prefix) ? std::string_view(auth).substr(prefix.size()) : std::string_view();
    if (constant_time_equal(given, opt_.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    send_json(res, 401, ApiError(401, "invalid_request_error", "invalid_api_key", "missing or wrong API key (Authorization: Bearer KEY)").body());
    return httplib::Server::HandlerResponse::Handled;
  });

  // Errors httplib answers itself (no route, body too large, unparsable request) get our shape.
  svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = "error", message = fmt::format("HTTP status {}", res.status);
    if (res.status == 404) {
      code = "not_found";
      message = fmt::format("no endpoint {} {}", req.method, req.path);
    } else if (res.status == 413) {
      code = "body_too_large";
      message = fmt::format("the body is larger than --max-body ({} bytes)", opt_.max_body);
    }
    const std::string type = res.status >= 500 ? "server_error" : "invalid_request_error";
    send_json(res, res.status, ApiError(res.status, type, code, message).body());
  });

  svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    const double ms = t_stats.start ? std::chrono::duration<double, std::milli>(Clock::now() - *t_stats.start).count() : 0.0;
    log_request({req.method, req.path, res.status, t_stats.prompt_tokens, t_stats.gen_tokens, ms});
    t_stats = RequestStats{};
  });

  // Every handler's failure is its own request's answer.
  auto guarded = [](auto fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_json(res, e.status(), e.body());
      } catch (const std::exception& e) {
        send_json(res, 500, ApiError(500, "server_error", "internal_error", e.what()).body());
      }
    };
  };

  auto completion = [this](Dialect dialect) {
    return [this, dialect](const httplib::Request& req, httplib::Response& res) {
      auto ex = std::make_shared<Exchange>();
      ex->req = parse_completion(req.body, dialect, scheduler_.n_ctx(), tok_.eos_id());
      std::vector<std::vector<int32_t>> prompts = tokenize_prompts(ex->req, tok_, scheduler_.n_ctx());
      ex->meta.id = completion_id();
      ex->meta.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      ex->meta.model = opt_.model_name;
      ex->meta.seed = ex->req.seed;
      if (!ex->meta.seed && ex->req.gen.sampler.temp > 0) ex->meta.seed = random_seed();
      for (size_t i = 0; i < prompts.size(); ++i) {
        t_stats.prompt_tokens += static_cast<int64_t>(prompts[i].size());
        ex->choices.push_back({ex->req.prompts[i], {}});
        ex->jobs.push_back(make_job(*ex, i, std::move(prompts[i])));
      }
      if (!scheduler_.submit(ex->jobs)) {
        throw ApiError(503, "server_error", "queue_full", "every slot and the queue are full; retry later");
      }
      const Tokenizer& tok = tok_;
      res.set_chunked_content_provider(
          ex->req.stream ? "text/event-stream" : "application/json",
          [ex, &tok](size_t, httplib::DataSink& sink) { return serve_events(*ex, sink, tok); },
          [ex](bool) { ex->cancel(); });  // a no-op once every job is done
    };
  };
  svr.Post("/v1/completions", guarded(completion(Dialect::OpenAI)));
  svr.Post("/completion", guarded(completion(Dialect::LlamaCpp)));

  svr.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const std::string content = parse_tokenize(req.body);
    std::vector<int32_t> ids;
    try {
      ids = tok_.encode(content, /*parse_special=*/true);
    } catch (const Error& e) {
      throw bad_request(fmt::format("'content' cannot be tokenized: {}", e.what()));
    }
    send_json(res, 200, {{"tokens", ids}});
  }));
  svr.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, {{"content", tok_.decode(parse_detokenize(req.body, tok_.n_vocab()))}});
  }));
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(model_list_json(opt_.model_name), "application/json");
  });
}

}  // namespace bloomz::server
