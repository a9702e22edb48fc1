// GgufFile: a parsed GGUF header (typed metadata and the tensor directory) over the bytes of a
// MappedFile. The parser trusts nothing: every length, count, dimension, type id and offset is
// checked against the bytes left and for overflow; each failure is one Error(Format) line that
// names the key or tensor and the byte offset. Views (strings, tensor data) point into the
// bytes, so a GgufFile must not outlive the MappedFile it was parsed from.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bloomz/ggml_types.hpp"
#include "bloomz/huge_pages.hpp"

namespace bloomz {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// One metadata value. Scalars are widened into one of the three numeric fields; strings and
// arrays point into the file bytes.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  uint64_t u = 0;      // UINT8/16/32/64, BOOL
  int64_t i = 0;       // INT8/16/32/64
  double f = 0;        // FLOAT32/64
  std::string_view str;  // STRING
  // ARRAY: element type, count, and the raw bytes of the elements (strings: their u64-prefixed
  // encodings back to back; use GgufFile::string_array to get views).
  GgufType array_type = GgufType::UINT8;
  uint64_t array_count = 0;
  const std::byte* array_data = nullptr;
  size_t array_bytes = 0;
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
  uint64_t offset = 0;  // byte offset of the key in the file
};

struct GgufTensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ggml order: ne[0] is contiguous
  uint64_t offset = 0;       // relative to the data section, as stored
  uint64_t file_offset = 0;  // absolute byte offset of the data in the file
  uint64_t n_bytes = 0;
  int64_t n_elements = 0;
  uint64_t info_offset = 0;  // byte offset of this tensor info record (for messages)
  const std::byte* data = nullptr;
};

class GgufFile {
 public:
  // Parses and validates the whole header and tensor directory; `path` is used in messages.
  static GgufFile parse(std::span<const std::byte> bytes, std::string path);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return bytes_.size(); }

  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const GgufKv* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Strict typed getters (llama.cpp's rule: a key present with another type is an error).
  // The plain forms throw Error(Format) naming the key when it is missing or mistyped;
  // the _opt forms return nullopt when missing and throw when mistyped.
  uint32_t get_u32(std::string_view key) const;
  std::optional<uint32_t> get_u32_opt(std::string_view key) const;
  float get_f32(std::string_view key) const;
  std::optional<float> get_f32_opt(std::string_view key) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::string_view get_string(std::string_view key) const;
  std::optional<std::string_view> get_string_opt(std::string_view key) const;
  // Arrays: the element type must match exactly.
  HugeVector<std::string_view> get_string_array(std::string_view key) const;  // 250 k views for BLOOM
  std::vector<int32_t> get_i32_array(std::string_view key) const;
  // Array length of a key of type ARRAY (throws if missing or not an array).
  uint64_t array_length(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  std::span<const std::byte> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace bloomz
