// Model binding: every fixture model loads and agrees with its manifest (types, shapes, parameter
// count), `bloomz inspect --json` reports the same, and each configuration fault is refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"

using namespace bloomz;
using bloomz::test::TempFile;
using bloomz::test::TinyBloom;
using bloomz::test::GgufBuilder;

namespace {

std::vector<std::string> fixture_models() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(bloomz::test::data_path("models"))) {
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  TempFile f(bytes);
  try {
    Model::load(f.path());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

}  // namespace

TEST(ModelLoad, EveryFixtureMatchesItsManifest) {
  const auto models = fixture_models();
  ASSERT_GE(models.size(), 20u);
  for (const std::string& path : models) {
    SCOPED_TRACE(path);
    const auto manifest = nlohmann::json::parse(bloomz::test::read_text(path + ".json"));
    auto model = Model::load(path);
    const BloomConfig& c = model->config();
    EXPECT_EQ(c.n_vocab, manifest["n_vocab"].get<int64_t>());
    EXPECT_EQ(c.n_embd, manifest["n_embd"].get<int64_t>());
    EXPECT_EQ(c.n_ctx_train, manifest["n_ctx_train"].get<int64_t>());
    EXPECT_EQ(c.n_layer, manifest["build"]["n_layer"].get<int64_t>());
    EXPECT_EQ(c.n_head, manifest["build"]["n_head"].get<int64_t>());
    EXPECT_EQ(c.n_ff, manifest["build"]["n_ff"].get<int64_t>());
    EXPECT_EQ(model->n_params(), manifest["n_params"].get<int64_t>());
    EXPECT_EQ(static_cast<int64_t>(model->file().size()), manifest["file_size"].get<int64_t>());
    const auto& tensors = manifest["tensors"];
    EXPECT_EQ(model->gguf().tensors().size(), tensors.size());
    for (const GgufTensorInfo& t : model->gguf().tensors()) {
      const auto& m = tensors.at(std::string(t.name));
      EXPECT_EQ(upper(type_name(t.type)), m["type"].get<std::string>()) << t.name;
      const auto ne = m["ne"].get<std::vector<int64_t>>();
      ASSERT_EQ(ne.size(), t.n_dims) << t.name;
      for (size_t d = 0; d < ne.size(); ++d) EXPECT_EQ(t.ne[d], ne[d]) << t.name;
    }
    EXPECT_EQ(model->tied_output, tensors.find("output.weight") == tensors.end());
  }
}

TEST(ModelLoad, InspectJsonMatchesManifest) {
  for (const std::string& path : fixture_models()) {
    SCOPED_TRACE(path);
    int status = 0;
    const std::string out = run(std::string(BLOOMZ_BINARY) + " inspect --json " + path + " 2>/dev/null", &status);
    ASSERT_EQ(status, 0);
    const auto j = nlohmann::json::parse(out);
    const auto manifest = nlohmann::json::parse(bloomz::test::read_text(path + ".json"));
    EXPECT_EQ(j["architecture"], "bloom");
    EXPECT_EQ(j["n_params"], manifest["n_params"]);
    EXPECT_EQ(j["n_vocab"], manifest["n_vocab"]);
    EXPECT_EQ(j["file_type"], manifest["file_type"]);
    EXPECT_EQ(j["file_type_name"], manifest["ftype_name"]);
    ASSERT_EQ(j["tensors"].size(), manifest["tensors"].size());
    for (const auto& t : j["tensors"]) {
      const auto& m = manifest["tensors"].at(t["name"].get<std::string>());
      EXPECT_EQ(upper(t["type"].get<std::string>()), m["type"].get<std::string>());
      EXPECT_EQ(t["shape"], m["ne"]);
    }
  }
}

TEST(ModelLoad, TinyModelTiedAndUntied) {
  TempFile tied(TinyBloom{}.build());
  auto m = Model::load(tied.path());
  EXPECT_TRUE(m->tied_output);
  EXPECT_EQ(m->output.data, m->token_embd.data);
  TinyBloom u;
  u.untied = true;
  TempFile untied(u.build());
  auto m2 = Model::load(untied.path());
  EXPECT_FALSE(m2->tied_output);
  EXPECT_NE(m2->output.data, m2->token_embd.data);
}

TEST(ModelLoad, LoadsAnyShapeFromItsHyperparameters) {
  TinyBloom t;
  t.n_embd = 48;
  t.n_head = 3;
  t.n_layer = 3;
  t.n_ff = 192;
  t.n_vocab = 11;
  TempFile f(t.build());
  auto m = Model::load(f.path());
  EXPECT_EQ(m->layers.size(), 3u);
  EXPECT_EQ(m->config().head_dim(), 16);
}

TEST(ModelLoad, RefusesConfigurationFaults) {
  {
    TinyBloom t;
    t.arch = "llama";
    EXPECT_NE(load_error(t.build()).find("architecture 'llama' is not supported"), std::string::npos);
  }
  {
    TinyBloom t;
    t.with_tokenizer = false;
    EXPECT_NE(load_error(t.build()).find("tokenizer.ggml.tokens is missing"), std::string::npos);
  }
  {
    TinyBloom t;
    t.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
      if (name == "token_embd.weight") ne[1] = 9;  // vocabulary has 8 tokens
    };
    EXPECT_NE(load_error(t.build()).find("tensor token_embd.weight: expected shape [32, 8], got [32, 9]"), std::string::npos);
  }
  {
    TinyBloom t;
    t.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
      if (name == "blk.0.ffn_up.weight") ne[1] = 64;
    };
    EXPECT_NE(load_error(t.build()).find("blk.0.ffn_up.weight"), std::string::npos);
  }
  {
    TinyBloom t;
    t.reshape = [](const std::string& name, std::vector<uint64_t>& ne) {
      if (name == "blk.0.attn_norm.bias") ne = {16, 2};
    };
    EXPECT_NE(load_error(t.build()).find("blk.0.attn_norm.bias: expected shape [32]"), std::string::npos);
  }
  {
    TinyBloom t;
    t.n_head = 3;  // 32 is not a multiple of 3
    EXPECT_NE(load_error(t.build()).find("not a multiple of bloom.attention.head_count"), std::string::npos);
  }
  {
    TinyBloom t;
    t.n_layer = 0;
    EXPECT_NE(load_error(t.build()).find("bloom.block_count = 0"), std::string::npos);
  }
  {
    // bloom.block_count stored as i32 instead of u32: llama.cpp's strict types refuse it.
    bloomz::test::GgufBuilder g;
    g.kv_string("general.architecture", "bloom");
    g.kv_u32("bloom.context_length", 64);
    g.kv_u32("bloom.embedding_length", 32);
    g.kv_u32("bloom.feed_forward_length", 128);
    g.kv_i32("bloom.block_count", 1);
    EXPECT_NE(load_error(g.build()).find("bloom.block_count has type i32, expected u32"), std::string::npos);
  }
  {
    TinyBloom t;
    t.extra = [](GgufBuilder& b) { b.tensor_f32("extra.weight", {4}, {1, 2, 3, 4}); };
    EXPECT_NE(load_error(t.build()).find("unexpected tensor extra.weight"), std::string::npos);
  }
}

TEST(ModelLoad, FileErrorsNameThePath) {
  try {
    Model::load("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
  try {
    Model::load("/tmp");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos);
  }
  EXPECT_NE(load_error({}).find("file is empty"), std::string::npos);
}
