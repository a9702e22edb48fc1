// `bloomz tokenize` / `bloomz detokenize` end to end: the binary prints exactly llama.cpp's ids
// (`--ids --no-parse-special -f FILE`) for every whole file of tokens.jsonl, and the other
// formats and errors of cli.md.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_files.hpp"

namespace {

struct Result {
  int status = -1;
  std::string out;
};

// Runs a shell command line; stdout is captured, stderr dropped.
Result run_shell(const std::string& cmdline) {
  const std::string cmd = cmdline + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  Result r;
  if (p == nullptr) return r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

Result run(const std::string& args) { return run_shell(std::string(BLOOMZ_BINARY) + " " + args); }

std::string model() { return bloomz::test::data_path("models/tiny-odd-f32.gguf"); }

std::string ids_line(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]\n";
}

// Named per process: ctest runs tests (and other checkouts run theirs) side by side.
std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = std::string(testing::TempDir()) + "/bloomz-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

TEST(TokenizeCli, EveryFixtureFileGivesLlamaCppIds) {
  std::ifstream f(bloomz::test::data_path("tokens.jsonl"), std::ios::binary);
  std::string line;
  int files = 0;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("kind") != "file" && j.at("kind") != "edge") continue;
    const std::string text = j.at("text").get<std::string>();
    const std::string path = write_temp("tok_input.txt", text);
    const Result r = run("tokenize -m " + model() + " --ids --no-parse-special -f " + path);
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(r.out, ids_line(j.at("tokens").get<std::vector<int32_t>>())) << j.value("src", "edge");
    ++files;
  }
  EXPECT_EQ(files, 38 + 59);
}

TEST(TokenizeCli, Formats) {
  const std::string m = "-m " + model();
  EXPECT_EQ(run("tokenize " + m + " -p 'Hello</s>'").out,
            "    76 -> 'H'\n  3635 -> 'ello'\n     2 -> '</s>'\n");
  EXPECT_EQ(run("tokenize " + m + " -p 'Hello</s>' --ids").out, "[76, 3635, 2]\n");
  EXPECT_EQ(run("tokenize " + m + " -p 'Hello</s>' --ids --no-parse-special").out,
            "[76, 3635, 64, 51, 119, 66]\n");
  EXPECT_EQ(run("tokenize " + m + " -p '' --ids").out, "[]\n");
  EXPECT_EQ(run("tokenize " + m + " -p 'a\\nb' --ids").out, "[101, 14, 102]\n");
  // --no-escape: the backslash and the n stay two characters.
  EXPECT_EQ(run("tokenize " + m + " -p 'a\\nb' --ids --no-escape").out,
            run_shell("printf 'a\\\\nb' | " + std::string(BLOOMZ_BINARY) + " tokenize " + m + " --ids --stdin").out);
  EXPECT_EQ(run("tokenize " + m + " -p Hello --ids --show-count").out,
            "[76, 3635]\nTotal number of tokens: 2\n");
  const auto j = nlohmann::json::parse(run("tokenize " + m + " -p '日本' --json").out);
  EXPECT_EQ(j.at("ids").get<std::vector<int32_t>>(), (std::vector<int32_t>{2732, 169, 2733}));
  EXPECT_EQ(j.at("pieces").size(), 3u);
  EXPECT_EQ(j.at("pieces")[0], "\xEF\xBF\xBD");  // half a character: U+FFFD in JSON
}

TEST(TokenizeCli, Detokenize) {
  const std::string m = "-m " + model();
  EXPECT_EQ(run("detokenize " + m + " --ids '[76, 3635, 2]'").out, "Hello");
  EXPECT_EQ(run("detokenize " + m + " --ids 76,3635,2 --special").out, "Hello</s>");
  EXPECT_EQ(run_shell("printf '76 3635\\n' | " + std::string(BLOOMZ_BINARY) + " detokenize " + m).out, "Hello");
  EXPECT_EQ(run("detokenize " + m + " --ids 'x'").status, 2);
  EXPECT_EQ(run("detokenize " + m + " --ids 4260").status, 2);
  EXPECT_EQ(run("detokenize " + m + " --ids ''").out, "");
}

TEST(TokenizeCli, Errors) {
  const std::string m = "-m " + model();
  EXPECT_EQ(run("tokenize " + m).status, 2);
  EXPECT_EQ(run("tokenize " + m + " -p a -f b").status, 2);
  EXPECT_EQ(run("tokenize " + m + " -p a --ids --json").status, 2);
  EXPECT_EQ(run("tokenize -m /nonexistent.gguf -p a").status, 1);
  EXPECT_EQ(run("tokenize " + m + " -f /nonexistent.txt").status, 1);
}

}  // namespace
