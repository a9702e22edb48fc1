// One test per row of the table "Bad input and what bloomz does" (docs/bad-input.md, linked from the README):
// each runs the real binary on the bad input and checks the exit status and the one-line message.
// Hostile files are built in memory (support/gguf_builder.hpp, support/tiny_model.hpp). The fuzz
// regression inputs in tests/data/fuzz/regressions are replayed here too.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "bloomz/generate.hpp"
#include "bloomz/model.hpp"
#include "bloomz/tokenizer.hpp"
#include "support/gguf_builder.hpp"
#include "support/json_lines.hpp"
#include "support/test_files.hpp"
#include "support/run_bloomz.hpp"
#include "support/tiny_model.hpp"

using namespace bloomz;
using bloomz::test::GgufBuilder;
using bloomz::test::TempFile;
using bloomz::test::TinyBloom;
using nlohmann::json;

namespace {

using Result = bloomz::test::Outcome;
using bloomz::test::run_bloomz;
using bloomz::test::shell_quote;

// A model-load failure: exit 1 and exactly one stderr line containing `message`.
void expect_load_error(const std::vector<uint8_t>& bytes, const std::string& message) {
  const TempFile f(bytes);
  const Result r = run_bloomz("-m " + f.path() + " -p x -n 1");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
  EXPECT_NE(r.err.find(f.path()), std::string::npos) << "the message names the file: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

std::string fixture() { return bloomz::test::data_path("models/tiny-odd-q4_0.gguf"); }

// Two F32 tensors "a" and "b" of 8 elements; returns the byte offset of b's offset field.
std::vector<uint8_t> two_tensors(size_t* b_offset_at) {
  GgufBuilder g;
  g.tensor("a", 0, {8}, std::vector<uint8_t>(32));
  g.tensor("b", 0, {8}, std::vector<uint8_t>(32));
  // header 24; "a": name 8+1, n_dims 4, ne 8, type 4, offset 8 = 33; "b": name 9, n_dims 4, ne 8, type 4.
  *b_offset_at = 24 + 33 + 9 + 4 + 8 + 4;
  return g.build();
}

}  // namespace

// --- The model file ---

TEST(BadInput, MissingFile) {
  const Result r = run_bloomz("-m /nonexistent/dir/model.gguf -p x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent/dir/model.gguf: No such file or directory"), std::string::npos) << r.err;
}

TEST(BadInput, UnreadableFile) {
  const TempFile f(TinyBloom{}.build());
  ASSERT_EQ(chmod(f.path().c_str(), 0), 0);
  // root reads anything: drop to nobody when we are root (the file's directory is 0700, so open
  // its permissions too).
  std::string prefix;
  if (geteuid() == 0) {
    if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "root without setpriv";
    chmod(std::filesystem::path(f.path()).parent_path().c_str(), 0755);
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const Result r = run_bloomz("-m " + f.path() + " -p x", "", prefix);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(f.path() + ": Permission denied"), std::string::npos) << r.err;
}

TEST(BadInput, Directory) {
  const Result r = run_bloomz("-m /tmp -p x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/tmp: is a directory, not a model file"), std::string::npos) << r.err;
}

TEST(BadInput, FifoOrDeviceDoesNotHang) {
  char tmpl[] = "/tmp/bloomz-fifo-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string fifo = dir + "/model.gguf";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const Result r = run_bloomz("-m " + fifo + " -p x", "", "timeout 20 ");
  unlink(fifo.c_str());
  rmdir(dir.c_str());
  EXPECT_EQ(r.status, 1);  // 124 would be the timeout: opening a FIFO must not wait for a writer
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
  const Result dev = run_bloomz("-m /dev/zero -p x");
  EXPECT_EQ(dev.status, 1);
  EXPECT_NE(dev.err.find("/dev/zero: not a regular file"), std::string::npos) << dev.err;
}

TEST(BadInput, EmptyFile) { expect_load_error({}, "file is empty"); }

TEST(BadInput, WrongMagic) {
  auto b = TinyBloom{}.build();
  std::memcpy(b.data(), "GGML", 4);
  expect_load_error(b, "not a GGUF file (magic 0x4c4d4747");
  expect_load_error({'h', 'e', 'l', 'l', 'o', '\n'}, "not a GGUF file");
  expect_load_error({'G', 'G'}, "too small to be GGUF");
}

TEST(BadInput, GgufVersion1) {
  auto b = TinyBloom{}.build();
  poke<uint32_t>(b, 4, 1);
  expect_load_error(b, "GGUF version 1 is no longer supported");
  poke<uint32_t>(b, 4, 0x03000000);
  expect_load_error(b, "big-endian or corrupt");
}

TEST(BadInput, TruncatedAnywhere) {
  const auto full = TinyBloom{}.build();
  const GgufFile g = GgufFile::parse({reinterpret_cast<const std::byte*>(full.data()), full.size()}, "x");
  // In the header, in the metadata, in the tensor directory, in the data, one byte short.
  for (size_t cut : {size_t(7), size_t(20), size_t(100), static_cast<size_t>(g.tensors()[0].info_offset + 5),
                     static_cast<size_t>(g.data_offset() + 3), full.size() / 2, full.size() - 1}) {
    SCOPED_TRACE(cut);
    const std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<long>(cut));
    const TempFile f(b);
    const Result r = run_bloomz("-m " + f.path() + " -p x -n 1");
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.err.find("(file truncated?)") != std::string::npos || r.err.find("lies outside the file") != std::string::npos ||
                r.err.find("exceeds the") != std::string::npos || r.err.find("past the end") != std::string::npos ||
                r.err.find("cannot fit in the") != std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("at byte offset"), std::string::npos) << r.err;
  }
}

TEST(BadInput, HugeCountsAndLengths) {
  const auto good = TinyBloom{}.build();
  {
    auto b = good;
    poke<uint64_t>(b, 8, ~uint64_t(0));  // tensor_count
    expect_load_error(b, "tensor_count 18446744073709551615 cannot fit");
  }
  {
    auto b = good;
    poke<uint64_t>(b, 16, uint64_t(1) << 62);  // kv_count
    expect_load_error(b, "kv_count 4611686018427387904 cannot fit");
  }
  {
    auto b = good;
    poke<uint64_t>(b, 24, uint64_t(1) << 40);  // the first key's length
    expect_load_error(b, "string length 1099511627776 exceeds");
  }
  {
    GgufBuilder g;
    g.kv_i32_array("arr", {1, 2});
    auto b = g.build();
    poke<uint64_t>(b, 24 + 11 + 8, uint64_t(1) << 61);  // the array's element count
    expect_load_error(b, "arr: array of 2305843009213693952 i32 exceeds");
  }
  {
    GgufBuilder g;
    g.tensor("t", 0, {uint64_t(1) << 40, uint64_t(1) << 40}, std::vector<uint8_t>(4));
    expect_load_error(g.build(), "tensor t: element count overflows");
  }
  {
    TinyBloom t;
    t.n_ctx = 4000000000u;
    expect_load_error(t.build(), "bloom.context_length = 4000000000 is out of range");
  }
}

TEST(BadInput, OffsetsPastTheEnd) {
  size_t at = 0;
  auto b = two_tensors(&at);
  poke<uint64_t>(b, at, uint64_t(1) << 50);
  expect_load_error(b, "tensor b: offset 1125899906842624, expected 32");
  GgufBuilder g;
  g.tensor("t", 0, {1024}, std::vector<uint8_t>(16));  // 4096 bytes declared, 16 present
  expect_load_error(g.build(), "tensor t: data [");
  expect_load_error(g.build(), "lies outside the file");
}

TEST(BadInput, OverlappingOrMisalignedTensors) {
  size_t at = 0;
  auto b = two_tensors(&at);
  poke<uint64_t>(b, at, 0);
  expect_load_error(b, "tensor b: offset 0, expected 32 (tensor data overlaps, has gaps or is out of order)");
  poke<uint64_t>(b, at, 33);
  expect_load_error(b, "tensor b: offset 33 is not aligned to 32");
}

TEST(BadInput, UnknownTensorType) {
  TinyBloom t;
  t.extra = [](GgufBuilder& g) { g.tensor("extra.weight", 4, {32}, std::vector<uint8_t>(18)); };
  expect_load_error(t.build(), "tensor extra.weight: unknown ggml type id 4");
  GgufBuilder g;
  g.tensor("t", 1000, {32}, std::vector<uint8_t>(64));
  expect_load_error(g.build(), "tensor t: unknown ggml type id 1000");
}

TEST(BadInput, WrongMetadataTypes) {
  GgufBuilder g;
  g.kv_string("general.architecture", "bloom");
  g.kv_u32("bloom.context_length", 64);
  g.kv_u32("bloom.embedding_length", 32);
  g.kv_u32("bloom.feed_forward_length", 128);
  g.kv_i32("bloom.block_count", 1);
  expect_load_error(g.build(), "key bloom.block_count has type i32, expected u32");
  GgufBuilder a;
  a.kv_u32("general.architecture", 7);
  expect_load_error(a.build(), "key general.architecture has type u32, expected string");
  GgufBuilder al;
  al.kv_string("general.alignment", "32");
  expect_load_error(al.build(), "general.alignment has type string, expected u32");
}

TEST(BadInput, NonBloomArchitecture) {
  TinyBloom t;
  t.arch = "llama";
  expect_load_error(t.build(), "architecture 'llama' is not supported (bloomz runs 'bloom' models only)");
}

TEST(BadInput, MissingTokenizerKeys) {
  TinyBloom t;
  t.with_tokenizer = false;
  expect_load_error(t.build(), "required key tokenizer.ggml.tokens is missing");
  // Tokens present but no tokenizer.ggml.model: the tokenizer refuses the file.
  TinyBloom m;
  m.with_tokenizer = false;
  m.extra = [](GgufBuilder& g) { g.kv_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "d", "e", "f", "g", "h"}); };
  expect_load_error(m.build(), "tokenizer.ggml.model");
}

TEST(BadInput, VocabularySizeDiffersFromTokenEmbdRows) {
  TinyBloom t;
  t.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
    if (name == "token_embd.weight") ne[1] = 9;  // the vocabulary has 8 tokens
  };
  expect_load_error(t.build(), "tensor token_embd.weight: expected shape [32, 8], got [32, 9]");
}

TEST(BadInput, TensorShapesDoNotMatchHyperparameters) {
  TinyBloom t;
  t.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
    if (name == "blk.0.ffn_up.weight") ne[1] = 64;
  };
  expect_load_error(t.build(), "tensor blk.0.ffn_up.weight: expected shape [32, 128], got [32, 64]");
  TinyBloom v;
  v.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
    if (name == "output_norm.bias") ne = {31};
  };
  expect_load_error(v.build(), "tensor output_norm.bias: expected shape [32], got [31]");
}

// NaN/Inf in the weights are not scanned for at load (that would read every weight); they
// propagate into the logits, and the decoding loop refuses non-finite logits with one error line
// instead of sampling garbage.
TEST(BadInput, NanOrInfInWeights) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE(bad);
    // A real fixture (whose vocabulary tokenizes any text), with every value of
    // output_norm.weight (F32) poisoned: every logit becomes non-finite.
    auto bytes = bloomz::test::read_bytes(bloomz::test::data_path("models/tiny-odd-f32.gguf"));
    const GgufFile g = GgufFile::parse({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "x");
    const GgufTensorInfo* ti = g.find_tensor("output_norm.weight");
    ASSERT_NE(ti, nullptr);
    for (int64_t i = 0; i < ti->n_elements; ++i) poke<float>(bytes, ti->file_offset + 4 * static_cast<size_t>(i), bad);
    const TempFile f(bytes);
    const Result r = run_bloomz("-m " + f.path() + " -p abc -n 4");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.err.find("non-finite"), std::string::npos) << r.err;
    // In --batch-file the fault is the model's, not an item's: the run stops with the same error.
    const Result batch = run_bloomz("-m " + f.path() + " --batch-file - -n 4", "abc\nxyz\n");
    EXPECT_EQ(batch.status, 1);
    EXPECT_NE(batch.err.find("non-finite"), std::string::npos) << batch.err;
  }
}

// --- The prompt ---

TEST(BadInput, EmptyPrompt) {
  const Result r = run_bloomz("-m " + fixture() + " -p ''");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("the prompt is empty"), std::string::npos) << r.err;
  const Result f = run_bloomz("-m " + fixture() + " -f /dev/null");
  EXPECT_EQ(f.status, 1);
  EXPECT_NE(f.err.find("the prompt is empty"), std::string::npos) << f.err;
}

TEST(BadInput, InvalidUtf8InPrompt) {
  // Undecodable bytes become U+FFFD (llama.cpp's lenient decode); the JSON text stays valid UTF-8.
  const Result r = run_bloomz("-m " + fixture() + " -f - -n 2 --json -q", std::string("ab\xff\xc3(\xed\xa0\x80 z", 10));
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  const std::string prompt = j["prompt"];  // json::parse has checked that it is valid UTF-8
  EXPECT_EQ(prompt.rfind("ab\xef\xbf\xbd", 0), 0u) << prompt;
  EXPECT_NE(prompt.find(" z"), std::string::npos) << prompt;
  EXPECT_FALSE(j["prompt_tokens"].empty());
  // A sequence above U+10FFFF is refused, as llama.cpp does.
  const Result big = run_bloomz("-m " + fixture() + " -f - -n 2", "\xf5\x80\x80\x80");
  EXPECT_EQ(big.status, 1);
  EXPECT_NE(big.err.find("above U+10FFFF"), std::string::npos) << big.err;
}

TEST(BadInput, PromptLongerThanTheContext) {
  const Result r = run_bloomz("-m " + fixture() + " -p 'one two three four five six' -c 3");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("more than the context of 3 (-c/--ctx-size)"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(BadInput, NPredictLargerThanTheContext) {
  const Result r = run_bloomz("-m " + fixture() + " -p Hello -n 100000 -c 16 --ignore-eos --json -q");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "context");
  EXPECT_EQ(j["prompt_tokens"].size() + j["tokens"].size(), 17u);
}

// --- The command line ---

TEST(BadInput, ThreadsZeroNegativeHuge) {
  for (const char* t : {"0", "-1", "-3", "1025", "99999999999", "abc"}) {
    const Result r = run_bloomz("-m " + fixture() + " -p x -t " + t);
    EXPECT_EQ(r.status, 2) << t;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  }
  const Result ok = run_bloomz("-m " + fixture() + " -p x -n 1 -t 1024 -q");
  EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST(BadInput, CtxSizeLargerThanTheModels) {
  // Allowed (BLOOM's ALiBi has no position table); the KV cache is sized for it.
  const Result r = run_bloomz("-m " + fixture() + " -p Hello -n 2 -c 1024 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("exceeds the model's training context of 256"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(r.out)["tokens"].size(), 2u);
  const Result huge = run_bloomz("-m " + fixture() + " -p Hello -c 2000000");
  EXPECT_EQ(huge.status, 2);
  EXPECT_NE(huge.err.find("--ctx-size"), std::string::npos) << huge.err;
  const Result neg = run_bloomz("-m " + fixture() + " -p Hello -c -5");
  EXPECT_EQ(neg.status, 2);
}

TEST(BadInput, BenchDepthOutOfRange) {
  // -d: negative, not a number, an empty list item, or depth + test tokens beyond the model's context
  // (the fixture's is 256): one line naming -d/--n-depth, exit 2, before any test runs.
  for (const char* d : {"-d -1", "-d abc", "-d 0,", "-d 250 -p 8 -n 0", "-d 0,253 -p 0 -n 4"}) {
    const Result r = run_bloomz("bench -m " + fixture() + " -r 1 -t 1 " + d);
    EXPECT_EQ(r.status, 2) << d;
    EXPECT_NE(r.err.find("error: -d/--n-depth: "), std::string::npos) << d << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << d << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << d;
  }
}

TEST(BadInput, KvTypeQ8_0WithAnOddHeadDim) {
  const Result r = run_bloomz("-m " + fixture() + " -p x -n 1 --kv-type q8_0");  // head dim 96 / 6 = 16
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--kv-type q8_0: the model's head dimension 16 (n_embd 96 / n_head 6) is not a multiple of 32"),
            std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(BadInput, UnknownFlags) {
  const Result r = run_bloomz("--frobnicate");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << r.err;
  const Result sub = run_bloomz("tokenize --bogus -m " + fixture() + " -p x");
  EXPECT_EQ(sub.status, 2);
  EXPECT_NE(sub.err.find("--bogus"), std::string::npos) << sub.err;
  const Result missing = run_bloomz("-m");
  EXPECT_EQ(missing.status, 2);
}

TEST(BadInput, BatchLineThatIsNotJson) {
  const Result r = run_bloomz("-m " + fixture() + " --batch-file - -n 2 -q", "{\"prompt\": \"Hi\"\n{not json}\nplain prompt\n");
  EXPECT_EQ(r.status, 1);
  const std::vector<json> out = bloomz::test::parse_json_lines(r.out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NE(out[0]["error"].get<std::string>().find("line 1: not valid JSON"), std::string::npos);
  EXPECT_NE(out[1]["error"].get<std::string>().find("line 2: not valid JSON"), std::string::npos);
  EXPECT_EQ(out[2]["prompt"], "plain prompt");
  EXPECT_FALSE(out[2].contains("error"));
}

TEST(BadInput, BatchLineWithBadOverrides) {
  // Each bad line is that item's error (naming the key or the flag behind it); the others run.
  const std::string input = "{\"prompt\": \"x\", \"top_p\": 2}\n{\"prompt\": \"x\", \"n_predict\": \"abc\"}\n"
                            "{\"prompt\": \"x\", \"bogus\": 1}\n{\"prompt\": \"x\", \"n_predict\": 1}\n";
  const Result r = run_bloomz("-m " + fixture() + " --batch-file - -n 2 -q", input);
  EXPECT_EQ(r.status, 1);
  const std::vector<json> out = bloomz::test::parse_json_lines(r.out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_NE(out[0]["error"].get<std::string>().find("--top-p"), std::string::npos) << out[0];
  EXPECT_NE(out[1]["error"].get<std::string>().find("line 2: bad value"), std::string::npos) << out[1];
  EXPECT_NE(out[2]["error"].get<std::string>().find("unknown key 'bogus'"), std::string::npos) << out[2];
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[static_cast<size_t>(i)]["index"], i);
  EXPECT_EQ(out[3]["tokens"].size(), 1u);
}

// --- Batch runs at scale: --output, --resume, --shard, --progress (exit 2 naming the flag) ---

namespace {

// Exit 2 with exactly one stderr line containing `message`.
void expect_usage_error(const std::string& args, const std::string& message, const std::string& prefix = "") {
  const Result r = run_bloomz(args, "", prefix);
  EXPECT_EQ(r.status, 2) << args << ": " << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

}  // namespace

TEST(BadInput, BatchOutputUnwritable) {
  const TempFile in(std::vector<uint8_t>{'h', 'i', '\n'}, "in.txt");
  const std::string base = "-m " + fixture() + " --batch-file " + in.path() + " -n 1 --output ";
  expect_usage_error(base + "/nonexistent/dir/out.jsonl", "--output /nonexistent/dir/out.jsonl: No such file or directory");
  expect_usage_error(base + "/tmp", "--output /tmp: Is a directory");
  expect_usage_error(base + in.path(), "--output " + in.path() + ": is the --batch-file input");
  expect_usage_error(base + "/dev/null --resume", "--output /dev/null: --resume needs a regular file");
}

TEST(BadInput, BatchOutputUnreadableForResume) {
  const TempFile in(std::vector<uint8_t>{'h', 'i', '\n'}, "in.txt");
  const TempFile out(std::vector<uint8_t>{'{', '}', '\n'}, "out.jsonl");
  ASSERT_EQ(chmod(out.path().c_str(), 0), 0);
  std::string prefix;
  if (geteuid() == 0) {  // root reads anything: drop to nobody (as UnreadableFile does)
    if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "root without setpriv";
    chmod(std::filesystem::path(in.path()).parent_path().c_str(), 0755);
    chmod(in.path().c_str(), 0644);
    chmod(std::filesystem::path(out.path()).parent_path().c_str(), 0755);
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  expect_usage_error("-m " + fixture() + " --batch-file " + in.path() + " -n 1 --resume --output " + out.path(),
                     "--output " + out.path() + ": Permission denied", prefix);
}

TEST(BadInput, BatchOutputDiskFull) {
  // A write that fails (here ENOSPC from /dev/full) ends the run: exit 1, one line naming the file.
  const Result r = run_bloomz("-m " + fixture() + " --batch-file - -n 1 --output /dev/full", "hi\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--output /dev/full: No space left on device"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(BadInput, ResumeWithoutOutput) {
  expect_usage_error("-m " + fixture() + " --batch-file - --resume", "--resume requires --output");
  expect_usage_error("-m " + fixture() + " -p x --output out.jsonl", "--output requires --batch-file");
  expect_usage_error("-m " + fixture() + " -p x --shard 0/2", "--shard requires --batch-file");
}

TEST(BadInput, BadShard) {
  for (const char* s : {"4/4", "x/2", "1/0", "-1/2", "3", "1/2/3", "0/", "/2", "99999999999999999999/2"}) {
    expect_usage_error("-m " + fixture() + " --batch-file - --shard " + shell_quote(s),
                       std::string("--shard: expected I/N with 0 <= I < N, got '") + s + "'");
  }
  for (const char* s : {"0", "-1", "abc", "nan"}) {
    expect_usage_error("-m " + fixture() + " --batch-file - --progress " + s, std::string("--progress: expected seconds > 0, got '") + s + "'");
  }
}

// --- Fuzz regressions: every saved input runs cleanly through the code its fuzzer drives ---

TEST(BadInput, FuzzRegressionInputs) {
  const std::filesystem::path dir = bloomz::test::data_path("fuzz/regressions");
  // The inputs ship in tests/data: a missing folder is a broken checkout, not a reason to skip.
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string target = e.path().parent_path().filename().string();
    const auto bytes = bloomz::test::read_bytes(e.path().string());
    SCOPED_TRACE(e.path().string());
    if (target == "fuzz_gguf" || target == "fuzz_model") {
      try {
        const GgufFile g = GgufFile::parse({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "r.gguf");
        (void)Tokenizer::from_gguf(g);
      } catch (const Error&) {
      }
      const TempFile f(bytes);
      try {
        (void)Model::load(f.path());
      } catch (const Error&) {
      }
    } else if (target == "fuzz_cli") {
      // NUL-separated argv (as fuzz_cli splits it), given to the real binary: a usage error
      // (status 2) or a clean run, never a signal; stdin is empty, `timeout` guards against a hang.
      std::string args, cur;
      for (const uint8_t b : bytes) {
        if (b == 0) {
          args += " " + shell_quote(cur);
          cur.clear();
        } else {
          cur.push_back(static_cast<char>(b));
        }
      }
      if (!cur.empty()) args += " " + shell_quote(cur);
      const Result r = run_bloomz(args, "", "timeout 60 ");
      EXPECT_TRUE(r.status == 0 || r.status == 1 || r.status == 2) << r.status << " " << r.err;
    }
  }
}
