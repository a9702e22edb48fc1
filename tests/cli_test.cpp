// End-to-end tests of the bloomz binary on the fixture models: the streams, exit statuses, JSON,
// greedy output against llama.cpp's, stop strings, batch files, seeds and the logits command.
#include <gtest/gtest.h>
#include <algorithm>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "bloomz/generate.hpp"
#include "bloomz/model.hpp"
#include "bloomz/tokenizer.hpp"
#include "support/npy.hpp"
#include "support/run_bloomz.hpp"
#include "support/json_lines.hpp"
#include "support/test_files.hpp"

using namespace bloomz;
using bloomz::test::data_path;
using nlohmann::json;

namespace {

using bloomz::test::Outcome;

Outcome run(const std::string& args, const std::string& stdin_text = "") {
  return bloomz::test::run_bloomz(args, stdin_text);
}

std::string model(const std::string& name) { return data_path("models/" + name + ".gguf"); }

std::string quote(const std::string& s) { return bloomz::test::shell_quote(s); }

std::vector<json> fixture_generations(const std::string& name) {
  std::istringstream lines(bloomz::test::read_text(data_path("ref/" + name + "/generate_exact.jsonl")));
  std::vector<json> out;
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line));
  return out;
}

}  // namespace

TEST(Cli, GreedyJsonReproducesLlamaCppIds) {
  for (const char* name : {"small256-f32", "tiny-odd-f16", "small256-q8_0"}) {
    for (const json& g : fixture_generations(name)) {
      const Outcome r = run("-m " + model(name) + " -p " + quote(g["text"]) + " --no-escape -n 32 --ignore-eos --json -t 2 --kv-type f32");
      ASSERT_EQ(r.status, 0) << r.err;
      const json j = json::parse(r.out);
      EXPECT_EQ(j["prompt_tokens"], g["prompt_tokens"]) << name;
      EXPECT_EQ(j["tokens"], g["generated"]) << name << " prompt " << g["prompt"];
    }
  }
}

TEST(Cli, RepackChoiceKeepsTheTokens) {
  // small256-q8_0's layer matrices can be repacked to x8: off by default for one prompt, on with
  // --repack (and by default for --batch-file); the tokens are the same either way.
  const json g = fixture_generations("small256-q8_0")[0];
  const std::string base = "-m " + model("small256-q8_0") + " -p " + quote(g["text"]) + " --no-escape -n 16 --ignore-eos -t 2 --log-level debug";
  const Outcome plain = run(base);
  const Outcome packed = run(base + " --repack");
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(packed.status, 0) << packed.err;
  EXPECT_EQ(packed.out, plain.out);
  EXPECT_NE(plain.err.find("(0.0 MiB of weights repacked to x8)"), std::string::npos) << plain.err;
  EXPECT_EQ(packed.err.find("(0.0 MiB of weights repacked to x8)"), std::string::npos) << packed.err;
  const std::string line = json({{"prompt", g["text"]}, {"n_predict", 16}, {"ignore_eos", true}}).dump() + "\n";
  const Outcome batch = run("-m " + model("small256-q8_0") + " --batch-file - --no-escape -t 2 --log-level debug", line);
  const Outcome batch_plain = run("-m " + model("small256-q8_0") + " --batch-file - --no-escape -t 2 --no-repack --log-level debug", line);
  ASSERT_EQ(batch.status, 0) << batch.err;
  EXPECT_EQ(batch.err.find("(0.0 MiB of weights repacked to x8)"), std::string::npos) << batch.err;
  EXPECT_NE(batch_plain.err.find("(0.0 MiB of weights repacked to x8)"), std::string::npos) << batch_plain.err;
  EXPECT_EQ(json::parse(batch.out)["tokens"], json::parse(batch_plain.out)["tokens"]);
  EXPECT_EQ(run(base + " --repack --no-repack").status, 2);
}

TEST(Cli, StdoutIsExactlyTheAnswer) {
  const auto gens = fixture_generations("small256-f32");
  const json& g = gens[1];
  const Outcome text = run("-m " + model("small256-f32") + " -p " + quote(g["text"]) + " --no-escape -n 32 --ignore-eos");
  ASSERT_EQ(text.status, 0) << text.err;
  auto m = Model::load(model("small256-f32"));
  const Tokenizer tok = Tokenizer::from_gguf(m->gguf());
  const auto ids = g["generated"].get<std::vector<int32_t>>();
  EXPECT_EQ(text.out, tok.decode(ids));
  EXPECT_NE(text.err.find("bloomz: prompt eval time"), std::string::npos);
  const Outcome quiet = run("-m " + model("small256-f32") + " -p " + quote(g["text"]) + " --no-escape -n 4 -q");
  EXPECT_EQ(quiet.err, "");
  const Outcome echo = run("-m " + model("small256-f32") + " -p 'Hello' -n 4 -q --echo");
  EXPECT_EQ(echo.out.rfind("Hello", 0), 0u);
}

TEST(Cli, JsonHasEveryField) {
  const Outcome r = run("-m " + model("tiny-odd-q4_0") + " -p 'Hello world' -n 5 --json --logprobs 3 --temp 0.8 -s 7");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"id", "prompt", "prompt_tokens", "text", "tokens", "finish_reason", "seed", "logprobs", "timings"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["finish_reason"], "length");
  ASSERT_EQ(j["logprobs"].size(), 5u);
  EXPECT_EQ(j["logprobs"][0]["top"].size(), 3u);
  for (const char* k : {"load_ms", "prompt_n", "prompt_ms", "prompt_tps", "gen_n", "gen_ms", "gen_tps"}) {
    EXPECT_TRUE(j["timings"].contains(k)) << k;
  }
  const Outcome greedy = run("-m " + model("tiny-odd-q4_0") + " -p 'Hello' -n 2 --json");
  EXPECT_TRUE(json::parse(greedy.out)["seed"].is_null());
}

TEST(Cli, SeedsReproduce) {
  const std::string base = "-m " + model("tiny-odd-q4_0") + " -p 'The cat' -n 24 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 --json";
  const json a = json::parse(run(base + " -s 42").out);
  const json b = json::parse(run(base + " -s 42 -t 1").out);
  const json c = json::parse(run(base + " -s 43").out);
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_NE(a["tokens"], c["tokens"]);
}

TEST(Cli, StopStringsCutExactly) {
  const std::string base = "-m " + model("small256-f32") + " -p 'The quick brown fox' -n 24 --ignore-eos -q";
  const Outcome full = run(base);
  ASSERT_EQ(full.status, 0);
  ASSERT_GT(full.out.size(), 8u);
  const std::string stop = full.out.substr(full.out.size() / 2, 3);
  const Outcome cut = run(base + " -r " + quote(stop) + " --json");
  const json j = json::parse(cut.out);
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["text"].get<std::string>(), full.out.substr(0, full.out.find(stop)));
  const Outcome streamed = run(base + " -r " + quote(stop));
  EXPECT_EQ(streamed.out, full.out.substr(0, full.out.find(stop)));
}

TEST(Cli, BatchFileKeepsOrderAndIsolatesFailures) {
  const std::string input =
      "{\"id\": \"a\", \"prompt\": \"Hello\", \"n_predict\": 3}\n"
      "{\"id\": \"b\", \"prompt\": \n"
      "plain line prompt\n"
      "{\"id\": 4, \"prompt\": \"x\", \"bogus\": 1}\n"
      "{\"id\": 5, \"prompt\": \"Hello\", \"n_predict\": 2, \"stop\": [\"zz\"], \"temp\": 0.5, \"seed\": 3}\n";
  const Outcome r = run("-m " + model("tiny-odd-q4_0") + " --batch-file - -n 4", input);
  EXPECT_EQ(r.status, 1);
  const std::vector<json> out = bloomz::test::parse_json_lines(r.out);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0]["id"], "a");
  EXPECT_EQ(out[0]["tokens"].size(), 3u);
  EXPECT_TRUE(out[1].contains("error"));
  EXPECT_TRUE(out[2]["id"].is_null());
  EXPECT_EQ(out[2]["prompt"], "plain line prompt");
  EXPECT_EQ(out[2]["tokens"].size(), 4u);
  EXPECT_EQ(out[3]["id"], 4);
  EXPECT_NE(out[3]["error"].get<std::string>().find("bogus"), std::string::npos);
  EXPECT_EQ(out[4]["seed"], 3);
  // Each item gives what it gives alone.
  const json alone = json::parse(run("-m " + model("tiny-odd-q4_0") + " -p Hello -n 3 --json").out);
  EXPECT_EQ(out[0]["tokens"], alone["tokens"]);
}

TEST(Cli, UsageErrorsExit2) {
  EXPECT_EQ(run("--frobnicate").status, 2);
  EXPECT_EQ(run("-m " + model("tiny-odd-q4_0") + " -p x -t 0").status, 2);
  EXPECT_EQ(run("-m " + model("tiny-odd-q4_0") + " -p x -n abc").status, 2);
  EXPECT_EQ(run("-m " + model("tiny-odd-q4_0") + " -p x --top-p 2 --temp 1").status, 2);
  EXPECT_EQ(run("-m " + model("tiny-odd-q4_0") + " -p x --isa nosuch").status, 2);
  const Outcome r = run("-m " + model("tiny-odd-q4_0") + " -p x -l notanumber");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--logit-bias"), std::string::npos);
}

TEST(Cli, EscapeFlagsTakeNoValueAndTheLastOneWins) {
  // A value given to either flag is a usage error naming it (these used to end in std::terminate).
  for (const char* flag : {"--escape=abc", "--no-escape=18446744073709551616", "--no-escape=1", "--escape=99999999999999999999"}) {
    const Outcome bad = run("-m " + model("tiny-odd-q4_0") + " -p x " + flag);
    EXPECT_EQ(bad.status, 2) << flag;
    const std::string name = std::string(flag).substr(2, std::string(flag).find('=') - 2);  // CLI11 names it without "--"
    EXPECT_NE(bad.err.find(name), std::string::npos) << bad.err;
  }
  const std::string base = "-m " + model("tiny-odd-q4_0") + " -p 'a\\nb' --echo -n 1 -q";
  EXPECT_EQ(run(base).out.rfind("a\nb", 0), 0u);                     // default: escapes processed
  EXPECT_EQ(run(base + " --no-escape").out.rfind("a\\nb", 0), 0u);   // the backslash stays
  EXPECT_EQ(run(base + " -e --no-escape").out.rfind("a\\nb", 0), 0u);
  EXPECT_EQ(run(base + " --no-escape -e").out.rfind("a\nb", 0), 0u);
}

TEST(Cli, RuntimeErrorsExit1WithOneLine) {
  const Outcome empty = run("-m " + model("tiny-odd-q4_0") + " -p ''");
  EXPECT_EQ(empty.status, 1);
  EXPECT_NE(empty.err.find("empty"), std::string::npos);
  const Outcome longp = run("-m " + model("tiny-odd-q4_0") + " -p 'one two three four five six' -c 3");
  EXPECT_EQ(longp.status, 1);
  EXPECT_NE(longp.err.find("more than the context of 3"), std::string::npos);
  const Outcome missing = run("-m /nonexistent.gguf -p x");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/nonexistent.gguf"), std::string::npos);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1);
  const Outcome nomodel = run("-p x", "");
  EXPECT_EQ(nomodel.status, 1);
}

TEST(Cli, ContextFullStops) {
  const Outcome r = run("-m " + model("tiny-odd-q4_0") + " -p 'Hello' -n 100 -c 6 --ignore-eos --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "context");
  EXPECT_EQ(j["prompt_tokens"].size() + j["tokens"].size(), 7u);  // the last token is sampled, never evaluated
}

TEST(Cli, PromptFromFileAndStdin) {
  const Outcome a = run("-m " + model("tiny-odd-q4_0") + " -p 'Hello' -n 4 --json -q");
  const Outcome b = run("-m " + model("tiny-odd-q4_0") + " -f - -n 4 --json -q", "Hello");
  const Outcome c = run("-m " + model("tiny-odd-q4_0") + " -n 4 --json -q", "Hello");
  EXPECT_EQ(json::parse(a.out)["tokens"], json::parse(b.out)["tokens"]);
  EXPECT_EQ(json::parse(a.out)["tokens"], json::parse(c.out)["tokens"]);
}

TEST(Cli, ClosedStdoutEndsQuietly) {
  const std::string cmd = "bash -c 'set -o pipefail; " + std::string(BLOOMZ_BINARY) + " -m " + model("tiny-odd-q4_0") +
                          " -p Hello -n 200 --ignore-eos -q | head -c 1 >/dev/null; echo $?'";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[64] = {0};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  EXPECT_EQ(std::string(buf, n), "0\n");
}

TEST(Cli, LogitsCommandWritesNpy) {
  const std::string out = "/tmp/bloomz-logits-test-" + std::to_string(::getpid()) + ".npy";
  const Outcome r = run("logits -m " + model("small256-f32") + " -p Hello -o " + out + " --kv-type f32");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto ours = bloomz::test::read_npy_f32(out);
  const auto ref = bloomz::test::read_npy_f32(data_path("ref/small256-f32/logits_exact_p0.npy"));
  ASSERT_EQ(ours.rows, 2);
  ASSERT_EQ(ours.cols, ref.cols);
  double max = 0;
  for (size_t i = 0; i < ours.data.size(); ++i) max = std::max(max, std::fabs(double(ours.data[i]) - ref.data[i]));
  EXPECT_LE(max, 0.02);
  const Outcome last = run("logits -m " + model("small256-f32") + " -p Hello -o " + out + " --last");
  ASSERT_EQ(last.status, 0);
  EXPECT_EQ(bloomz::test::read_npy_f32(out).rows, 1);
  unlink(out.c_str());
}

// Streamed pieces are always complete UTF-8, and they add up to the result text.
TEST(Generate, PiecesAreCompleteUtf8) {
  auto m = Model::load(model("small256-q4_0"));
  const Tokenizer tok = Tokenizer::from_gguf(m->gguf());
  Session s(*m, {});
  GenerateRequest req;
  req.prompt_tokens = tok.encode("Hello");
  req.n_predict = 20;
  req.sampler.ignore_eos = true;
  std::string all;
  int pieces = 0;
  generate(s, tok, req, [&](std::string_view piece) {
    ++pieces;
    EXPECT_EQ(utf8_complete_prefix(piece), piece.size());
    all += piece;
  });
  EXPECT_GT(pieces, 1);
  EXPECT_NE(all.find("\xe0\xa5\x8d"), std::string::npos);  // the Devanagari virama of this model's loop
}

TEST(Generate, Utf8CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xe0\xa5"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xe0\xa5\x8d"), 5u);
  EXPECT_EQ(utf8_complete_prefix("\xf0\x9f\x98"), 0u);
  EXPECT_EQ(utf8_complete_prefix("\xf0\x9f\x98\x80"), 4u);
  EXPECT_EQ(utf8_complete_prefix("a\x80"), 2u);  // a stray continuation byte is passed through
}

TEST(Cli, ParallelEqualsSequential) {
  std::string input;
  const char* prompts[] = {"Hello", "The quick brown fox", "Bonjour le monde", "def f(x):", "a b c d e f g",
                           "Once upon a time", "x", "1 2 3"};
  int i = 0;
  for (const char* p : prompts) {
    input += "{\"id\": " + std::to_string(i) + ", \"prompt\": \"" + p + "\", \"n_predict\": " + std::to_string(3 + 5 * (i % 4)) +
             (i % 3 == 0 ? ", \"temp\": 0.9, \"seed\": " + std::to_string(100 + i) : std::string()) + "}\n";
    ++i;
  }
  input += "{\"id\": 99, \"prompt\": \"\"}\n";
  const std::string base = "-m " + model("small256-q4_k_m") + " --batch-file - --ignore-eos -q";
  const Outcome seq = run(base, input);
  const Outcome par = run(base + " --parallel 4", input);
  const Outcome par8 = run(base + " --parallel 8 -t 1", input);
  EXPECT_EQ(seq.status, 1);  // the empty prompt
  EXPECT_EQ(par.status, 1);
  auto strip_timings = [](const std::string& out) {
    std::istringstream lines(out);
    std::string line, res;
    while (std::getline(lines, line)) {
      json j = json::parse(line);
      j.erase("timings");
      res += j.dump() + "\n";
    }
    return res;
  };
  EXPECT_EQ(strip_timings(seq.out), strip_timings(par.out));
  EXPECT_EQ(strip_timings(seq.out), strip_timings(par8.out));
  EXPECT_EQ(std::count(seq.out.begin(), seq.out.end(), '\n'), 9);
}

TEST(Cli, BenchReportsLlamaBenchFields) {
  const Outcome r = run("bench -m " + model("tiny-odd-q4_0") + " -p 8 -n 4 -r 2 -o json -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  for (const char* k : {"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_batch", "type_k",
                        "n_prompt", "n_gen", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts", "isa",
                        "weight_bytes_per_token", "gbps"}) {
    EXPECT_TRUE(j[0].contains(k)) << k;
  }
  EXPECT_EQ(j[0]["n_prompt"], 8);
  EXPECT_EQ(j[0]["n_gen"], 0);
  EXPECT_EQ(j[1]["n_prompt"], 0);
  EXPECT_EQ(j[1]["n_gen"], 4);
  EXPECT_EQ(j[0]["samples_ns"].size(), 2u);
  EXPECT_GT(j[1]["avg_ts"].get<double>(), 0.0);
  // tg rows carry every timed token's time and the stalls computed from them: tokens over twice
  // the median token, and their time beyond the median as a share of all tokens' time.
  EXPECT_FALSE(j[0].contains("samples_token_ns"));
  const auto tok = j[1]["samples_token_ns"].get<std::vector<double>>();
  ASSERT_EQ(tok.size(), 8u);  // 4 tokens x 2 timed runs
  std::vector<double> sorted = tok;
  std::sort(sorted.begin(), sorted.end());
  const double med = 0.5 * (sorted[3] + sorted[4]);
  EXPECT_DOUBLE_EQ(j[1]["median_token_ns"].get<double>(), med);
  int64_t stalled = 0;
  double extra = 0, total = 0;
  for (double t : tok) {
    total += t;
    if (t > 2 * med) {
      ++stalled;
      extra += t - med;
    }
  }
  EXPECT_EQ(j[1]["stalled_tokens"].get<int64_t>(), stalled);
  EXPECT_NEAR(j[1]["stall_fraction"].get<double>(), extra / total, 1e-12);
  double run_sum = 0;  // the tokens lie within their runs
  for (double ns : j[1]["samples_ns"].get<std::vector<double>>()) run_sum += ns;
  EXPECT_LE(total, run_sum);
  const Outcome md = run("bench -m " + model("tiny-odd-q4_0") + " -p 8 -n 0 -r 1 -t 1");
  EXPECT_NE(md.out.find("| pp8 |"), std::string::npos);
  EXPECT_NE(md.out.find("read bandwidth"), std::string::npos);
  EXPECT_EQ(run("bench -m " + model("tiny-odd-q4_0") + " -p x").status, 2);
}

// -d: llama-bench's depth. Every -p/-n test runs at every depth, in llama-bench's order (per depth:
// the pp tests, then the tg tests), named "pp8 @ d16"; the rows carry n_depth, and n_kv (the KV
// positions the session held after the run, read back from it) shows the test ran on top of the
// depth tokens.
TEST(Cli, BenchDepthRunsTestsOnAFilledCache) {
  const std::string base = "bench -m " + model("tiny-odd-q4_0") + " -r 1 -t 1 -b 8";
  const Outcome r = run(base + " -p 8 -n 4 -d 0,16 -o json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 4u);
  const int64_t want[4][4] = {{8, 0, 0, 8}, {0, 4, 0, 4}, {8, 0, 16, 24}, {0, 4, 16, 20}};  // n_prompt, n_gen, n_depth, n_kv
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(j[i]["n_prompt"], want[i][0]) << i;
    EXPECT_EQ(j[i]["n_gen"], want[i][1]) << i;
    EXPECT_EQ(j[i]["n_depth"], want[i][2]) << i;
    EXPECT_EQ(j[i]["n_kv"], want[i][3]) << i;
    EXPECT_EQ(j[i]["type_k"], "f16");
    EXPECT_EQ(j[i]["type_v"], "f16");
  }
  // The KV bytes read: tiny-odd has 3 layers of 96 values, fp16: 2*3*96*2 = 1152 bytes per position.
  // tg4 @ d16 reads positions 0..16, 0..17, 0..18, 0..19 (17+18+19+20 = 74); pp8 @ d16 with -b 8
  // is one call up to position 23 (24 positions); without depth tg4 reads 1+2+3+4.
  EXPECT_EQ(j[3]["kv_bytes_per_run"], 74 * 1152);
  EXPECT_EQ(j[2]["kv_bytes_per_run"], 24 * 1152);
  EXPECT_EQ(j[1]["kv_bytes_per_run"], 10 * 1152);
  const double tg_bytes = 4.0 * j[3]["weight_bytes_per_token"].get<double>() + 74 * 1152;
  EXPECT_NEAR(j[3]["gbps"].get<double>(), tg_bytes / j[3]["avg_ns"].get<double>(), 0.01 * j[3]["gbps"].get<double>());

  const Outcome md = run(base + " -p 8 -n 4 -d 0,16");
  ASSERT_EQ(md.status, 0) << md.err;
  const size_t pp = md.out.find("| pp8 |"), tg = md.out.find("| tg4 |");
  const size_t ppd = md.out.find("| pp8 @ d16 |"), tgd = md.out.find("| tg4 @ d16 |");
  ASSERT_NE(pp, std::string::npos) << md.out;
  ASSERT_NE(tgd, std::string::npos) << md.out;
  EXPECT_LT(pp, tg);
  EXPECT_LT(tg, ppd);
  EXPECT_LT(ppd, tgd);

  const Outcome csv = run(base + " -p 0 -n 2 -d 5 -o csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_NE(csv.out.find(",n_depth,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("\"f16\",0,2,5,"), std::string::npos) << csv.out;  // type_v, n_prompt, n_gen, n_depth

  // The fixture's context is 256: depth + test tokens may reach it, not pass it.
  const Outcome fits = run(base + " -p 0 -n 6 -d 250 -o jsonl");
  ASSERT_EQ(fits.status, 0) << fits.err;
  EXPECT_EQ(json::parse(fits.out)["n_kv"], 256);
  for (const char* bad : {"-d 251 -n 6 -p 0", "-d 0,300 -p 8 -n 0", "-d -1", "-d x", "-d 3,", "-d 2.5", "-d ''"}) {
    const Outcome e = run(base + " " + bad);
    EXPECT_EQ(e.status, 2) << bad;
    EXPECT_NE(e.err.find("-d/--n-depth"), std::string::npos) << bad << ": " << e.err;
    EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << bad << ": " << e.err;
    EXPECT_TRUE(e.out.empty()) << bad;
  }
}

// --interleave: the same rows (depths, KV positions, bytes, one sample per -r), but the runs take
// turns across the tests (the trace log names each run in order) instead of one test's in a row.
TEST(Cli, BenchInterleaveTakesRunsInTurns) {
  const std::string base = "bench -m " + model("tiny-odd-q4_0") + " -p 8 -n 4 -d 0,16 -r 2 -t 1 -b 8 -o json --log-level trace";
  const Outcome plain = run(base), mixed = run(base + " --interleave");
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(mixed.status, 0) << mixed.err;
  const json a = json::parse(plain.out), b = json::parse(mixed.out);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    for (const char* key : {"n_prompt", "n_gen", "n_depth", "n_kv", "kv_bytes_per_run"}) EXPECT_EQ(a[i][key], b[i][key]) << i << key;
    EXPECT_EQ(b[i]["samples_ns"].size(), 2u) << i;
  }
  auto order = [](const std::string& err) {
    std::vector<std::string> runs;
    for (size_t at = err.find("bench: "); at != std::string::npos; at = err.find("bench: ", at + 1))
      runs.push_back(err.substr(at + 7, err.find('\n', at) - at - 7));
    return runs;
  };
  const std::vector<std::string> want_plain = {"pp8 warm-up", "pp8 run 1", "pp8 run 2", "tg4 warm-up", "tg4 run 1", "tg4 run 2",
                                               "pp8 @ d16 warm-up", "pp8 @ d16 run 1", "pp8 @ d16 run 2",
                                               "tg4 @ d16 warm-up", "tg4 @ d16 run 1", "tg4 @ d16 run 2"};
  const std::vector<std::string> want_mixed = {"pp8 warm-up", "tg4 warm-up", "pp8 @ d16 warm-up", "tg4 @ d16 warm-up",
                                               "pp8 run 1", "tg4 run 1", "pp8 @ d16 run 1", "tg4 @ d16 run 1",
                                               "pp8 run 2", "tg4 run 2", "pp8 @ d16 run 2", "tg4 @ d16 run 2"};
  EXPECT_EQ(order(plain.err), want_plain) << plain.err;
  EXPECT_EQ(order(mixed.err), want_mixed) << mixed.err;
}

// --kv-type q8_0 (llama.cpp's -ctk/-ctv q8_0 blocks): bench rows name it in type_k/type_v and count
// its bytes (34 per 32 values); generation runs on it, with the same tokens for any thread count; a
// model whose head dimension is not a multiple of 32 is a usage error naming the flag.
TEST(Cli, KvTypeQ8_0) {
  const Outcome b = run("bench -m " + model("small256-q4_0") + " -p 0 -n 4 -d 8 -r 1 -t 1 --kv-type q8_0 -o jsonl");
  ASSERT_EQ(b.status, 0) << b.err;
  const json j = json::parse(b.out);
  EXPECT_EQ(j["type_k"], "q8_0");
  EXPECT_EQ(j["type_v"], "q8_0");
  EXPECT_EQ(j["n_kv"], 12);
  // small256: 2 layers of 256 values, K and V: 2 * 2 * 8 * 34 = 1088 bytes per position;
  // tg4 @ d8 reads 9 + 10 + 11 + 12 positions.
  EXPECT_EQ(j["kv_bytes_per_run"], 42 * 1088);
  const json g = fixture_generations("small256-q4_0")[0];
  const std::string gen = "-m " + model("small256-q4_0") + " -p " + quote(g["text"]) + " --no-escape -n 24 --ignore-eos --json -q --kv-type q8_0";
  const Outcome one = run(gen + " -t 1"), two = run(gen + " -t 2");
  ASSERT_EQ(one.status, 0) << one.err;
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_EQ(json::parse(one.out)["tokens"], json::parse(two.out)["tokens"]);
  EXPECT_EQ(json::parse(one.out)["tokens"].size(), 24u);
  const Outcome odd = run("-m " + model("tiny-odd-q4_0") + " -p Hello -n 2 --kv-type q8_0");
  EXPECT_EQ(odd.status, 2);
  EXPECT_NE(odd.err.find("--kv-type q8_0"), std::string::npos) << odd.err;
  EXPECT_EQ(std::count(odd.err.begin(), odd.err.end(), '\n'), 1) << odd.err;
  EXPECT_TRUE(odd.out.empty());
  EXPECT_EQ(run("-m " + model("small256-q4_0") + " -p Hello -n 2 --kv-type q8_1").status, 2);
}

// Ctrl-C stops after the current token: the output so far, the timing summary, exit 130.
TEST(Cli, SigintStopsWithOutputAndTimings) {
  const std::string err = "/tmp/bloomz-sigint-err-" + std::to_string(::getpid()) + ".txt";
  const std::string cmd = "bash -c '" + std::string(BLOOMZ_BINARY) + " -m " + model("small256-q4_0") +
                          " -p Hello -n -1 -c 30000 --ignore-eos --json -t 1 2>" + err +
                          " & pid=$!; sleep 1.5; kill -INT $pid; wait $pid; echo \"exit=$?\"'";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  const std::string stderr_text = bloomz::test::read_text(err);
  unlink(err.c_str());
  const size_t exit_at = out.rfind("exit=");
  ASSERT_NE(exit_at, std::string::npos);
  const std::string status = out.substr(exit_at);
  EXPECT_EQ(status, "exit=130\n");
  const json j = json::parse(out.substr(0, exit_at));
  EXPECT_EQ(j["finish_reason"], "cancelled");
  EXPECT_NE(stderr_text.find("bloomz: prompt eval time"), std::string::npos);
}
