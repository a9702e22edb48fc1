#include "unicode.hpp"

#include <fmt/format.h>

#include "bloomz/error.hpp"

namespace bloomz::unicode {

namespace {

inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Strict (RFC 3629) check of the sequence at s[pos]. Returns its length when valid; otherwise
// 0 and sets `subpart` to the length of the longest prefix that could still have been valid
// (at least 1), which is what gets replaced by one U+FFFD.
size_t strict_sequence(std::string_view s, size_t pos, size_t& subpart) {
  const auto c0 = static_cast<unsigned char>(s[pos]);
  subpart = 1;
  if (c0 < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    need = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    need = 3;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    need = 4;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (pos + k >= s.size()) return 0;
    const auto c = static_cast<unsigned char>(s[pos + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : is_cont(c);
    if (!ok) return 0;
    subpart = k + 1;
  }
  return need;
}

std::array<uint32_t, 256> make_byte_to_cp() {
  std::array<uint32_t, 256> t{};
  uint32_t n = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    t[b] = self ? b : 256 + n++;
  }
  return t;
}

}  // namespace

bool decode_lenient(std::string_view s, size_t& pos, uint32_t& cp) {
  const auto c0 = static_cast<unsigned char>(s[pos]);
  if (!(c0 & 0x80)) {
    cp = c0;
    pos += 1;
    return true;
  }
  if (!(c0 & 0x40)) return false;
  size_t n;
  uint32_t v;
  if (!(c0 & 0x20)) {
    n = 2;
    v = c0 & 0x1F;
  } else if (!(c0 & 0x10)) {
    n = 3;
    v = c0 & 0x0F;
  } else if (!(c0 & 0x08)) {
    n = 4;
    v = c0 & 0x07;
  } else {
    return false;
  }
  // llama.cpp: `offset + (n-1) >= size` fails, i.e. all n bytes must be present.
  if (pos + n > s.size()) return false;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[pos + k]);
    if (!is_cont(c)) return false;
    v = (v << 6) | (c & 0x3F);
  }
  cp = v;
  pos += n;
  return true;
}

bool append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    return false;
  }
  return true;
}

bool is_llama_normalized(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    if (c0 < 0x80) {
      ++i;
      continue;
    }
    // Like strict UTF-8, except that surrogates (ED A0..BF xx) are fine: llama.cpp decodes and
    // re-encodes them to the same bytes.
    if (c0 >= 0xC2 && c0 <= 0xDF) {
      if (i + 1 >= n || !is_cont(static_cast<unsigned char>(s[i + 1]))) return false;
      i += 2;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
      if (i + 2 >= n) return false;
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (!is_cont(c1) || !is_cont(static_cast<unsigned char>(s[i + 2]))) return false;
      if (c0 == 0xE0 && c1 < 0xA0) return false;
      i += 3;
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
      if (i + 3 >= n) return false;
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (!is_cont(c1) || !is_cont(static_cast<unsigned char>(s[i + 2])) ||
          !is_cont(static_cast<unsigned char>(s[i + 3])))
        return false;
      if (c0 == 0xF0 && c1 < 0x90) return false;
      if (c0 == 0xF4 && c1 > 0x8F) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

std::string normalize_llama(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    uint32_t cp = 0;
    if (!decode_lenient(s, pos, cp)) {
      cp = kReplacement;
      pos = start + 1;
    }
    if (!append_utf8(out, cp)) {
      throw Error(ErrorKind::Runtime,
                  fmt::format("text: invalid UTF-8 at byte {}: the sequence decodes to U+{:X}, "
                              "above U+10FFFF",
                              start, cp));
    }
  }
  return out;
}

bool is_llama_whitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

const std::array<uint32_t, 256>& byte_to_cp() {
  static const std::array<uint32_t, 256> table = make_byte_to_cp();
  return table;
}

int cp_to_byte(uint32_t cp) {
  if (cp < 0x100) {
    const bool self = (cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE);
    return self ? static_cast<int>(cp) : -1;
  }
  if (cp < 0x100 + 68) {
    static const std::array<int16_t, 68> inverse = [] {
      std::array<int16_t, 68> t{};
      const auto& fwd = byte_to_cp();
      for (int b = 0; b < 256; ++b)
        if (fwd[b] >= 0x100) t[fwd[b] - 0x100] = static_cast<int16_t>(b);
      return t;
    }();
    return inverse[cp - 0x100];
  }
  return -1;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0, sub = 0;
  while (i < s.size()) {
    const size_t len = strict_sequence(s, i, sub);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, sub = 0;
  while (i < s.size()) {
    const size_t len = strict_sequence(s, i, sub);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i += sub;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace bloomz::unicode
