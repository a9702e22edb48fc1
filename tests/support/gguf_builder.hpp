// GgufBuilder: writes GGUF v3 bytes in memory, for tests that need files a converter would never
// write (wrong key types, odd shapes, bad offsets) or tiny models with a chosen configuration.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bloomz::test {

class GgufBuilder {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;

  void kv_u32(const std::string& key, uint32_t v) { kv_scalar(key, 4, &v, 4); }
  void kv_i32(const std::string& key, int32_t v) { kv_scalar(key, 5, &v, 4); }
  void kv_f32(const std::string& key, float v) { kv_scalar(key, 6, &v, 4); }
  void kv_bool(const std::string& key, bool v) { uint8_t b = v; kv_scalar(key, 7, &b, 1); }
  void kv_string(const std::string& key, const std::string& v) {
    put_string(meta_, key);
    put<uint32_t>(meta_, 8);
    put_string(meta_, v);
    ++n_kv_;
  }
  void kv_string_array(const std::string& key, const std::vector<std::string>& v) {
    put_string(meta_, key);
    put<uint32_t>(meta_, 9);
    put<uint32_t>(meta_, 8);
    put<uint64_t>(meta_, v.size());
    for (const auto& s : v) put_string(meta_, s);
    ++n_kv_;
  }
  void kv_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    put_string(meta_, key);
    put<uint32_t>(meta_, 9);
    put<uint32_t>(meta_, 5);
    put<uint64_t>(meta_, v.size());
    for (int32_t x : v) put<int32_t>(meta_, x);
    ++n_kv_;
  }
  // A tensor with the given ggml type and dims; data bytes are supplied by the caller.
  void tensor(const std::string& name, uint32_t type, std::vector<uint64_t> ne, std::vector<uint8_t> data) {
    tensors_.push_back({name, type, std::move(ne), std::move(data)});
  }
  void tensor_f32(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
    tensor(name, 0, std::move(ne), std::move(bytes));
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> out;
    put<uint32_t>(out, 0x46554747);
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors_.size());
    put<uint64_t>(out, n_kv_);
    out.insert(out.end(), meta_.begin(), meta_.end());
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) put<uint64_t>(out, d);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offset);
      offset += pad(t.data.size());
    }
    if (!tensors_.empty()) out.resize(pad(out.size()), 0);
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(pad(out.size()), 0);
    }
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
  };
  uint64_t pad(uint64_t x) const { return (x + alignment - 1) / alignment * alignment; }
  template <typename T>
  static void put(std::vector<uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  static void put_string(std::vector<uint8_t>& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void kv_scalar(const std::string& key, uint32_t type, const void* v, size_t n) {
    put_string(meta_, key);
    put<uint32_t>(meta_, type);
    const auto* p = static_cast<const uint8_t*>(v);
    meta_.insert(meta_.end(), p, p + n);
    ++n_kv_;
  }

  std::vector<uint8_t> meta_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace bloomz::test
