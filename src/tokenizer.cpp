#include "bloomz/tokenizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "pretokenize.hpp"
#include "unicode.hpp"

namespace bloomz {

namespace {

// A fast 64-bit hash for short strings (token texts average ~6 bytes).
inline uint64_t hash_bytes(const char* p, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (n * kMul);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w ^ (uint64_t{n} << 59)) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

// Fibonacci hashing of a (left id, right id) key; the caller keeps the top bits.
inline uint64_t hash_pair(uint64_t key) { return (key ^ (key >> 29)) * 0x9E3779B97F4A7C15ull; }

size_t pow2_at_least(size_t n) {
  size_t p = 16;
  while (p < n) p <<= 1;
  return p;
}

bool is_special_type(TokenType t) {
  return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
}

}  // namespace

struct Tokenizer::Impl {
  int32_t n_vocab = 0;
  // Interned strings: ids [0, n_vocab) are the vocabulary, ids >= n_vocab are strings that
  // occur in merges but are not tokens ("virtual" ids; they can take part in merges but map
  // to no token, exactly as llama.cpp's string-keyed merge table behaves).
  HugeVector<char> arena;
  struct Entry {
    uint32_t off, len;
  };
  HugeVector<Entry> entries;  // by id
  struct Slot {
    uint32_t h;  // low 32 bits of the string's hash (also its home position)
    int32_t id;  // -1 = empty
  };
  HugeVector<Slot> slots;  // open addressing, linear probing
  size_t slot_mask = 0;
  size_t n_interned = 0;

  struct MergeSlot {
    uint64_t key = ~uint64_t{0};  // (left id << 32) | right id
    uint32_t rank = 0;
    int32_t result = -1;
  };
  HugeVector<MergeSlot> merge_slots;
  size_t merge_mask = 0;
  int merge_shift = 60;  // 64 - log2(table size)
  size_t n_merges = 0;

  std::array<int32_t, 256> byte_ids{};  // id of the one-character string of each raw byte
  HugeVector<TokenType> types;
  std::vector<int32_t> special_ids;  // CONTROL/USER_DEFINED/UNKNOWN, longest text first
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false;

  std::string_view text(int32_t id) const {
    const Entry& e = entries[static_cast<size_t>(id)];
    return {arena.data() + e.off, e.len};
  }
  bool same(const Slot& slot, uint32_t h, std::string_view s) const {
    if (slot.h != h) return false;
    const Entry& e = entries[static_cast<size_t>(slot.id)];
    return e.len == s.size() && std::memcmp(arena.data() + e.off, s.data(), s.size()) == 0;
  }

  static uint32_t hash32(std::string_view s) {
    return static_cast<uint32_t>(hash_bytes(s.data(), s.size()));
  }

  int32_t find(std::string_view s) const { return find_hashed(s, hash32(s)); }

  int32_t find_hashed(std::string_view s, uint32_t h) const {
    for (size_t i = h & slot_mask;; i = (i + 1) & slot_mask) {
      const Slot& slot = slots[i];
      if (slot.id < 0) return -1;
      if (same(slot, h, s)) return slot.id;
    }
  }

  void grow_slots() {
    HugeVector<Slot> fresh((slot_mask + 1) * 2, Slot{0, -1});
    const size_t mask = fresh.size() - 1;
    for (const Slot& slot : slots) {
      if (slot.id < 0) continue;
      size_t i = slot.h & mask;
      while (fresh[i].id >= 0) i = (i + 1) & mask;
      fresh[i] = slot;
    }
    slots = std::move(fresh);
    slot_mask = mask;
  }

  // Places `id` (whose text is already in the arena) in the table. When another id has the same
  // text, `replace` decides who wins (llama.cpp: the last token with a text wins).
  void place(int32_t id, uint32_t h, bool replace) {
    const std::string_view s = text(id);
    for (size_t i = h & slot_mask;; i = (i + 1) & slot_mask) {
      Slot& slot = slots[i];
      if (slot.id < 0) {
        slot = Slot{h, id};
        ++n_interned;
        return;
      }
      if (same(slot, h, s)) {
        if (replace) slot.id = id;
        return;
      }
    }
  }

  int32_t add_string(std::string_view s) {
    const auto id = static_cast<int32_t>(entries.size());
    entries.push_back({static_cast<uint32_t>(arena.size()), static_cast<uint32_t>(s.size())});
    arena.insert(arena.end(), s.begin(), s.end());
    return id;
  }

  // Id of s, interning it as a virtual string when it is not known yet.
  int32_t intern_hashed(std::string_view s, uint32_t h) {
    int32_t id = find_hashed(s, h);
    if (id >= 0) return id;
    if ((n_interned + 1) * 2 > slot_mask + 1) grow_slots();
    id = add_string(s);
    place(id, h, false);
    return id;
  }

  // intern_hashed for a batch, with the table, entry and text reads prefetched in stages so
  // that the cache misses of the batch overlap (this is what keeps a 250k-merge load fast).
  void intern_batch(const std::string_view* strs, const uint32_t* hs, size_t n, int32_t* ids) {
    for (size_t k = 0; k < n; ++k) __builtin_prefetch(&slots[hs[k] & slot_mask]);
    int32_t cand[256];
    for (size_t k = 0; k < n; ++k) {
      const Slot& slot = slots[hs[k] & slot_mask];
      cand[k] = slot.id >= 0 && slot.h == hs[k] ? slot.id : -1;
      if (cand[k] >= 0) __builtin_prefetch(&entries[static_cast<size_t>(cand[k])]);
    }
    for (size_t k = 0; k < n; ++k)
      if (cand[k] >= 0) __builtin_prefetch(arena.data() + entries[static_cast<size_t>(cand[k])].off);
    for (size_t k = 0; k < n; ++k) ids[k] = intern_hashed(strs[k], hs[k]);
  }

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  const MergeSlot* find_merge(int32_t left, int32_t right) const {
    const uint64_t key = pair_key(left, right);
    for (size_t i = hash_pair(key) >> merge_shift;; i = (i + 1) & merge_mask) {
      const MergeSlot& s = merge_slots[i];
      if (s.key == key) return &s;
      if (s.result < 0) return nullptr;
    }
  }

  // First occurrence wins (llama.cpp's bpe_ranks.emplace).
  void add_merge(uint64_t key, size_t home, uint32_t rank, int32_t result) {
    for (size_t i = home;; i = (i + 1) & merge_mask) {
      MergeSlot& s = merge_slots[i];
      if (s.result < 0) {
        s.key = key;
        s.rank = rank;
        s.result = result;
        ++n_merges;
        return;
      }
      if (s.key == key) return;
    }
  }

  // ---- encoding ----
  struct Work {
    std::vector<int32_t> id, prev, next, len;
    struct Entry {
      uint64_t key;  // (rank << 32) | left: the smallest pops first
      int32_t right, lid, rid, result;
    };
    std::vector<Entry> heap;
    std::vector<std::string_view> pieces;
    std::string scratch;
    // Piece -> ids cache for one encode() call (BPE of a piece depends on its bytes only, so
    // this is exact). Keys view the caller's text or a normalized copy kept in `keep`.
    struct CacheSpan {
      uint32_t off, len;
    };
    std::unordered_map<std::string_view, CacheSpan> cache;
    std::vector<int32_t> cache_ids;
    std::vector<std::unique_ptr<std::string>> keep;
  };

  void emit(std::string_view bytes, int32_t id, std::vector<int32_t>& out, Work& w) const {
    if (id >= 0 && id < n_vocab) {
      out.push_back(id);
      return;
    }
    // llama.cpp: a symbol that is not a token is looked up byte by byte of its byte-level
    // text; bytes that are not one-byte tokens are dropped.
    w.scratch.clear();
    for (char c : bytes) unicode::append_utf8(w.scratch, unicode::byte_to_cp()[static_cast<unsigned char>(c)]);
    for (char c : w.scratch) {
      const int32_t t = find(std::string_view(&c, 1));
      if (t >= 0 && t < n_vocab) out.push_back(t);
    }
  }

  void push_pair(Work& w, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const int32_t lid = w.id[static_cast<size_t>(left)], rid = w.id[static_cast<size_t>(right)];
    if (lid < 0 || rid < 0) return;
    const MergeSlot* m = find_merge(lid, rid);
    if (m == nullptr) return;
    w.heap.push_back(
        {(uint64_t{m->rank} << 32) | static_cast<uint32_t>(left), right, lid, rid, m->result});
    std::push_heap(w.heap.begin(), w.heap.end(),
                   [](const Work::Entry& a, const Work::Entry& b) { return a.key > b.key; });
  }

  // Short pieces: the same merge order (lowest rank, then leftmost, among the current adjacent
  // pairs) found by a linear scan over a compact array instead of a heap.
  static constexpr int32_t kShortPiece = 16;

  void bpe_short(std::string_view piece, std::vector<int32_t>& out, Work& w) const {
    const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
    const auto n = static_cast<size_t>(piece.size());
    int32_t id[kShortPiece], res[kShortPiece];
    uint32_t start[kShortPiece + 1], rank[kShortPiece];
    constexpr uint32_t kNone = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
      id[i] = byte_ids[p[i]];
      start[i] = static_cast<uint32_t>(i);
    }
    start[n] = static_cast<uint32_t>(n);
    const auto pair_rank = [&](size_t i) {
      rank[i] = kNone;
      if (id[i] < 0 || id[i + 1] < 0) return;
      const MergeSlot* m = find_merge(id[i], id[i + 1]);
      if (m != nullptr) {
        rank[i] = m->rank;
        res[i] = m->result;
      }
    };
    size_t count = n;
    // First pass over all adjacent pairs: prefetch their table slots, then look them up, so that
    // the cache misses overlap.
    for (size_t i = 0; i + 1 < count; ++i) {
      if (id[i] >= 0 && id[i + 1] >= 0)
        __builtin_prefetch(&merge_slots[hash_pair(pair_key(id[i], id[i + 1])) >> merge_shift]);
    }
    for (size_t i = 0; i + 1 < count; ++i) pair_rank(i);
    while (count > 1) {
      uint32_t best = kNone;
      size_t bi = 0;
      for (size_t i = 0; i + 1 < count; ++i) {
        if (rank[i] < best) {
          best = rank[i];
          bi = i;
        }
      }
      if (best == kNone) break;
      id[bi] = res[bi];
      // Remove symbol bi+1.
      for (size_t k = bi + 1; k + 1 < count; ++k) {
        id[k] = id[k + 1];
        start[k] = start[k + 1];
        rank[k] = rank[k + 1];
        res[k] = res[k + 1];
      }
      start[count - 1] = start[count];
      --count;
      if (bi + 1 < count) pair_rank(bi);
      else rank[bi] = kNone;
      if (bi > 0) pair_rank(bi - 1);
    }
    for (size_t i = 0; i < count; ++i) emit(piece.substr(start[i], start[i + 1] - start[i]), id[i], out, w);
  }

  void bpe(std::string_view piece, std::vector<int32_t>& out, Work& w) const {
    const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
    const auto n = static_cast<int32_t>(piece.size());
    if (n == 1) {
      emit(piece, byte_ids[p[0]], out, w);
      return;
    }
    if (n <= kShortPiece) {
      bpe_short(piece, out, w);
      return;
    }
    w.id.resize(static_cast<size_t>(n));
    w.prev.resize(static_cast<size_t>(n));
    w.next.resize(static_cast<size_t>(n));
    w.len.resize(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      w.id[u] = byte_ids[p[i]];
      w.prev[u] = i - 1;
      w.next[u] = i + 1 < n ? i + 1 : -1;
      w.len[u] = 1;
    }
    w.heap.clear();
    for (int32_t i = 1; i < n; ++i) {
      const int32_t a = w.id[static_cast<size_t>(i - 1)], b = w.id[static_cast<size_t>(i)];
      if (a >= 0 && b >= 0) __builtin_prefetch(&merge_slots[hash_pair(pair_key(a, b)) >> merge_shift]);
    }
    for (int32_t i = 1; i < n; ++i) push_pair(w, i - 1, i);
    const auto cmp = [](const Work::Entry& a, const Work::Entry& b) { return a.key > b.key; };
    while (!w.heap.empty()) {
      std::pop_heap(w.heap.begin(), w.heap.end(), cmp);
      const Work::Entry e = w.heap.back();
      w.heap.pop_back();
      const auto left = static_cast<int32_t>(e.key & 0xFFFFFFFFu);
      const auto l = static_cast<size_t>(left), r = static_cast<size_t>(e.right);
      // Stale unless both symbols still exist unchanged (llama.cpp compares their texts).
      if (w.len[l] == 0 || w.len[r] == 0 || w.id[l] != e.lid || w.id[r] != e.rid) continue;
      w.id[l] = e.result;
      w.len[l] += w.len[r];
      w.len[r] = 0;
      w.next[l] = w.next[r];
      if (w.next[r] >= 0) w.prev[static_cast<size_t>(w.next[r])] = left;
      push_pair(w, w.prev[l], left);
      push_pair(w, left, w.next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w.next[static_cast<size_t>(i)]) {
      const auto u = static_cast<size_t>(i);
      emit(piece.substr(u, static_cast<size_t>(w.len[u])), w.id[u], out, w);
    }
  }

  // Texts at least this long use the piece cache (it does not pay for a sentence).
  static constexpr size_t kCacheMinText = 2048;

  void encode_raw(std::string_view text, std::vector<int32_t>& out, Work& w) const {
    if (!unicode::is_llama_normalized(text)) {
      w.keep.push_back(std::make_unique<std::string>(unicode::normalize_llama(text)));
      text = *w.keep.back();
    }
    w.pieces.clear();
    pretokenize_bloom(text, w.pieces);
    if (text.size() < kCacheMinText) {
      for (std::string_view piece : w.pieces) bpe(piece, out, w);
      return;
    }
    if (w.cache.empty()) w.cache.reserve(w.pieces.size() / 2 + 16);
    for (std::string_view piece : w.pieces) {
      if (piece.size() < 3) {
        bpe(piece, out, w);
        continue;
      }
      const auto it = w.cache.find(piece);
      if (it != w.cache.end()) {
        const auto* first = w.cache_ids.data() + it->second.off;
        out.insert(out.end(), first, first + it->second.len);
        continue;
      }
      const size_t before = out.size();
      bpe(piece, out, w);
      const auto off = static_cast<uint32_t>(w.cache_ids.size());
      w.cache_ids.insert(w.cache_ids.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
      w.cache.emplace(piece, Work::CacheSpan{off, static_cast<uint32_t>(out.size() - before)});
    }
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_vocab(const VocabData& data) {
  Tokenizer tok;
  Impl& m = *tok.impl_;
  const size_t n = data.tokens.size();
  if (n == 0) throw Error(ErrorKind::Format, "tokenizer.ggml.tokens: the vocabulary is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2))
    throw Error(ErrorKind::Format, fmt::format("tokenizer.ggml.tokens: {} tokens is too many", n));
  if (!data.token_types.empty() && data.token_types.size() != n)
    throw Error(ErrorKind::Format,
                fmt::format("tokenizer.ggml.token_type: {} entries for {} tokens",
                            data.token_types.size(), n));
  m.n_vocab = static_cast<int32_t>(n);

  size_t total = 0;
  for (std::string_view t : data.tokens) total += t.size();
  if (total > std::numeric_limits<uint32_t>::max() / 4)
    throw Error(ErrorKind::Format, "tokenizer.ggml.tokens: the token texts are too large");
  m.arena.reserve(total + total / 8 + 4096);
  m.entries.reserve(n + data.merges.size() / 8 + 512);
  m.types.resize(n, TokenType::Normal);
  m.slots.assign(pow2_at_least(2 * (n + 256)), Impl::Slot{0, -1});
  m.slot_mask = m.slots.size() - 1;

  constexpr size_t kBatch = 64;
  uint32_t hs[3 * kBatch];
  std::string empty_names;
  for (size_t base = 0; base < n; base += kBatch) {
    const size_t cnt = std::min(kBatch, n - base);
    for (size_t k = 0; k < cnt; ++k) {
      const size_t i = base + k;
      std::string_view t = data.tokens[i];
      if (t.empty()) {  // llama.cpp renames empty tokens
        empty_names = fmt::format("[EMPTY_{}]", i);
        t = empty_names;
      }
      m.add_string(t);
      hs[k] = Impl::hash32(t);
      __builtin_prefetch(&m.slots[hs[k] & m.slot_mask]);
    }
    for (size_t k = 0; k < cnt; ++k) m.place(static_cast<int32_t>(base + k), hs[k], /*replace=*/true);
  }
  if (!data.token_types.empty()) {
    for (size_t i = 0; i < n; ++i) {
      const int32_t ty = data.token_types[i];
      if (ty < 0 || ty > 6)
        throw Error(ErrorKind::Format,
                    fmt::format("tokenizer.ggml.token_type[{}]: invalid token type {}", i, ty));
      m.types[i] = static_cast<TokenType>(ty);
    }
  }

  // Merges: rank = index. llama.cpp splits at the first space found from index 1. Resolved in
  // batches: 3 string lookups per merge (left, right, left+right), then the pair insert.
  const size_t nm = data.merges.size();
  m.merge_slots.assign(pow2_at_least(2 * nm + 2), Impl::MergeSlot{});
  m.merge_mask = m.merge_slots.size() - 1;
  m.merge_shift = 64 - std::countr_zero(m.merge_slots.size());
  std::string concat;
  std::string_view strs[3 * kBatch];
  int32_t ids[3 * kBatch];
  uint32_t ranks[kBatch];
  for (size_t base = 0; base < nm; base += kBatch) {
    const size_t cnt = std::min(kBatch, nm - base);
    concat.clear();
    size_t used = 0;
    for (size_t k = 0; k < cnt; ++k) {
      const size_t r = base + k;
      const std::string_view mg = data.merges[r];
      const size_t sp = mg.size() > 1 ? mg.find(' ', 1) : std::string_view::npos;
      if (sp == std::string_view::npos)
        throw Error(ErrorKind::Format,
                    fmt::format("tokenizer.ggml.merges[{}]: \"{}\" has no space separating two tokens",
                                r, unicode::sanitize_utf8(mg)));
      const std::string_view a = mg.substr(0, sp), b = mg.substr(sp + 1);
      if (b.empty()) continue;  // can never apply: symbols are never empty
      strs[3 * used] = a;
      strs[3 * used + 1] = b;
      concat.append(a);
      concat.append(b);
      ranks[used] = static_cast<uint32_t>(r);
      ++used;
    }
    // Views into `concat` only once it is complete (it may have reallocated).
    size_t off = 0;
    for (size_t k = 0; k < used; ++k) {
      const size_t len = strs[3 * k].size() + strs[3 * k + 1].size();
      strs[3 * k + 2] = std::string_view(concat).substr(off, len);
      off += len;
    }
    for (size_t k = 0; k < 3 * used; ++k) hs[k] = Impl::hash32(strs[k]);
    m.intern_batch(strs, hs, 3 * used, ids);
    uint64_t keys[kBatch];
    size_t homes[kBatch];
    for (size_t k = 0; k < used; ++k) {
      keys[k] = Impl::pair_key(ids[3 * k], ids[3 * k + 1]);
      homes[k] = hash_pair(keys[k]) >> m.merge_shift;
      __builtin_prefetch(&m.merge_slots[homes[k]]);
    }
    for (size_t k = 0; k < used; ++k) m.add_merge(keys[k], homes[k], ranks[k], ids[3 * k + 2]);
  }

  const auto& b2c = unicode::byte_to_cp();
  std::string one;
  for (int b = 0; b < 256; ++b) {
    one.clear();
    unicode::append_utf8(one, b2c[static_cast<size_t>(b)]);
    m.byte_ids[static_cast<size_t>(b)] = m.find(one);
  }

  const auto check_id = [&](int32_t id, const char* key) {
    if (id < -1 || id >= m.n_vocab)
      throw Error(ErrorKind::Format,
                  fmt::format("{}: token id {} is out of range (vocabulary of {})", key, id, n));
    return id;
  };
  m.bos = check_id(data.bos_id, "tokenizer.ggml.bos_token_id");
  m.eos = check_id(data.eos_id, "tokenizer.ggml.eos_token_id");
  m.unk = check_id(data.unk_id, "tokenizer.ggml.unknown_token_id");
  m.pad = check_id(data.pad_id, "tokenizer.ggml.padding_token_id");
  m.add_bos = data.add_bos;
  m.add_eos = data.add_eos;
  if (m.add_bos && m.bos < 0)
    throw Error(ErrorKind::Format, "tokenizer.ggml.add_bos_token: true but there is no BOS token");
  if (m.add_eos && m.eos < 0)
    throw Error(ErrorKind::Format, "tokenizer.ggml.add_eos_token: true but there is no EOS token");

  for (size_t i = 0; i < n; ++i)
    if (is_special_type(m.types[i])) m.special_ids.push_back(static_cast<int32_t>(i));
  std::stable_sort(m.special_ids.begin(), m.special_ids.end(), [&](int32_t x, int32_t y) {
    return m.entries[static_cast<size_t>(x)].len > m.entries[static_cast<size_t>(y)].len;
  });
  return tok;
}

Tokenizer Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string_view model = gguf.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw Error(ErrorKind::Unsupported,
                fmt::format("tokenizer.ggml.model: \"{}\" is not supported (BLOOM uses \"gpt2\")",
                            model));
  const auto pre = gguf.get_string_opt("tokenizer.ggml.pre");
  if (pre) {
    if (*pre != "bloom" && *pre != "poro-chat" && *pre != "gpt3-finnish")
      throw Error(ErrorKind::Unsupported,
                  fmt::format("tokenizer.ggml.pre: \"{}\" is not supported (expected \"bloom\")",
                              *pre));
  } else {
    const auto arch = gguf.get_string_opt("general.architecture");
    if (!arch || *arch != "bloom")
      throw Error(ErrorKind::Unsupported,
                  "tokenizer.ggml.pre: missing, and general.architecture is not \"bloom\"");
  }
  VocabData data;
  data.tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (gguf.has("tokenizer.ggml.token_type"))
    data.token_types = gguf.get_i32_array("tokenizer.ggml.token_type");
  data.merges = gguf.get_string_array("tokenizer.ggml.merges");
  // llama.cpp's defaults for a "gpt2" vocabulary, then the GGUF keys override them.
  const auto special = [&](const char* key, int32_t fallback) -> int32_t {
    const auto v = gguf.get_u32_opt(key);
    if (!v) return fallback < static_cast<int32_t>(data.tokens.size()) ? fallback : -1;
    if (*v >= data.tokens.size())
      throw Error(ErrorKind::Format, fmt::format("{}: token id {} is out of range (vocabulary of {})",
                                                 key, *v, data.tokens.size()));
    return static_cast<int32_t>(*v);
  };
  data.bos_id = special("tokenizer.ggml.bos_token_id", 11);
  data.eos_id = special("tokenizer.ggml.eos_token_id", 11);
  data.unk_id = special("tokenizer.ggml.unknown_token_id", -1);
  data.pad_id = special("tokenizer.ggml.padding_token_id", -1);
  data.add_bos = gguf.get_bool("tokenizer.ggml.add_bos_token", false);
  data.add_eos = gguf.get_bool("tokenizer.ggml.add_eos_token", false);
  return from_vocab(data);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special,
                                       bool add_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && m.add_bos) out.push_back(m.bos);

  // Special-token partition: fragments are either raw text or a token.
  struct Fragment {
    size_t off, len;
    int32_t token;  // -1 = raw text
  };
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({0, text.size(), -1});
  std::vector<Fragment> next;
  for (int32_t sid : m.special_ids) {
    const TokenType ty = m.types[static_cast<size_t>(sid)];
    if (!parse_special && ty != TokenType::UserDefined) continue;
    const std::string_view st = m.text(sid);
    if (text.find(st) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t off = f.off, len = f.len;
      while (len > 0) {
        const size_t pos = text.substr(off, len).find(st);
        if (pos == std::string_view::npos) break;
        if (pos > 0) next.push_back({off, pos, -1});
        next.push_back({0, 0, sid});
        off += pos + st.size();
        len -= pos + st.size();
      }
      if (len > 0) next.push_back({off, len, -1});
    }
    frags.swap(next);
  }

  Impl::Work w;
  for (const Fragment& f : frags) {
    if (f.token >= 0)
      out.push_back(f.token);
    else
      m.encode_raw(text.substr(f.off, f.len), out, w);
  }
  if (add_special && m.add_eos) out.push_back(m.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= m.n_vocab)
    throw Error(ErrorKind::Usage,
                fmt::format("token id {} is out of range (vocabulary of {})", id, m.n_vocab));
  const TokenType ty = m.types[static_cast<size_t>(id)];
  if (!special && (ty == TokenType::Control || ty == TokenType::Unknown)) return {};
  const std::string_view text = m.text(id);
  if (ty == TokenType::Control || ty == TokenType::UserDefined) return std::string(text);
  if (ty != TokenType::Normal) return {};
  // llama_decode_text: every code point maps back to one byte.
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    uint32_t cp = 0;
    if (!unicode::decode_lenient(text, pos, cp)) {
      cp = unicode::kReplacement;
      pos = start + 1;
    }
    const int b = cp <= 0x10FFFF ? unicode::cp_to_byte(cp) : -1;
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
      continue;
    }
    std::string utf8;
    if (!unicode::append_utf8(utf8, cp)) utf8.assign(text.substr(start, pos - start));
    out += "[UNK_BYTE_0x";
    for (char c : utf8) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    out += text;
    out += ']';
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, special);
  return out;
}

int32_t Tokenizer::n_vocab() const { return impl_->n_vocab; }
size_t Tokenizer::n_merges() const { return impl_->n_merges; }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id == impl_->eos; }
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->n_vocab && is_special_type(impl_->types[static_cast<size_t>(id)]);
}
TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= impl_->n_vocab)
    throw Error(ErrorKind::Usage, fmt::format("token id {} is out of range", id));
  return impl_->types[static_cast<size_t>(id)];
}
std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= impl_->n_vocab)
    throw Error(ErrorKind::Usage, fmt::format("token id {} is out of range", id));
  return impl_->text(id);
}
int32_t Tokenizer::find_token(std::string_view text) const {
  const int32_t id = impl_->find(text);
  return id < impl_->n_vocab ? id : -1;
}

// ---- Utf8Streamer ----

namespace {
// Length of the incomplete-but-still-possible sequence at the end of s (0 if none).
size_t incomplete_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    if (back >= need) return 0;  // complete (or over-long run of continuations)
    if (back >= 2) {
      const auto c1 = static_cast<unsigned char>(s[n - back + 1]);
      if (c1 < lo || c1 > hi) return 0;  // can never become valid
    }
    return back;
  }
  return 0;
}
}  // namespace

std::string Utf8Streamer::push(std::string_view bytes) {
  held_.append(bytes);
  const size_t keep = incomplete_tail(held_);
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string Utf8Streamer::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace bloomz
