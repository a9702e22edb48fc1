// Reads a little-endian float32 C-order NumPy .npy file (v1/v2 header) into rows x cols.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_files.hpp"

namespace bloomz::test {

struct NpyMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  const float* row(int64_t r) const { return data.data() + r * cols; }
};

inline NpyMatrix read_npy_f32(const std::string& path) {
  const auto bytes = read_bytes(path);
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not .npy");
  size_t header_len, header_at;
  if (bytes[6] == 1) {
    header_len = bytes[8] | (bytes[9] << 8);
    header_at = 10;
  } else {
    header_len = bytes[8] | (bytes[9] << 8) | (size_t(bytes[10]) << 16) | (size_t(bytes[11]) << 24);
    header_at = 12;
  }
  const std::string header(reinterpret_cast<const char*>(bytes.data() + header_at), header_len);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path + ": expected little-endian float32 C order");
  }
  const size_t lp = header.find('('), rp = header.find(')');
  const std::string shape = header.substr(lp + 1, rp - lp - 1);
  NpyMatrix m;
  m.rows = std::stoll(shape);
  m.cols = std::stoll(shape.substr(shape.find(',') + 1));
  m.data.resize(static_cast<size_t>(m.rows * m.cols));
  std::memcpy(m.data.data(), bytes.data() + header_at + header_len, m.data.size() * 4);
  return m;
}

}  // namespace bloomz::test
