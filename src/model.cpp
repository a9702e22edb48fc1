// Binds the BLOOM tensors of a GGUF file through one manifest and validates each once: name,
// shape (from the hyperparameters, never from a model size), type, and for 1-D tensors F32.
// HF -> GGUF names: word_embeddings -> token_embd, word_embeddings_layernorm -> token_embd_norm,
// h.i.input_layernorm -> blk.i.attn_norm, h.i.self_attention.query_key_value -> blk.i.attn_qkv,
// h.i.self_attention.dense -> blk.i.attn_output, h.i.post_attention_layernorm -> blk.i.ffn_norm,
// h.i.mlp.dense_h_to_4h -> blk.i.ffn_up, h.i.mlp.dense_4h_to_h -> blk.i.ffn_down, ln_f -> output_norm.
#include "bloomz/model.hpp"

#include <fmt/format.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

#include "bloomz/error.hpp"
#include "bloomz/parallel.hpp"
#include "kernels/kernels.hpp"
#include "kernels/repack.hpp"

namespace bloomz {

namespace {

std::string shape_string(const GgufTensorInfo& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += fmt::format("{}{}", d ? ", " : "", t.ne[d]);
  return s + "]";
}

class Binder {
 public:
  Binder(const GgufFile& g) : g_(g) {}

  const GgufTensorInfo* find(const std::string& name, bool required) {
    const GgufTensorInfo* t = g_.find_tensor(name);
    if (t == nullptr && required) {
      throw Error(ErrorKind::Format, fmt::format("{}: required tensor {} is missing", g_.path(), name));
    }
    if (t != nullptr) used_.insert(t->name);
    return t;
  }

  // A 1-D F32 vector of n elements.
  const float* vector(const std::string& name, int64_t n) {
    const GgufTensorInfo* t = find(name, true);
    if (t->n_dims != 1 || t->ne[0] != n) {
      fail(*t, fmt::format("expected shape [{}], got {}", n, shape_string(*t)));
    }
    if (t->type != GgmlType::F32) fail(*t, fmt::format("expected type f32, got {}", type_name(t->type)));
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) fail(*t, "data is not 4-byte aligned");
    return reinterpret_cast<const float*>(t->data);
  }

  // A 2-D matrix of `rows` rows of `cols` elements, any type bloomz has kernels for.
  TensorView matrix(const GgufTensorInfo* t, int64_t cols, int64_t rows) {
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows) {
      fail(*t, fmt::format("expected shape [{}, {}], got {}", cols, rows, shape_string(*t)));
    }
    const TypeInfo info = type_info(t->type);
    if (!info.supported) fail(*t, fmt::format("type {} is not supported", info.name));
    TensorView v;
    v.type = t->type;
    v.cols = cols;
    v.rows = rows;
    v.row_bytes = row_size(t->type, cols);
    v.data = t->data;
    return v;
  }
  TensorView matrix(const std::string& name, int64_t cols, int64_t rows) {
    return matrix(find(name, true), cols, rows);
  }

  void check_all_used() const {
    for (const GgufTensorInfo& t : g_.tensors()) {
      if (!used_.count(t.name)) {
        throw Error(ErrorKind::Format, fmt::format("{}: unexpected tensor {} (at byte offset {}) for this BLOOM configuration", g_.path(), t.name, t.info_offset));
      }
    }
  }

  [[noreturn]] void fail(const GgufTensorInfo& t, const std::string& what) const {
    throw Error(ErrorKind::Config, fmt::format("{}: tensor {}: {} (at byte offset {})", g_.path(), t.name, what, t.info_offset));
  }

 private:
  const GgufFile& g_;
  std::unordered_set<std::string_view> used_;
};

}  // namespace

std::unique_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = MappedFile::open(path, options.use_mmap, options.lock);
  m->gguf_ = GgufFile::parse(m->file_.bytes(), path);
  m->config_ = BloomConfig::from_gguf(m->gguf_);
  const BloomConfig& c = m->config_;
  const int64_t E = c.n_embd, F = c.n_ff, V = c.n_vocab;

  Binder b(m->gguf_);
  m->token_embd = b.matrix("token_embd.weight", E, V);
  m->token_embd_norm_w = b.vector("token_embd_norm.weight", E);
  m->token_embd_norm_b = b.vector("token_embd_norm.bias", E);
  m->layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& l = m->layers[static_cast<size_t>(i)];
    const std::string p = fmt::format("blk.{}.", i);
    l.attn_norm_w = b.vector(p + "attn_norm.weight", E);
    l.attn_norm_b = b.vector(p + "attn_norm.bias", E);
    l.attn_qkv = b.matrix(p + "attn_qkv.weight", E, 3 * E);
    l.attn_qkv_b = b.vector(p + "attn_qkv.bias", 3 * E);
    l.attn_output = b.matrix(p + "attn_output.weight", E, E);
    l.attn_output_b = b.vector(p + "attn_output.bias", E);
    l.ffn_norm_w = b.vector(p + "ffn_norm.weight", E);
    l.ffn_norm_b = b.vector(p + "ffn_norm.bias", E);
    l.ffn_up = b.matrix(p + "ffn_up.weight", E, F);
    l.ffn_up_b = b.vector(p + "ffn_up.bias", F);
    l.ffn_down = b.matrix(p + "ffn_down.weight", F, E);
    l.ffn_down_b = b.vector(p + "ffn_down.bias", E);
  }
  m->output_norm_w = b.vector("output_norm.weight", E);
  m->output_norm_b = b.vector("output_norm.bias", E);
  // Older converters write a separate output.weight; newer ones tie the head to token_embd
  // (llama.cpp: TENSOR_NOT_REQUIRED, then TENSOR_DUPLICATED).
  if (const GgufTensorInfo* out = b.find("output.weight", false)) {
    m->output = b.matrix(out, E, V);
    m->tied_output = false;
  } else {
    m->output = m->token_embd;
    m->tied_output = true;
  }
  b.check_all_used();
  if (options.repack) m->repack_matrices();
  if (options.prefault && m->file_.is_mapped()) m->start_prefault();
  return m;
}

void Model::start_prefault() {
  std::vector<const TensorView*> order;
  for (const LayerWeights& l : layers)
    for (const TensorView* t : {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down}) order.push_back(t);
  order.push_back(&output);
  std::erase_if(order, [](const TensorView* t) { return t->x8; });  // repacked: not file pages
  prefault_ = std::jthread([order = std::move(order)](std::stop_token stop) {
    constexpr int64_t kChunk = int64_t{2} << 20;  // stop requests are seen every 2 MiB
    unsigned sink = 0;
    for (const TensorView* t : order) {
      const auto* p = reinterpret_cast<const volatile unsigned char*>(t->data);
      const int64_t bytes = t->rows * t->row_bytes;
      for (int64_t chunk = 0; chunk < bytes; chunk += kChunk) {
        if (stop.stop_requested()) return;
        const int64_t end = std::min(bytes, chunk + kChunk);
        for (int64_t off = chunk; off < end; off += 4096) sink += p[off];
      }
      if (bytes > 0) sink += p[bytes - 1];
    }
    (void)sink;
  });
}

const HeadScreen* Model::head_screen() const {
  std::call_once(screen_once_, [this] {
    stop_prefault();  // the build reads the whole head over every thread
    // Over a mapping it can release the head's pages; a heap copy (--no-mmap) or locked pages
    // (--mlock) would keep them, and the screen would add half the head to the process.
    if (file_.is_mapped() && !file_.is_locked()) screen_ = HeadScreen::build(output, file_);
    screen_built_.store(true, std::memory_order_release);
  });
  return screen_.get();
}

void Model::stop_prefault() const {
  prefault_.request_stop();
}

void Model::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

// Q4_0 / Q8_0 / Q4_K / Q6_K layer matrices and the head go to one arena in the x8 layout when the active
// kernel table can use it. The arena asks for transparent huge pages (fewer faults while filling
// it, fewer TLB misses while streaming it); the file pages the matrices came from are released, so
// resident memory does not count them twice.
void Model::repack_matrices() {
  const kernels::KernelTable* kt = kernels::table_for(active_isa());
  if (!kt) return;
  std::vector<TensorView*> targets;
  auto consider = [&](TensorView& v) {
    kernels::WType wt{};
    if (v.x8 || !kernels::wtype_of(v.type, wt) || !kt->dot_x8[static_cast<int>(wt)]) return;
    if (!kernels::x8_supported(v.type, v.cols, v.rows, v.row_bytes)) return;
    targets.push_back(&v);
  };
  for (LayerWeights& l : layers) {
    for (TensorView* t : {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down}) consider(*t);
  }
  // A tied head is the embedding matrix: repacked once, both views follow (the embedding lookup
  // reads a row through its 8-row group).
  consider(tied_output ? token_embd : output);
  if (targets.empty()) return;

  constexpr size_t kHuge = size_t{2} << 20;
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const TensorView* t : targets) {
    offsets.push_back(total);
    total += (static_cast<size_t>(t->rows * t->row_bytes) + 63) / 64 * 64;
  }
  const size_t alloc = (total + kHuge - 1) / kHuge * kHuge;
  auto* arena = static_cast<std::byte*>(std::aligned_alloc(kHuge, alloc));
  if (!arena) throw Error(ErrorKind::Runtime, fmt::format("{}: out of memory repacking {} bytes of weights", file_.path(), total));
  repacked_.reset(arena);
#if defined(MADV_HUGEPAGE)
  ::madvise(arena, alloc, MADV_HUGEPAGE);
#endif
  // Chunks of 8-row groups, repacked by the team; after each chunk the file pages it came from are
  // released, so the peak resident size stays near the file size plus one chunk.
  constexpr int64_t kChunkBytes = int64_t{8} << 20;
  for (size_t i = 0; i < targets.size(); ++i) {
    TensorView& t = *targets[i];
    const int64_t group_bytes = 8 * t.row_bytes;
    const int64_t groups = t.rows / 8;
    const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / group_bytes);
    std::byte* dst = arena + offsets[i];
    for (int64_t g0 = 0; g0 < groups; g0 += per_chunk) {
      const int64_t g1 = std::min(groups, g0 + per_chunk);
      parallel_for(g0, g1, [&](int64_t g) { kernels::repack_x8(t.type, t.data + g * group_bytes, t.row_bytes, dst + g * group_bytes); });
      file_.release(static_cast<size_t>(t.data + g0 * group_bytes - file_.data()), static_cast<size_t>((g1 - g0) * group_bytes));
    }
    t.data = dst;
    t.x8 = true;
  }
  if (tied_output) output = token_embd;
  repacked_bytes_ = static_cast<int64_t>(total);
}

int64_t Model::weight_bytes_per_token() const {
  int64_t bytes = output.rows * output.row_bytes;
  for (const LayerWeights& l : layers) {
    for (const TensorView* t : {&l.attn_qkv, &l.attn_output, &l.ffn_up, &l.ffn_down}) bytes += t->rows * t->row_bytes;
  }
  return bytes;
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const GgufTensorInfo& t : gguf_.tensors()) n += t.n_elements;
  return n;
}

}  // namespace bloomz
