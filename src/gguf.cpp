// GGUF v2/v3 parser. A bounded cursor reads the header; every read is checked against the bytes
// left, every size computation for overflow, and each failure is one line naming the path, the
// key or tensor, and the byte offset. Nothing is allocated from a count before the count has
// been checked against the bytes that could hold it.
#include "bloomz/gguf.hpp"

#include <cstring>
#include <fmt/format.h>
#include <limits>

#include "bloomz/error.hpp"

namespace bloomz {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxNameLength = 63;  // GGML_MAX_NAME - 1
constexpr uint32_t kMaxDims = 4;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

bool valid_type_id(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::FLOAT64); }

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }
  const std::byte* here() const { return bytes_.data() + pos_; }

  [[noreturn]] void fail(const std::string& what, uint64_t at) const {
    throw Error(ErrorKind::Format, fmt::format("{}: {} (at byte offset {})", path_, what, at));
  }

  void need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      fail(fmt::format("{}: needs {} bytes but only {} remain (file truncated?)", what, n, left()), pos_);
    }
  }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, here(), sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // `index` (when not kNoIndex) is appended to `what` in messages as what[index]; the text is only
  // built on failure, since vocabularies hold hundreds of thousands of strings.
  static constexpr uint64_t kNoIndex = ~uint64_t(0);
  std::string_view read_string(std::string_view what, uint64_t index = kNoIndex) {
    const uint64_t at = pos_;
    auto name = [&] { return index == kNoIndex ? std::string(what) : fmt::format("{}[{}]", what, index); };
    if (left() < 8) need(8, name() + " length");
    uint64_t len;
    std::memcpy(&len, here(), 8);
    pos_ += 8;
    if (len > left()) {
      fail(fmt::format("{}: string length {} exceeds the {} bytes remaining", name(), len, left()), at);
    }
    std::string_view s(reinterpret_cast<const char*>(here()), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

// Reads one scalar of type t into v.
void read_scalar(Cursor& c, GgufType t, GgufValue& v, const std::string& what) {
  switch (t) {
    case GgufType::UINT8: v.u = c.read<uint8_t>(what); break;
    case GgufType::INT8: v.i = c.read<int8_t>(what); break;
    case GgufType::UINT16: v.u = c.read<uint16_t>(what); break;
    case GgufType::INT16: v.i = c.read<int16_t>(what); break;
    case GgufType::UINT32: v.u = c.read<uint32_t>(what); break;
    case GgufType::INT32: v.i = c.read<int32_t>(what); break;
    case GgufType::FLOAT32: v.f = c.read<float>(what); break;
    case GgufType::BOOL: v.u = c.read<uint8_t>(what) != 0; break;
    case GgufType::UINT64: v.u = c.read<uint64_t>(what); break;
    case GgufType::INT64: v.i = c.read<int64_t>(what); break;
    case GgufType::FLOAT64: v.f = c.read<double>(what); break;
    default: break;
  }
}

uint64_t pad_to(uint64_t x, uint64_t a) { return x + (a - x % a) % a; }

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "unknown";
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, std::string path) {
  GgufFile g;
  g.bytes_ = bytes;
  g.path_ = std::move(path);
  Cursor c(bytes, g.path_);

  if (bytes.size() < 4) c.fail(fmt::format("file of {} bytes is too small to be GGUF", bytes.size()), 0);
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    c.fail(fmt::format("not a GGUF file (magic 0x{:08x}, expected 0x{:08x} \"GGUF\")", magic, kMagic), 0);
  }
  g.version_ = c.read<uint32_t>("version");
  if (g.version_ == 1) c.fail("GGUF version 1 is no longer supported (re-convert the model with a current llama.cpp)", 4);
  if ((g.version_ & 0xFFFFu) == 0) c.fail(fmt::format("GGUF version 0x{:08x}: big-endian or corrupt file", g.version_), 4);
  if (g.version_ != 2 && g.version_ != 3) c.fail(fmt::format("unsupported GGUF version {} (bloomz reads 2 and 3)", g.version_), 4);

  const uint64_t n_tensors = c.read<uint64_t>("tensor_count");
  const uint64_t n_kv = c.read<uint64_t>("kv_count");
  // Every kv needs at least 8 (key length) + 4 (type) + 1 bytes, every tensor info 8+4+8+4+8.
  if (n_kv > c.left() / 13) c.fail(fmt::format("kv_count {} cannot fit in the {} bytes remaining", n_kv, c.left()), 16);
  if (n_tensors > c.left() / 32) c.fail(fmt::format("tensor_count {} cannot fit in the {} bytes remaining", n_tensors, c.left()), 8);

  g.kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKv kv;
    kv.offset = c.pos();
    kv.key = c.read_string(fmt::format("metadata key #{}", k));
    if (kv.key.empty()) c.fail(fmt::format("metadata key #{} is empty", k), kv.offset);
    const std::string key(kv.key);
    const uint64_t type_at = c.pos();
    const uint32_t type_id = c.read<uint32_t>(key + " type");
    if (!valid_type_id(type_id)) c.fail(fmt::format("{}: invalid value type {}", key, type_id), type_at);
    kv.value.type = static_cast<GgufType>(type_id);
    if (kv.value.type == GgufType::STRING) {
      kv.value.str = c.read_string(key);
    } else if (kv.value.type == GgufType::ARRAY) {
      const uint64_t at = c.pos();
      const uint32_t elem = c.read<uint32_t>(key + " array type");
      if (!valid_type_id(elem)) c.fail(fmt::format("{}: invalid array element type {}", key, elem), at);
      if (elem == static_cast<uint32_t>(GgufType::ARRAY)) c.fail(fmt::format("{}: nested arrays are not supported", key), at);
      kv.value.array_type = static_cast<GgufType>(elem);
      const uint64_t count = c.read<uint64_t>(key + " array length");
      kv.value.array_count = count;
      kv.value.array_data = c.here();
      const uint64_t start = c.pos();
      if (kv.value.array_type == GgufType::STRING) {
        if (count > c.left() / 8) c.fail(fmt::format("{}: array length {} exceeds the {} bytes remaining", key, count, c.left()), at);
        for (uint64_t j = 0; j < count; ++j) c.read_string(key, j);
      } else {
        const size_t es = scalar_size(kv.value.array_type);
        if (count > c.left() / es) c.fail(fmt::format("{}: array of {} {} exceeds the {} bytes remaining", key, count, gguf_type_name(kv.value.array_type), c.left()), at);
        c.skip(count * es, key);
      }
      kv.value.array_bytes = static_cast<size_t>(c.pos() - start);
    } else {
      read_scalar(c, kv.value.type, kv.value, key);
    }
    if (!g.kv_index_.emplace(kv.key, g.kvs_.size()).second) c.fail(fmt::format("duplicate metadata key '{}'", key), kv.offset);
    g.kvs_.push_back(kv);
  }

  if (const GgufKv* a = g.find("general.alignment")) {
    if (a->value.type != GgufType::UINT32) {
      c.fail(fmt::format("general.alignment has type {}, expected u32", gguf_type_name(a->value.type)), a->offset);
    }
    const uint64_t al = a->value.u;
    if (al == 0 || (al & (al - 1)) != 0) c.fail(fmt::format("general.alignment {} is not a power of two", al), a->offset);
    g.alignment_ = al;
  } else {
    g.alignment_ = kDefaultAlignment;
  }

  g.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo ti;
    ti.info_offset = c.pos();
    ti.name = c.read_string(fmt::format("tensor #{} name", t));
    const std::string name = ti.name.empty() ? fmt::format("#{}", t) : std::string(ti.name);
    if (ti.name.empty()) c.fail(fmt::format("tensor #{} has an empty name", t), ti.info_offset);
    if (ti.name.size() > kMaxNameLength) c.fail(fmt::format("tensor #{} name is {} bytes long (max {})", t, ti.name.size(), kMaxNameLength), ti.info_offset);
    const uint64_t dims_at = c.pos();
    ti.n_dims = c.read<uint32_t>("tensor " + name + " n_dims");
    if (ti.n_dims == 0 || ti.n_dims > kMaxDims) c.fail(fmt::format("tensor {}: n_dims {} out of range 1..{}", name, ti.n_dims, kMaxDims), dims_at);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      const uint64_t at = c.pos();
      const uint64_t ne = c.read<uint64_t>("tensor " + name + " dims");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) c.fail(fmt::format("tensor {}: dimension {} = {} is negative or too large", name, d, ne), at);
      ti.ne[d] = static_cast<int64_t>(ne);
      if (ti.ne[d] != 0 && n_el > std::numeric_limits<int64_t>::max() / ti.ne[d]) c.fail(fmt::format("tensor {}: element count overflows", name), at);
      n_el *= ti.ne[d];
    }
    ti.n_elements = n_el;
    const uint64_t type_at = c.pos();
    const uint32_t type_id = c.read<uint32_t>("tensor " + name + " type");
    const std::optional<TypeInfo> info = type_info(type_id);
    if (!info) c.fail(fmt::format("tensor {}: unknown ggml type id {}", name, type_id), type_at);
    ti.type = static_cast<GgmlType>(type_id);
    if (ti.ne[0] % info->block_size != 0) {
      c.fail(fmt::format("tensor {}: ne[0] = {} is not a multiple of the {} block size {}", name, ti.ne[0], info->name, info->block_size), dims_at);
    }
    const uint64_t blocks = static_cast<uint64_t>(n_el / info->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info->type_size)) c.fail(fmt::format("tensor {}: byte size overflows", name), dims_at);
    ti.n_bytes = blocks * static_cast<uint64_t>(info->type_size);
    ti.offset = c.read<uint64_t>("tensor " + name + " offset");
    if (!g.tensor_index_.emplace(ti.name, g.tensors_.size()).second) c.fail(fmt::format("duplicate tensor name '{}'", name), ti.info_offset);
    g.tensors_.push_back(ti);
  }

  // Tensor data starts at the next alignment boundary after the header.
  g.data_offset_ = n_tensors > 0 ? pad_to(c.pos(), g.alignment_) : c.pos();
  if (n_tensors > 0 && g.data_offset_ > bytes.size()) {
    c.fail(fmt::format("data section starts at {} past the end of the {}-byte file", g.data_offset_, bytes.size()), c.pos());
  }
  // Offsets must be exactly sequential (ggml's rule): no gaps, no overlap, no reordering.
  uint64_t expected = 0;
  for (GgufTensorInfo& ti : g.tensors_) {
    const std::string name(ti.name);
    if (ti.offset % g.alignment_ != 0) c.fail(fmt::format("tensor {}: offset {} is not aligned to {}", name, ti.offset, g.alignment_), ti.info_offset);
    if (ti.offset != expected) {
      c.fail(fmt::format("tensor {}: offset {}, expected {} (tensor data overlaps, has gaps or is out of order)", name, ti.offset, expected), ti.info_offset);
    }
    const uint64_t room = bytes.size() - g.data_offset_;
    if (ti.offset > room || ti.n_bytes > room - ti.offset) {
      c.fail(fmt::format("tensor {}: data [{}, {}) lies outside the file ({} bytes)", name, g.data_offset_ + ti.offset,
                         g.data_offset_ + ti.offset + ti.n_bytes, bytes.size()), ti.info_offset);
    }
    ti.file_offset = g.data_offset_ + ti.offset;
    ti.data = bytes.data() + ti.file_offset;
    if (ti.n_bytes > std::numeric_limits<uint64_t>::max() - g.alignment_) c.fail(fmt::format("tensor {}: size overflows", name), ti.info_offset);
    expected = ti.offset + pad_to(ti.n_bytes, g.alignment_);
  }
  return g;
}

const GgufKv* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void key_error(const std::string& path, std::string_view key, const std::string& what, uint64_t at) {
  throw Error(ErrorKind::Format, fmt::format("{}: key {} {} (at byte offset {})", path, key, what, at));
}

const GgufKv& typed(const GgufFile& g, const GgufKv* kv, std::string_view key, GgufType want) {
  if (kv->value.type != want) {
    key_error(g.path(), key, fmt::format("has type {}, expected {}", gguf_type_name(kv->value.type), gguf_type_name(want)), kv->offset);
  }
  return *kv;
}

const GgufKv& required(const GgufFile& g, std::string_view key) {
  const GgufKv* kv = g.find(key);
  if (kv == nullptr) throw Error(ErrorKind::Format, fmt::format("{}: required key {} is missing", g.path(), key));
  return *kv;
}

const GgufKv& array_of(const GgufFile& g, std::string_view key, GgufType elem) {
  const GgufKv& kv = typed(g, &required(g, key), key, GgufType::ARRAY);
  if (kv.value.array_type != elem) {
    key_error(g.path(), key, fmt::format("is an array of {}, expected an array of {}", gguf_type_name(kv.value.array_type), gguf_type_name(elem)), kv.offset);
  }
  return kv;
}

}  // namespace

uint32_t GgufFile::get_u32(std::string_view key) const {
  return static_cast<uint32_t>(typed(*this, &required(*this, key), key, GgufType::UINT32).value.u);
}

std::optional<uint32_t> GgufFile::get_u32_opt(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  return static_cast<uint32_t>(typed(*this, kv, key, GgufType::UINT32).value.u);
}

float GgufFile::get_f32(std::string_view key) const {
  return static_cast<float>(typed(*this, &required(*this, key), key, GgufType::FLOAT32).value.f);
}

std::optional<float> GgufFile::get_f32_opt(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  return static_cast<float>(typed(*this, kv, key, GgufType::FLOAT32).value.f);
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const {
  const GgufKv* kv = find(key);
  if (kv == nullptr) return fallback;
  return typed(*this, kv, key, GgufType::BOOL).value.u != 0;
}

std::string_view GgufFile::get_string(std::string_view key) const {
  return typed(*this, &required(*this, key), key, GgufType::STRING).value.str;
}

std::optional<std::string_view> GgufFile::get_string_opt(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  return typed(*this, kv, key, GgufType::STRING).value.str;
}

HugeVector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  const GgufKv& kv = array_of(*this, key, GgufType::STRING);
  HugeVector<std::string_view> out;
  out.reserve(static_cast<size_t>(kv.value.array_count));
  // Already bounds-checked by parse(); just walk the length-prefixed strings again.
  const std::byte* p = kv.value.array_data;
  for (uint64_t j = 0; j < kv.value.array_count; ++j) {
    uint64_t len;
    std::memcpy(&len, p, 8);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), static_cast<size_t>(len));
    p += 8 + len;
  }
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const GgufKv& kv = array_of(*this, key, GgufType::INT32);
  std::vector<int32_t> out(static_cast<size_t>(kv.value.array_count));
  if (!out.empty()) std::memcpy(out.data(), kv.value.array_data, out.size() * sizeof(int32_t));
  return out;
}

uint64_t GgufFile::array_length(std::string_view key) const {
  return typed(*this, &required(*this, key), key, GgufType::ARRAY).value.array_count;
}

}  // namespace bloomz
