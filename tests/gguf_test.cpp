// The GGUF reader: good files parse; every kind of damaged file gives one bloomz::Error line
// naming the fault (and, for structural faults, a byte offset), never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <span>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "support/gguf_builder.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"

using namespace bloomz;
using bloomz::test::GgufBuilder;

namespace {

std::span<const std::byte> as_span(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

// Parses and returns the error message ("" when it parsed).
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    GgufFile::parse(as_span(bytes), "test.gguf");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "error message must be one line";
    return e.what();
  }
  return "";
}

template <typename T>
void poke(std::vector<uint8_t>& bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
}

std::vector<uint8_t> tiny() { return bloomz::test::TinyBloom{}.build(); }

}  // namespace

TEST(Gguf, ParsesTinyModel) {
  const auto bytes = tiny();
  GgufFile g = GgufFile::parse(as_span(bytes), "tiny.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_string("general.architecture"), "bloom");
  EXPECT_EQ(g.get_u32("bloom.block_count"), 1u);
  EXPECT_FLOAT_EQ(g.get_f32("bloom.attention.layer_norm_epsilon"), 1e-5f);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), 8u);
  EXPECT_EQ(g.get_i32_array("tokenizer.ggml.token_type")[0], 3);
  const GgufTensorInfo* t = g.find_tensor("blk.0.attn_qkv.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 32);
  EXPECT_EQ(t->ne[1], 96);
  EXPECT_EQ(t->n_bytes, 32u * 96u * 4u);
  EXPECT_EQ(t->file_offset % 32, 0u);
}

TEST(Gguf, StrictTypedGetters) {
  const auto bytes = tiny();
  GgufFile g = GgufFile::parse(as_span(bytes), "tiny.gguf");
  EXPECT_THROW(g.get_f32("bloom.block_count"), Error);
  EXPECT_THROW(g.get_u32("missing.key"), Error);
  EXPECT_FALSE(g.get_u32_opt("missing.key").has_value());
  EXPECT_THROW(g.get_i32_array("tokenizer.ggml.tokens"), Error);
  try {
    g.get_string("bloom.block_count");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bloom.block_count"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("expected string"), std::string::npos);
  }
}

TEST(Gguf, RejectsBadHeaders) {
  auto bytes = tiny();
  {
    auto b = bytes;
    b[0] = 'X';
    EXPECT_NE(parse_error(b).find("not a GGUF file"), std::string::npos);
  }
  {
    auto b = bytes;
    poke<uint32_t>(b, 4, 1);
    EXPECT_NE(parse_error(b).find("version 1"), std::string::npos);
  }
  {
    auto b = bytes;
    poke<uint32_t>(b, 4, 4);
    EXPECT_NE(parse_error(b).find("unsupported GGUF version 4"), std::string::npos);
  }
  {
    auto b = bytes;
    poke<uint64_t>(b, 8, uint64_t(1) << 60);  // tensor_count
    EXPECT_NE(parse_error(b).find("tensor_count"), std::string::npos);
  }
  {
    auto b = bytes;
    poke<uint64_t>(b, 16, ~uint64_t(0));  // kv_count
    EXPECT_NE(parse_error(b).find("kv_count"), std::string::npos);
  }
  {
    auto b = bytes;
    poke<uint64_t>(b, 24, uint64_t(1) << 40);  // first key's length
    EXPECT_NE(parse_error(b).find("exceeds"), std::string::npos);
  }
  EXPECT_NE(parse_error({}).find("too small"), std::string::npos);
  EXPECT_NE(parse_error({'G', 'G', 'U'}).find("too small"), std::string::npos);
}

TEST(Gguf, RejectsBadMetadata) {
  {
    GgufBuilder b;
    b.kv_u32("a", 1);
    b.kv_u32("a", 2);
    EXPECT_NE(parse_error(b.build()).find("duplicate metadata key 'a'"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.kv_u32("general.alignment", 24);
    EXPECT_NE(parse_error(b.build()).find("power of two"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.kv_i32("general.alignment", 32);
    EXPECT_NE(parse_error(b.build()).find("general.alignment has type i32"), std::string::npos);
  }
  {
    // Nested array: element type ARRAY.
    std::vector<uint8_t> b = GgufBuilder{}.build();
    GgufBuilder nb;
    nb.kv_i32_array("arr", {1, 2});
    b = nb.build();
    // The element type sits after magic(4) version(4) counts(16) key(8+3) type(4).
    poke<uint32_t>(b, 24 + 11 + 4, 9);
    EXPECT_NE(parse_error(b).find("nested arrays"), std::string::npos);
  }
  {
    GgufBuilder nb;
    nb.kv_u32("k", 1);
    auto b = nb.build();
    poke<uint32_t>(b, 24 + 9, 77);  // value type
    EXPECT_NE(parse_error(b).find("invalid value type 77"), std::string::npos);
  }
  {
    GgufBuilder nb;
    nb.kv_i32_array("arr", {1, 2});
    auto b = nb.build();
    poke<uint64_t>(b, 24 + 11 + 8, uint64_t(1) << 62);  // array count
    EXPECT_NE(parse_error(b).find("arr: array of"), std::string::npos);
  }
}

TEST(Gguf, RejectsBadTensorInfos) {
  auto with_tensor = [](uint32_t type, std::vector<uint64_t> ne, size_t data_bytes) {
    GgufBuilder b;
    b.tensor("t", type, std::move(ne), std::vector<uint8_t>(data_bytes, 0));
    return b.build();
  };
  EXPECT_EQ(parse_error(with_tensor(0, {4, 2}, 32)), "");
  EXPECT_NE(parse_error(with_tensor(4, {32}, 18)).find("unknown ggml type id 4"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(200, {32}, 18)).find("unknown ggml type id 200"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(2, {31}, 18)).find("not a multiple"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(0, {1, 1, 1, 1, 1}, 4)).find("n_dims 5"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(0, {uint64_t(1) << 40, uint64_t(1) << 40}, 4)).find("overflows"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(0, {uint64_t(1) << 63}, 4)).find("negative or too large"), std::string::npos);
  EXPECT_NE(parse_error(with_tensor(0, {1024}, 16)).find("outside the file"), std::string::npos);
  {
    GgufBuilder b;
    b.tensor("t", 0, {4}, std::vector<uint8_t>(16));
    b.tensor("t", 0, {4}, std::vector<uint8_t>(16));
    EXPECT_NE(parse_error(b.build()).find("duplicate tensor name 't'"), std::string::npos);
  }
  {
    // Second tensor's offset moved back onto the first: overlap.
    GgufBuilder b;
    b.tensor("a", 0, {8}, std::vector<uint8_t>(32));
    b.tensor("b", 0, {8}, std::vector<uint8_t>(32));
    auto bytes = b.build();
    // Tensor info of "b": after header(24) + "a" info (8+1+4+8+4+8=33) + name (8+1) + ndims 4 + dim 8 + type 4.
    const size_t b_offset_at = 24 + 33 + 9 + 4 + 8 + 4;
    poke<uint64_t>(bytes, b_offset_at, 0);
    EXPECT_NE(parse_error(bytes).find("tensor b: offset 0, expected 32"), std::string::npos);
    poke<uint64_t>(bytes, b_offset_at, 33);
    EXPECT_NE(parse_error(bytes).find("not aligned"), std::string::npos);
    poke<uint64_t>(bytes, b_offset_at, uint64_t(1) << 50);
    EXPECT_NE(parse_error(bytes).find("tensor b"), std::string::npos);
  }
}

// Every prefix of a valid file (sampled densely in the header) is refused cleanly.
TEST(Gguf, TruncatedAnywhere) {
  const auto bytes = bloomz::test::read_bytes(bloomz::test::data_path("models/tiny-odd-q4_0.gguf"));
  ASSERT_GT(bytes.size(), 100000u);
  const GgufFile full = GgufFile::parse(as_span(bytes), "full");
  const size_t header = full.data_offset();
  std::vector<size_t> cuts;
  for (size_t i = 0; i < 64; ++i) cuts.push_back(i);
  for (size_t i = 64; i < header; i += 97) cuts.push_back(i);
  for (size_t i = header; i < bytes.size(); i += 4099) cuts.push_back(i);
  cuts.push_back(bytes.size() - 1);
  for (size_t cut : cuts) {
    std::vector<uint8_t> b(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    EXPECT_NE(parse_error(b), "") << "prefix of " << cut << " bytes parsed";
  }
}

// Random corruption of header bytes: parse either succeeds or throws bloomz::Error.
TEST(Gguf, RandomCorruptionNeverCrashes) {
  const auto bytes = bloomz::test::read_bytes(bloomz::test::data_path("models/tiny-odd-q4_0.gguf"));
  const size_t header = GgufFile::parse(as_span(bytes), "full").data_offset();
  std::mt19937 rng(7);
  int errors = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    auto b = bytes;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < n_flips; ++f) {
      const size_t at = rng() % header;
      b[at] = static_cast<uint8_t>(rng());
    }
    try {
      GgufFile::parse(as_span(b), "corrupt");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(HugePages, LargeArraysAreHugePageAlignedAndBehaveAsVectors) {
  // Arrays of 1 MiB or more are mapped 2 MiB-aligned (transparent huge pages); smaller ones come
  // from operator new. Both must hold, grow, copy and free like any vector.
  bloomz::HugeVector<uint32_t> small(1000, 7u);
  bloomz::HugeVector<uint32_t> big(3u << 18, 0u);  // 3 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % (uintptr_t{2} << 20), 0u);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint32_t>(i * 2654435761u);
  bloomz::HugeVector<uint32_t> copy = big;
  for (uint32_t i = 0; i < 300000; ++i) small.push_back(i);  // grows from the heap into a mapping
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % (uintptr_t{2} << 20), 0u);
  EXPECT_EQ(small[999], 7u);
  EXPECT_EQ(small.back(), 299999u);
  ASSERT_EQ(copy.size(), big.size());
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), big.begin()));
  big.clear();
  big.shrink_to_fit();
  EXPECT_EQ(copy[12345], static_cast<uint32_t>(12345u * 2654435761u));
}
