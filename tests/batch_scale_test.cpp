// End-to-end tests of batch runs at scale (cli.md, "Batch runs at scale"): an --output file
// survives kill -9 and --resume completes it exactly once; shards merged (by hand and through
// GNU parallel) equal one run; SIGTERM and SIGHUP end a run as SIGINT does; input is streamed
// (a slow pipe gets answers, memory does not grow with the lines); progress stays on stderr.
// All runs use the smallest fixture model, so the whole file takes seconds.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bloomz/sampler.hpp"
#include "support/process.hpp"
#include "support/run_bloomz.hpp"
#include "support/test_files.hpp"

using bloomz::test::BloomzProcess;
using bloomz::test::data_path;
using bloomz::test::Outcome;
using bloomz::test::read_text;
using bloomz::test::run_bloomz;
using bloomz::test::TempDir;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

std::string model() { return data_path("models/tiny-odd-q4_0.gguf"); }

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// n items of every kind: plain lines, JSON with overrides, their own seed, greedy, stop strings,
// logprobs, and empty lines (which are no items). Items without a seed sample with -s and --temp.
std::string mixed_input(int n, int n_predict) {
  static const char* words[] = {"the cat", "Hola mundo", "数据", "привет", "x = 1", "once upon", "ok!"};
  std::string in;
  for (int i = 0; i < n; ++i) {
    const std::string text = std::string(words[i % 7]) + " " + std::to_string(i);
    const int n_pred = n_predict + i % 11;
    switch (i % 7) {
      case 0: in += text; break;
      case 1: in += json({{"id", i}, {"prompt", text}, {"n_predict", n_predict / 2 + i % 5}}).dump(); break;
      case 2: in += json({{"id", "s" + std::to_string(i)}, {"prompt", text}, {"seed", 1000 + i}}).dump(); break;
      case 3: in += json({{"prompt", text}, {"temp", 0}, {"n_predict", n_pred}}).dump(); break;
      case 4: in += json({{"prompt", text}, {"stop", {"ab"}}}).dump(); break;
      case 5: in += json({{"prompt", text}, {"logprobs", 2}, {"n_predict", 3}}).dump(); break;
      default: in += i % 14 == 6 ? std::string() : text; break;
    }
    in += "\n";
  }
  return in;
}

// Writes `input` to DIR/in.jsonl; returns the arguments that run it: "-m MODEL --batch-file FILE".
std::string batch_of(const TempDir& dir, const std::string& input) {
  write_text(dir.path("in.jsonl"), input);
  return "-m " + model() + " --batch-file " + dir.path("in.jsonl");
}

// The result lines of `text` keyed by index, timings removed (they are the only part that
// differs between equal runs). A repeated index or a line that is not JSON fails the test.
std::map<int64_t, json> by_index(const std::string& text, const std::string& what) {
  std::map<int64_t, json> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("index")) {
      ADD_FAILURE() << what << ": not a result line: " << line;
      continue;
    }
    j.erase("timings");
    const auto index = j["index"].get<int64_t>();
    EXPECT_TRUE(out.emplace(index, j).second) << what << ": index " << index << " twice";
  }
  return out;
}

size_t count_lines(const std::string& path) {
  const std::string text = read_text(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Waits up to `seconds` for `path` to hold at least n complete lines.
bool wait_for_lines(const std::string& path, size_t n, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (count_lines(path) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

// The check of the issue: kill -9 at 5 random moments of a 200-item run, --resume each time;
// the final file has every index once and equals the uninterrupted run.
TEST(BatchScale, KillNineAtRandomMomentsThenResumeEqualsOneRun) {
  TempDir dir;
  const std::string common = batch_of(dir, mixed_input(200, 32)) + " -s 7 --temp 0.8 --ignore-eos -t 1 -q";
  const Outcome ref = run_bloomz(common + " --output " + dir.path("ref.jsonl"));
  ASSERT_EQ(ref.status, 0) << ref.err;
  const std::map<int64_t, json> want = by_index(read_text(dir.path("ref.jsonl")), "uninterrupted");
  ASSERT_EQ(want.size(), 200u - 14u);  // 14 empty lines are no items

  // The moments are random points of the run's progress (whatever the machine's speed): kill k
  // comes a random 0-3 ms after the file reaches a random number of lines, rising from kill to
  // kill and well short of the end, so that every kill lands inside the run.
  std::mt19937 rng(std::random_device{}());
  std::vector<size_t> targets;
  std::uniform_int_distribution<size_t> line(1, 150);
  for (int k = 0; k < 5; ++k) targets.push_back(line(rng));
  std::sort(targets.begin(), targets.end());
  std::uniform_int_distribution<int> extra_us(0, 3000);
  const std::string out = dir.path("out.jsonl");
  for (int k = 0; k < 5; ++k) {
    const int delay_us = extra_us(rng);
    SCOPED_TRACE("kill " + std::to_string(k) + " at " + std::to_string(targets[static_cast<size_t>(k)]) + " lines + " +
                 std::to_string(delay_us) + " us");
    BloomzProcess p(common + " --parallel 2 --output " + out + " --resume", "</dev/null 2>/dev/null");
    ASSERT_TRUE(p.started());
    EXPECT_TRUE(wait_for_lines(out, targets[static_cast<size_t>(k)], 120));
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    p.signal(SIGKILL);
    EXPECT_EQ(p.wait(), 128 + SIGKILL) << "the run ended before the kill";
    // Every complete line is a whole result; only the last one may be torn.
    const std::string text = read_text(out);
    std::istringstream lines(text.substr(0, text.rfind('\n') + 1));
    std::string l;
    while (std::getline(lines, l)) EXPECT_TRUE(json::accept(l)) << l;
  }
  const Outcome last = run_bloomz(common + " --parallel 2 --output " + out + " --resume");
  ASSERT_EQ(last.status, 0) << last.err;
  EXPECT_EQ(by_index(read_text(out), "resumed"), want);
}

// 4 shards x --parallel 1/4 x -t 1/2, sampled items (-s 7 --temp 0.8): merged = one run. The
// seed of an item without its own is the documented function of -s and its index.
TEST(BatchScale, ShardsMergedEqualOneRun) {
  TempDir dir;
  std::string input = mixed_input(40, 10);
  input.insert(input.find('\n', input.size() / 2) + 1, "{\"prompt\": \"bad\", \"top_p\": 2}\n");  // an error item
  const std::string common = batch_of(dir, input) + " -s 7 --temp 0.8 -n 12 -q";
  const Outcome one = run_bloomz(common + " -t 1");
  ASSERT_EQ(one.status, 1) << one.err;  // the bad item
  const std::map<int64_t, json> want = by_index(one.out, "one run");
  ASSERT_GT(want.size(), 30u);
  for (const auto& [index, j] : want) {
    if (j.contains("error") || !j["seed"].is_number()) continue;
    if (!j["id"].is_string()) {  // the items with a string id have their own seed
      EXPECT_EQ(j["seed"].get<uint64_t>(), bloomz::batch_item_seed(7, static_cast<uint64_t>(index)));
    }
  }
  for (const int parallel : {1, 4}) {
    for (const int threads : {1, 2}) {
      SCOPED_TRACE("--parallel " + std::to_string(parallel) + " -t " + std::to_string(threads));
      std::string merged;
      for (int shard = 0; shard < 4; ++shard) {
        const std::string args = common + " --shard " + std::to_string(shard) + "/4 --parallel " + std::to_string(parallel) + " -t " +
                                 std::to_string(threads);
        // Half the shards write to stdout, half to --output.
        const std::string file = dir.path("shard" + std::to_string(shard) + ".jsonl");
        const Outcome r = shard % 2 == 0 ? run_bloomz(args) : run_bloomz(args + " --output " + file);
        EXPECT_TRUE(r.status == 0 || r.status == 1) << r.err;
        const std::string text = shard % 2 == 0 ? r.out : read_text(file);
        for (const auto& [index, j] : by_index(text, "shard")) EXPECT_EQ(index % 4, shard);
        merged += text;
      }
      EXPECT_EQ(by_index(merged, "merged"), want);
    }
  }
}

// The issue's runner check: GNU parallel runs the 4 shards, tools/merge-shards merges them.
TEST(BatchScale, FourShardsThroughGnuParallelMergeToOneRun) {
  if (std::system("command -v parallel >/dev/null 2>&1") != 0) GTEST_SKIP() << "GNU parallel is not installed (tools/deps.sh installs it)";
  TempDir dir;
  const std::string common = batch_of(dir, mixed_input(60, 10)) + " -s 7 --temp 0.8 -n 12 -t 1 -q";
  const Outcome one = run_bloomz(common);
  ASSERT_EQ(one.status, 0) << one.err;
  const std::string merge = data_path("../../tools/merge-shards");
  const std::string cmd = "parallel --will-cite -j 4 " + std::string(BLOOMZ_BINARY) + " " + common + " --shard {}/4 --output " +
                          dir.path("out.{}.jsonl") + " ::: 0 1 2 3 && " + merge + " " + dir.path("out.*.jsonl") + " >" +
                          dir.path("merged.jsonl");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string merged = read_text(dir.path("merged.jsonl"));
  EXPECT_EQ(by_index(merged, "merged"), by_index(one.out, "one run"));
  // merge-shards gives input order, as one run's stdout.
  std::istringstream a(merged), b(one.out);
  std::string la, lb;
  while (std::getline(b, lb)) {
    ASSERT_TRUE(std::getline(a, la));
    EXPECT_EQ(json::parse(la)["index"], json::parse(lb)["index"]);
  }
}

// SIGTERM and SIGHUP end a batch run as SIGINT does: finished items written, in-flight ones
// "cancelled", exit 128 + signal. --resume then runs the cancelled ones again.
TEST(BatchScale, SigtermAndSighupCancelTheItemsInFlight) {
  TempDir dir;
  const std::string common = batch_of(dir, mixed_input(120, 60)) + " -s 7 --temp 0.8 --ignore-eos -t 1 -q";
  const Outcome ref = run_bloomz(common);
  ASSERT_EQ(ref.status, 0) << ref.err;
  for (const int sig : {SIGTERM, SIGHUP}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGHUP");
    // SIGTERM: the result file; SIGHUP: stdout, which keeps input order.
    const std::string out = dir.path(sig == SIGTERM ? "term.jsonl" : "hup.jsonl");
    BloomzProcess p(common + " --parallel 3" + (sig == SIGTERM ? " --output " + out : std::string()),
                    "</dev/null 2>/dev/null" + (sig == SIGTERM ? std::string() : " >" + out));
    ASSERT_TRUE(wait_for_lines(out, 3, 60));
    p.signal(sig);
    EXPECT_EQ(p.wait(), 128 + sig);
    const std::map<int64_t, json> got = by_index(read_text(out), "interrupted");
    int cancelled = 0;
    for (const auto& [index, j] : got) cancelled += j["finish_reason"] == "cancelled" ? 1 : 0;
    EXPECT_GE(cancelled, 1);
    EXPECT_LE(cancelled, 3);
    EXPECT_LT(got.size(), 111u) << "the signal came after the end";  // 120 lines, 9 of them empty
    if (sig == SIGHUP) {  // stdout keeps input order
      int64_t expect = -1;
      std::istringstream lines(read_text(out));
      std::string line;
      while (std::getline(lines, line)) {
        const int64_t index = json::parse(line)["index"].get<int64_t>();
        EXPECT_GT(index, expect);
        expect = index;
      }
    }
  }
  const Outcome resumed = run_bloomz(common + " --parallel 3 --output " + dir.path("term.jsonl") + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(by_index(read_text(dir.path("term.jsonl")), "resumed"), by_index(ref.out, "uninterrupted"));
}

// --resume drops what is not an answer (a torn last line, errors, cancelled items, repeats) and
// runs those items again.
TEST(BatchScale, ResumeDropsTornErrorCancelledAndRepeatedLines) {
  TempDir dir;
  const std::string common = batch_of(dir, "one\ntwo\nthree\nfour\nfive\n") + " -n 6";
  const Outcome ref = run_bloomz(common);
  ASSERT_EQ(ref.status, 0);
  std::vector<std::string> lines;
  std::istringstream in(ref.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l + "\n");
  ASSERT_EQ(lines.size(), 5u);
  json cancelled = json::parse(lines[3]);
  cancelled["finish_reason"] = "cancelled";
  const std::string out = dir.path("out.jsonl");
  // A stray line with a huge index (another input's?) is an answer to no line here: kept, harmless.
  const std::string stray = R"({"finish_reason": "length", "index": 9000000000000000000})" "\n";
  write_text(out, lines[0] + lines[2] + R"({"id": null, "index": 1, "error": "out of memory"})" + "\n" + cancelled.dump() + "\n" + lines[0] +
                      stray + lines[4].substr(0, lines[4].size() / 2));
  const Outcome r = run_bloomz(common + " --output " + out + " --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("3 items already done"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("3 lines dropped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a torn last line cut off"), std::string::npos) << r.err;
  std::map<int64_t, json> want = by_index(ref.out, "one run");
  want.emplace(9000000000000000000, json::parse(stray));
  EXPECT_EQ(by_index(read_text(out), "resumed"), want);
  // Nothing left to do: the file stays as it is.
  const std::string before = read_text(out);
  EXPECT_EQ(run_bloomz(common + " --output " + out + " --resume").status, 0);
  EXPECT_EQ(read_text(out), before);
  // Without --resume the file starts over.
  EXPECT_EQ(run_bloomz(common + " --shard 0/5 --output " + out).status, 0);
  EXPECT_EQ(count_lines(out), 1u);
}

// A pipe that feeds slowly gets each answer before it sends the next line, on stdout and in
// the result file, for any --parallel width.
TEST(BatchScale, SlowPipeGetsAnswersBeforeItsEnd) {
  TempDir dir;
  for (const int parallel : {1, 4}) {
    for (const bool to_file : {false, true}) {
      SCOPED_TRACE("--parallel " + std::to_string(parallel) + (to_file ? " --output" : " stdout"));
      const std::string out = dir.path("out" + std::to_string(parallel) + (to_file ? "f" : "s"));
      BloomzProcess p("-m " + model() + " --batch-file - -n 4 -q --parallel " + std::to_string(parallel) + (to_file ? " --output " + out : ""),
                      "2>/dev/null >" + (to_file ? std::string("/dev/null") : out), true);
      for (size_t i = 1; i <= 3; ++i) {
        ASSERT_TRUE(p.write_stdin("prompt number " + std::to_string(i) + "\n"));
        EXPECT_TRUE(wait_for_lines(out, i, 60)) << "no answer to line " << i << " while the input is open";
      }
      p.close_stdin();
      EXPECT_EQ(p.wait(), 0);
      EXPECT_EQ(count_lines(out), 3u);
    }
  }
}

// Memory does not grow with the number of input lines. The issue's figure (1 000 000 lines) is
// measured by tools/rss-batch.sh (README); here 20 000 lines against 1 000, which takes seconds.
TEST(BatchScale, PeakMemoryFlatOverManyLines) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory: peak RSS is measured in the plain build";
#endif
  auto peak_kb = [](int lines) {
    BloomzProcess p("-m " + model() + " --batch-file - -n 1 -t 1 -q", ">/dev/null 2>/dev/null", true);
    std::string chunk;
    for (int i = 0; i < lines; ++i) {
      chunk += "short prompt " + std::to_string(i) + "\n";
      if (chunk.size() > 60000 || i + 1 == lines) {
        EXPECT_TRUE(p.write_stdin(chunk));
        chunk.clear();
      }
    }
    p.close_stdin();
    EXPECT_EQ(p.wait(), 0);
    return p.peak_rss_kb();
  };
  const long small = peak_kb(1000);
  const long large = peak_kb(20000);
  RecordProperty("peak_rss_kb_1000", std::to_string(small));
  RecordProperty("peak_rss_kb_20000", std::to_string(large));
  EXPECT_LE(large, small + 4096) << "1 000 lines: " << small << " kB, 20 000 lines: " << large << " kB";
}

// --progress N: plain lines on stderr with the total when the input is a file; stdout holds only
// the results.
TEST(BatchScale, ProgressLinesGoToStderr) {
  TempDir dir;
  const std::string args = batch_of(dir, mixed_input(100, 30)) + " --ignore-eos -t 1 --progress 0.02";
  const Outcome r = run_bloomz(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("bloomz: progress: 93/93 items"), std::string::npos) << r.err;  // the last line, total known
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
  EXPECT_EQ(by_index(r.out, "stdout").size(), 93u);
  {
    BloomzProcess piped("-m " + model() + " --batch-file - -n 2 --progress 10", ">/dev/null 2>" + dir.path("err.txt"), true);
    EXPECT_TRUE(piped.write_stdin("a\nb\n"));
    piped.close_stdin();
    EXPECT_EQ(piped.wait(), 0);
    const std::string err = read_text(dir.path("err.txt"));
    EXPECT_NE(err.find("bloomz: progress: 2 items,"), std::string::npos) << err;  // no total from a pipe
  }
  const Outcome shard = run_bloomz(args + " --shard 1/3 --output " + dir.path("s.jsonl"));
  EXPECT_NE(shard.err.find("/" + std::to_string(by_index(read_text(dir.path("s.jsonl")), "shard").size()) + " items"), std::string::npos)
      << shard.err;
}

// On a terminal (a pty from util-linux's `script`), a live line redrawn in place: "\r", the
// counts with the total, "erase to the end of the line"; -q turns it off.
TEST(BatchScale, LiveProgressLineOnATerminal) {
  if (std::system("script -qec true /dev/null </dev/null >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1) or pty to give the run a terminal";
  TempDir dir;
  const std::string run = std::string(BLOOMZ_BINARY) + " " + batch_of(dir, mixed_input(30, 20)) + " -t 1 --output " + dir.path("out.jsonl");
  auto on_terminal = [&](const std::string& extra) {
    const std::string cmd = "script -qec " + bloomz::test::shell_quote(run + extra) + " /dev/null </dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    EXPECT_EQ(pclose(p), 0);
    return out;
  };
  const std::string live = on_terminal("");
  EXPECT_NE(live.find("\rbloomz: 28/28 items"), std::string::npos) << live;
  EXPECT_NE(live.find("\x1b[K"), std::string::npos) << live;
  EXPECT_EQ(by_index(read_text(dir.path("out.jsonl")), "results").size(), 28u);
  const std::string quiet = on_terminal(" -q");
  EXPECT_EQ(quiet.find("items"), std::string::npos) << quiet;
}
