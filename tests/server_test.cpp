// End-to-end tests of `bloomz serve` on the fixture models, through a real HTTP client
// (cpp-httplib's) on 127.0.0.1: every answer equals what `bloomz -p ... --json` prints for the same
// request, under concurrency and disconnects; each error row of cli.md; SIGTERM; the log formats.
// Every client loop is bounded in count and time.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "server/http_api.hpp"
#include "support/run_bloomz.hpp"
#include "support/serve_process.hpp"
#include "support/test_files.hpp"

using bloomz::test::data_path;
using bloomz::test::ServeProcess;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kModel = data_path("models/tiny-odd-f16.gguf");

struct Reply {
  int status = 0;  // 0: no answer
  std::string body;
  json j() const { return json::parse(body); }
};

std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_connection_timeout(5s);
  c->set_read_timeout(60s);
  return c;
}

Reply post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
  auto res = client(port)->Post(path, headers, body, "application/json");
  return res ? Reply{res->status, res->body} : Reply{0, httplib::to_string(res.error())};
}
Reply post(int port, const std::string& path, const json& body) { return post(port, path, body.dump()); }

Reply get(int port, const std::string& path) {
  auto res = client(port)->Get(path);
  return res ? Reply{res->status, res->body} : Reply{};
}

// A streamed request: the "data: " payloads in order. stop_after > 0 disconnects after that many.
struct Stream {
  int status = 0;
  std::vector<std::string> events;
};
// on_event(n) is called after each event (n so far); returning false disconnects.
Stream stream(int port, const std::string& path, json body, size_t stop_after = 0, const std::function<bool(size_t)>& on_event = {}) {
  body["stream"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  Stream out;
  std::string buf;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    for (size_t at; (at = buf.find("\n\n")) != std::string::npos;) {
      const std::string event = buf.substr(0, at);
      buf.erase(0, at + 2);
      if (event.rfind("data: ", 0) == 0) out.events.push_back(event.substr(6));
      if (on_event && !on_event(out.events.size())) return false;
      if (stop_after > 0 && out.events.size() >= stop_after) return false;
    }
    return true;
  };
  auto res = client(port)->send(req);
  if (res) out.status = res->status;
  return out;
}

// The text of an OpenAI stream (its chunks' texts concatenated), checking its shape on the way.
std::string stream_text(const Stream& s, std::string* finish_reason) {
  std::string text;
  EXPECT_FALSE(s.events.empty());
  EXPECT_EQ(s.events.back(), "[DONE]");
  for (size_t i = 0; i + 1 < s.events.size(); ++i) {
    const json c = json::parse(s.events[i]);
    EXPECT_EQ(c["object"], "text_completion");
    text += c["choices"][0]["text"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) *finish_reason = c["choices"][0]["finish_reason"];
  }
  return text;
}

// What `bloomz --batch-file` prints for these items: per cli.md, each equals that item alone.
std::vector<json> cli_results(const std::vector<json>& items) {
  std::string lines;
  for (const json& it : items) lines += it.dump() + "\n";
  const bloomz::test::Outcome r = bloomz::test::run_bloomz("-m " + kModel + " --batch-file - -t 2 --logprobs 3 -q", lines);
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<json> out;
  std::istringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) out.push_back(json::parse(line));
  EXPECT_EQ(out.size(), items.size());
  return out;
}

json cli_one(const std::string& prompt, const std::string& args) {
  const bloomz::test::Outcome r =
      bloomz::test::run_bloomz("-m " + kModel + " -p " + bloomz::test::shell_quote(prompt) + " --no-escape --json -q -t 2 " + args);
  EXPECT_EQ(r.status, 0) << r.err;
  return json::parse(r.out);
}

void expect_error_shape(const Reply& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  const json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  EXPECT_TRUE(j["error"]["type"].is_string()) << r.body;
  EXPECT_EQ(j["error"]["code"], code) << r.body;
}

}  // namespace

TEST(Serve, ConstantTimeEqual) {
  using bloomz::server::constant_time_equal;
  EXPECT_TRUE(constant_time_equal("sk-123", "sk-123"));
  EXPECT_FALSE(constant_time_equal("sk-124", "sk-123"));
  EXPECT_FALSE(constant_time_equal("sk-12", "sk-123"));
  EXPECT_FALSE(constant_time_equal("sk-1234", "sk-123"));
  EXPECT_FALSE(constant_time_equal("", "sk-123"));
  EXPECT_FALSE(constant_time_equal("sk-123sk-123", "sk-123"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Serve, CompletionsEqualTheCli) {
  ServeProcess srv("-m " + kModel + " --parallel 3 -t 2");
  const int port = srv.port();
  // Greedy, sampled with a seed, with a stop string, with logprobs.
  const std::vector<std::string> prompts = {"Hello world", "Translate to French: the cat", "def main():"};
  for (const std::string& p : prompts) {
    const json want = cli_one(p, "-n 24 --logprobs 2");
    const Reply oa = post(port, "/v1/completions", json{{"model", "x"}, {"prompt", p}, {"max_tokens", 24}, {"logprobs", 2}});
    ASSERT_EQ(oa.status, 200) << oa.body;
    const json c = oa.j()["choices"][0];
    EXPECT_EQ(c["text"], want["text"]) << p;
    EXPECT_EQ(oa.j()["usage"]["completion_tokens"], want["tokens"].size());
    EXPECT_EQ(oa.j()["usage"]["prompt_tokens"], want["prompt_tokens"].size());
    ASSERT_EQ(c["logprobs"]["token_logprobs"].size(), want["logprobs"].size());
    for (size_t i = 0; i < want["logprobs"].size(); ++i) EXPECT_EQ(c["logprobs"]["token_logprobs"][i], want["logprobs"][i]["logprob"]);

    const Reply lc = post(port, "/completion", json{{"prompt", p}, {"n_predict", 24}, {"n_probs", 2}});
    ASSERT_EQ(lc.status, 200) << lc.body;
    EXPECT_EQ(lc.j()["tokens"], want["tokens"]);
    EXPECT_EQ(lc.j()["content"], want["text"]);
    EXPECT_EQ(lc.j()["completion_probabilities"][0]["top_logprobs"][1]["id"], want["logprobs"][0]["top"][1]["id"]);

    const json sampled = cli_one(p, "-n 20 --temp 0.9 --top-k 0 --min-p 0 -s 77 -r ab");
    const json body = {{"prompt", p}, {"max_tokens", 20}, {"temperature", 0.9}, {"top_k", 0}, {"min_p", 0}, {"seed", 77}, {"stop", "ab"}};
    const Reply s = post(port, "/v1/completions", body);
    ASSERT_EQ(s.status, 200) << s.body;
    EXPECT_EQ(s.j()["choices"][0]["text"], sampled["text"]) << p;
    EXPECT_EQ(s.j()["seed"], 77);
    EXPECT_EQ(s.j()["choices"][0]["finish_reason"], sampled["finish_reason"] == "length" ? "length" : "stop");

    std::string finish;
    const Stream st = stream(port, "/v1/completions", body);
    EXPECT_EQ(st.status, 200);
    EXPECT_EQ(stream_text(st, &finish), sampled["text"]) << p;
    EXPECT_EQ(finish, s.j()["choices"][0]["finish_reason"]);
  }
  // A list of prompts: one choice each, in order; echo puts the prompt first.
  const Reply many = post(port, "/v1/completions", json{{"prompt", prompts}, {"max_tokens", 8}, {"echo", true}});
  ASSERT_EQ(many.status, 200) << many.body;
  ASSERT_EQ(many.j()["choices"].size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(many.j()["choices"][i]["index"], i);
    EXPECT_EQ(many.j()["choices"][i]["text"], prompts[i] + cli_one(prompts[i], "-n 8")["text"].get<std::string>());
  }
  // llama.cpp's stream: content chunks, then a final object with stop: true.
  const Stream ls = stream(port, "/completion", json{{"prompt", prompts[0]}, {"n_predict", 10}});
  ASSERT_GE(ls.events.size(), 2u);
  std::string content;
  for (size_t i = 0; i + 1 < ls.events.size(); ++i) content += json::parse(ls.events[i])["content"].get<std::string>();
  EXPECT_TRUE(json::parse(ls.events.back())["stop"].get<bool>());
  EXPECT_EQ(content, cli_one(prompts[0], "-n 10")["text"]);
}

TEST(Serve, TokenizeDetokenizeHealthModels) {
  ServeProcess srv("-m " + kModel + " --parallel 1 -t 1");
  const Reply t = post(srv.port(), "/tokenize", json{{"content", "Hello world</s>"}});
  ASSERT_EQ(t.status, 200) << t.body;
  const json want = cli_one("Hello world</s>", "-n 0");
  EXPECT_EQ(t.j()["tokens"], want["prompt_tokens"]);
  const Reply d = post(srv.port(), "/detokenize", json{{"tokens", want["prompt_tokens"]}});
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.j()["content"], "Hello world");  // </s> is special: not printed
  EXPECT_EQ(get(srv.port(), "/health").j(), json({{"status", "ok"}}));
  const Reply m = get(srv.port(), "/v1/models");
  EXPECT_EQ(m.j()["object"], "list");
  EXPECT_EQ(m.j()["data"][0]["id"], "tiny-odd-f16.gguf");
}

TEST(Serve, ErrorRows) {
  ServeProcess srv("-m " + kModel + " --parallel 1 -t 1 --max-body 1KiB", "BLOOMZ_API_KEY=sk-test");
  const int port = srv.port();
  const httplib::Headers auth = {{"Authorization", "Bearer sk-test"}};
  const std::string ok = json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump();
  expect_error_shape(post(port, "/v1/completions", ok), 401, "invalid_api_key");
  expect_error_shape(post(port, "/v1/completions", ok, {{"Authorization", "Bearer sk-tesT"}}), 401, "invalid_api_key");
  EXPECT_EQ(post(port, "/v1/completions", ok, auth).status, 200);
  EXPECT_EQ(get(port, "/health").status, 200);  // probes need no key
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", std::string(2000, 'a')}}.dump(), auth), 413, "body_too_large");
  expect_error_shape(post(port, "/v1/completions", "{\"prompt\": ", auth), 400, "invalid_json");
  expect_error_shape(post(port, "/v1/completions", "[1, 2]", auth), 400, "invalid_json");
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", "ten"}}.dump(), auth), 400, "invalid_type");
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", {1, 2}}}.dump(), auth), 400, "invalid_type");
  expect_error_shape(post(port, "/completion", json{{"prompt", "Hi"}, {"temperature", "hot"}}.dump(), auth), 400, "invalid_type");
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", "Hi"}, {"top_p", 2.0}}.dump(), auth), 400, "invalid_value");
  expect_error_shape(post(port, "/v1/completions", json{{"max_tokens", 3}}.dump(), auth), 400, "missing_field");
  expect_error_shape(post(port, "/detokenize", json{{"tokens", {1, 99999}}}.dump(), auth), 400, "invalid_value");
  // A prompt longer than the context (256 tokens) is the client's error, not a crash.
  std::string long_prompt;
  for (int i = 0; i < 150; ++i) long_prompt += "a b ";
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", long_prompt}}.dump(), auth), 400, "context_length_exceeded");
  expect_error_shape(post(port, "/v2/whatever", ok, auth), 404, "not_found");
  auto res = client(port)->Get("/nope", auth);
  ASSERT_TRUE(res);
  expect_error_shape({res->status, res->body}, 404, "not_found");
  // max_tokens beyond the context is capped by it: the answer stops at the context.
  const Reply capped = post(port, "/completion", json{{"prompt", "Hi"}, {"n_predict", 1000000}, {"ignore_eos", true}}.dump(), auth);
  ASSERT_EQ(capped.status, 200) << capped.body;
  EXPECT_EQ(capped.j()["finish_reason"], "context");
  EXPECT_EQ(get(port, "/health").status, 200);
}

// One slot, no queue: a long stream holds the slot, so the next request is a 503 at once; when
// the stream's client disconnects, the slot is free again at the next step.
TEST(Serve, FullQueueIs503AndADisconnectFreesTheSlot) {
  ServeProcess srv("-m " + kModel + " --parallel 1 --queue 0 -c 16384 -t 1");
  const int port = srv.port();
  const json long_req = {{"prompt", "Once upon a time"}, {"n_predict", -1}, {"ignore_eos", true}};
  std::atomic<bool> started{false}, release{false};
  std::thread holder([&] {
    stream(port, "/completion", long_req, 0, [&](size_t n) {
      if (n >= 2) started = true;
      // Hold the slot until told to go, then disconnect.
      while (started && !release) std::this_thread::sleep_for(5ms);
      return !release;
    });
  });
  for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(started.load());
  const auto t0 = std::chrono::steady_clock::now();
  expect_error_shape(post(port, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}), 503, "queue_full");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  release = true;
  holder.join();
  // The 16k-token generation would hold the slot for many seconds; the freed slot answers soon.
  auto answered_soon = [&] {
    int status = 0;
    const auto t1 = std::chrono::steady_clock::now();
    while (status != 200 && std::chrono::steady_clock::now() - t1 < 5s) {
      status = post(port, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}).status;
      if (status != 200) std::this_thread::sleep_for(20ms);
    }
    return status == 200;
  };
  EXPECT_TRUE(answered_soon());
  // The same for a client that gives up waiting for a whole (non-streamed) answer.
  httplib::Client impatient("127.0.0.1", port);
  impatient.set_read_timeout(300ms);
  // The previous request's slot may not be released yet (a 503 queue_full answer, not the timeout
  // this checks): retry those.
  auto res = impatient.Post("/completion", long_req.dump(), "application/json");
  for (int i = 0; i < 250 && res && res->status == 503; ++i) {
    std::this_thread::sleep_for(20ms);
    res = impatient.Post("/completion", long_req.dump(), "application/json");
  }
  EXPECT_FALSE(res) << "status " << (res ? res->status : 0);
  EXPECT_TRUE(answered_soon());
}

// 64 concurrent clients, mixed lengths, streamed or not, sampled or greedy, some disconnecting
// mid-stream: every completed answer equals its solo run; nothing but 200 (no 5xx); RSS is flat
// from one round to the next; the server still answers /health.
TEST(Serve, SixtyFourConcurrentClients) {
  // Under AddressSanitizer freed memory sits in a quarantine and every allocation's stack is kept,
  // so RSS grows by design; without both the RSS check means the same there. Other builds ignore
  // the variable.
  ServeProcess srv("-m " + kModel + " --parallel 4 --queue 64 -t 2 --prompt-chunk 4 --log-level debug",
                   "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0:"
                   "malloc_context_size=0\"");
  const int port = srv.port();
  std::vector<json> items;
  const std::vector<std::string> prompts = {"Hello world", "Translate to French: the cat is on the table", "def main():",
                                            "The quick brown fox jumps over the lazy dog. The quick brown fox"};
  for (size_t v = 0; v < 8; ++v) {
    json it = {{"prompt", prompts[v % prompts.size()]}, {"n_predict", std::vector<int>{3, 17, 40, 90}[v % 4]}};
    if (v >= 4) it.update({{"temp", 1.0}, {"top_k", 0}, {"min_p", 0}, {"seed", 1000 + v}});
    items.push_back(it);
  }
  const std::vector<json> want = cli_results(items);
  ASSERT_EQ(want.size(), items.size());

  auto round = [&] {
    std::vector<std::thread> clients;
    std::atomic<int> bad_status{0}, mismatches{0}, completed{0};
    for (int k = 0; k < 64; ++k) {
      clients.emplace_back([&, k] {
        const size_t v = static_cast<size_t>(k) % items.size();
        json body = {{"prompt", items[v]["prompt"]}, {"max_tokens", items[v]["n_predict"]}};
        if (items[v].contains("seed")) body.update({{"temperature", 1.0}, {"top_k", 0}, {"min_p", 0}, {"seed", items[v]["seed"]}});
        if (k % 3 == 0) {
          const bool disconnect = k % 9 == 0;
          const Stream s = stream(port, "/v1/completions", body, disconnect ? 2 : 0);
          if (disconnect) return;
          if (s.status != 200) {
            ADD_FAILURE() << "stream status " << s.status;
            ++bad_status;
            return;
          }
          std::string finish;
          if (stream_text(s, &finish) != want[v]["text"]) ++mismatches;
        } else {
          const Reply r = post(port, "/v1/completions", body);
          if (r.status != 200) {
            ADD_FAILURE() << "status " << r.status << " " << r.body;
            ++bad_status;
            return;
          }
          if (r.j()["choices"][0]["text"] != want[v]["text"]) ++mismatches;
        }
        ++completed;
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(bad_status.load(), 0);
    EXPECT_EQ(mismatches.load(), 0);
    EXPECT_GE(completed.load(), 50);
  };
  // Two rounds to warm up (worker threads' first use, allocator caches), then two more must not
  // grow the process.
  round();
  round();
  const long rss1 = srv.rss_kib();
  round();
  round();
  const long rss2 = srv.rss_kib();
  EXPECT_LT(rss2 - rss1, 8 * 1024) << "RSS grew from " << rss1 << " KiB to " << rss2 << " KiB";
  EXPECT_EQ(get(port, "/health").status, 200);
  // Every request got its log line.
  const std::string log = srv.log();
  size_t lines = 0;
  for (size_t at = 0; (at = log.find("POST /v1/completions", at)) != std::string::npos; ++at) ++lines;
  EXPECT_GE(lines, 4u * 64u - 4u * 8u);  // the disconnected streams may end before their line
  if (::testing::Test::HasFailure()) std::cerr << log;
}

TEST(Serve, SigtermCancelsStreamsAndExitsWithinASecond) {
  ServeProcess srv("-m " + kModel + " --parallel 2 -c 16384 -t 1");
  const int port = srv.port();
  std::atomic<bool> started{false};
  Stream s;
  std::thread reader([&] {
    s = stream(port, "/v1/completions", json{{"prompt", "Once upon a time"}, {"max_tokens", 16000}, {"ignore_eos", true}},
               0, [&](size_t n) {
      started = n >= 2;
      return true;
    });
  });
  for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(started.load());
  double seconds = 0;
  EXPECT_EQ(srv.signal_and_wait(SIGTERM, 3s, &seconds), 0) << srv.log();
  EXPECT_LT(seconds, 1.0);
  reader.join();
  // The stream ended properly: a final chunk with the finish reason, then [DONE].
  ASSERT_GE(s.events.size(), 2u);
  EXPECT_EQ(s.events.back(), "[DONE]");
  EXPECT_EQ(json::parse(s.events[s.events.size() - 2])["choices"][0]["finish_reason"], "cancelled");
}

TEST(Serve, JsonLogFormat) {
  ServeProcess srv("-m " + kModel + " --parallel 1 -t 1 --log-format json");
  ASSERT_EQ(post(srv.port(), "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 3}}).status, 200);
  expect_error_shape(get(srv.port(), "/missing"), 404, "not_found");
  double seconds = 0;
  EXPECT_EQ(srv.signal_and_wait(SIGINT, 3s, &seconds), 0);
  std::istringstream lines(srv.log());
  int requests = 0;
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level")) << line;
    if (j.contains("path")) {
      ++requests;
      EXPECT_TRUE(j["ms"].is_number()) << line;
      if (j["path"] == "/v1/completions") {
        EXPECT_EQ(j["status"], 200);
        EXPECT_EQ(j["gen_tokens"], 3);
        EXPECT_GT(j["prompt_tokens"], 0);
      } else {
        EXPECT_EQ(j["status"], 404);
      }
    }
  }
  EXPECT_EQ(requests, 2);
}

TEST(Serve, PortInUseIsAnErrorNamingTheFlag) {
  ServeProcess srv("-m " + kModel + " --parallel 1 -t 1");
  const bloomz::test::Outcome r = bloomz::test::run_bloomz("serve -m " + kModel + " -t 1 --port " + std::to_string(srv.port()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--host/--port"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
  EXPECT_EQ(get(srv.port(), "/health").status, 200);
}
