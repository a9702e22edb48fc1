// kernel-bench: speed of the matmul kernels on BLOOM-560m's matrix shapes, per weight type and ISA.
//
// For each type x ISA x shape: validate the ISA against the scalar reference on a slice, then
//   T = 1:   GB/s of weights streamed (median of 5 runs), each run followed by a read-bandwidth run
//            (summing a 1 GiB array with the same threads); the ratio is matmul GB/s / read GB/s;
//   T = 512: GFLOP/s (2 * rows * cols * T per matmul), median of 5, same interleaving.
// With --attn-depths: attention of one token over a KV cache of that many positions, BLOOM-560m's
// shape by default (24 layers x 16 heads x 64), every head of a layer in parallel as the forward
// pass runs it; GB/s of K and V read (median of 5), beside the read bandwidth; --attn-kv f16 q8_0
// for the cache types.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bloomz/cpu_features.hpp"
#include "bloomz/error.hpp"
#include "bloomz/fp16.hpp"
#include "bloomz/matmul.hpp"
#include "bloomz/parallel.hpp"
#include "kernels/kernels.hpp"
#include "kernels/repack.hpp"

namespace {

using namespace bloomz;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
// CPU time of all threads: on a machine shared with other busy processes, bytes per CPU-second
// still tell kernels apart where wall-clock GB/s only measure the neighbours (at -t 1 it is the
// kernel's own rate; with more threads it includes barrier spinning).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

struct Shape {
  int64_t cols, rows;  // ne0 x ne1
};

// Random valid weights: random quant bytes with realistic fp16 scales, or small random floats.
std::vector<std::byte> make_weights(GgmlType t, const Shape& s, int64_t& row_bytes) {
  kernels::WType w{};
  kernels::wtype_of(t, w);
  const int64_t bs = kernels::w_block_size(w), bb = kernels::w_block_bytes(w);
  row_bytes = s.cols / bs * bb;
  std::vector<std::byte> buf(static_cast<size_t>(row_bytes * s.rows));
  Rng rng{0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(t)};
  const size_t words = buf.size() / 8;
  for (size_t i = 0; i < words; ++i) {
    const uint64_t v = rng.next();
    std::memcpy(buf.data() + 8 * i, &v, 8);
  }
  std::vector<int> offs;
  switch (t) {
    case GgmlType::F32: {
      auto* f = reinterpret_cast<float*>(buf.data());
      for (size_t i = 0; i < buf.size() / 4; ++i) f[i] = static_cast<float>(static_cast<int>(rng.next() % 2001) - 1000) * 1e-4f;
      return buf;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      auto* h = reinterpret_cast<uint16_t*>(buf.data());
      for (size_t i = 0; i < buf.size() / 2; ++i) {
        const float v = static_cast<float>(static_cast<int>(rng.next() % 2001) - 1000) * 1e-4f;
        h[i] = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      }
      return buf;
    }
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: offs = {0}; break;
    case GgmlType::Q2_K: offs = {80, 82}; break;
    case GgmlType::Q3_K: offs = {108}; break;
    case GgmlType::Q6_K: offs = {208}; break;
    default: offs = {0, 2}; break;
  }
  const uint16_t scales[4] = {fp32_to_fp16(0.002f), fp32_to_fp16(0.0031f), fp32_to_fp16(-0.0017f), fp32_to_fp16(0.0009f)};
  const int64_t n_blocks = static_cast<int64_t>(buf.size()) / bb;
  for (int64_t b = 0; b < n_blocks; ++b)
    for (int off : offs) std::memcpy(buf.data() + b * bb + off, &scales[(b + off) & 3], 2);
  return buf;
}

// Read bandwidth: sum a large array of u64 with the current threads, GB/s.
double read_bandwidth(const std::vector<uint64_t>& big) {
  const int nt = num_threads();
  std::vector<uint64_t> partial(static_cast<size_t>(nt) * 8, 0);
  const int64_t n = static_cast<int64_t>(big.size());
  const auto t0 = Clock::now();
  parallel_for(0, nt, [&](int64_t k) {
    const int64_t b = n * k / nt, e = n * (k + 1) / nt;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = b;
    for (; i + 4 <= e; i += 4) s0 += big[i], s1 += big[i + 1], s2 += big[i + 2], s3 += big[i + 3];
    for (; i < e; ++i) s0 += big[i];
    partial[static_cast<size_t>(k) * 8] = s0 + s1 + s2 + s3;
  });
  const double dt = seconds_since(t0);
  uint64_t total = 0;
  for (uint64_t v : partial) total += v;
  if (total == 42) std::fputs("", stderr);  // keep the sum alive
  return static_cast<double>(big.size() * 8) / dt / 1e9;
}

// The 1-minute load average (Linux), to judge how much other processes disturbed a run.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "n/a";
  char buf[64] = {0};
  const size_t got = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, got);
  return s.substr(0, s.find(' '));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Validate an ISA against the reference on the first rows, T = 5; returns the worst error relative
// to the largest |reference| output.
double validate(const TensorView& w, Isa isa, const std::vector<float>& x) {
  TensorView slice = w;
  slice.rows = std::min<int64_t>(w.rows, 96);
  const int64_t T = 5;
  std::vector<float> yr(static_cast<size_t>(T * slice.rows)), yi(yr.size());
  MatmulWorkspace ws;
  matmul(slice, x.data(), T, yr.data(), ws, Isa::Ref);
  matmul(slice, x.data(), T, yi.data(), ws, isa);
  double maxref = 0, worst = 0;
  for (float v : yr) maxref = std::max(maxref, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < yr.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(yr[i]) - yi[i]));
  return maxref > 0 ? worst / maxref : worst;
}

struct AttnShape {
  int64_t layers = 24, heads = 16, d = 64;
};

// One token's attention over every layer and head of a cache of n_kv positions (head-major, as the
// session keeps it), with the kernel table of `isa`: GB/s of K and V streamed, beside the read
// bandwidth; validated on one head against the reference first.
bool bench_attention(Isa isa, const std::string& kv_type, const AttnShape& sh, int64_t n_kv, int reps, double min_run_s,
                     const std::vector<uint64_t>& big) {
  const kernels::KernelTable* kt = kernels::table_for(isa);
  if (!kt) return true;
  const bool q8 = kv_type == "q8_0";
  const kernels::AttnFn fn16 = kt->attn_f16 ? kt->attn_f16 : kernels::table_ref().attn_f16;
  const kernels::AttnQ8Fn fn8 = kt->attn_q8_0 ? kt->attn_q8_0 : kernels::table_ref().attn_q8_0;
  const int64_t heads = sh.layers * sh.heads;
  const int64_t row_bytes = q8 ? sh.d / 32 * 34 : 2 * sh.d;
  std::vector<std::byte> k(static_cast<size_t>(heads * n_kv * row_bytes)), v(k.size());
  Rng rng{777};
  std::vector<float> row(static_cast<size_t>(sh.d));
  for (int64_t r = 0; r < heads * n_kv; ++r) {
    for (auto* cache : {&k, &v}) {
      for (auto& x : row) x = static_cast<float>(static_cast<int64_t>(rng.next() % 2001) - 1000) * 1e-3f;
      std::byte* dst = cache->data() + r * row_bytes;
      if (q8) {
        kernels::table_ref().quantize[static_cast<int>(kernels::AType::Q8_0)](row.data(), dst, sh.d);
      } else {
        for (int64_t i = 0; i < sh.d; ++i) {
          const uint16_t h = fp32_to_fp16(row[static_cast<size_t>(i)]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
      }
    }
  }
  std::vector<float> q(static_cast<size_t>(heads * sh.d)), out(q.size()), ref(static_cast<size_t>(sh.d));
  for (auto& x : q) x = static_cast<float>(static_cast<int64_t>(rng.next() % 2001) - 1000) * 1e-3f;
  std::vector<float> scores(static_cast<size_t>(sh.heads * n_kv));
  const float scale = 1.0f / std::sqrt(static_cast<float>(sh.d));
  auto head = [&](int64_t l, int64_t h, bool reference, float* o) {
    const size_t at = static_cast<size_t>((l * sh.heads + h) * n_kv * row_bytes);
    const float slope = std::exp2(-8.0f * static_cast<float>(h + 1) / static_cast<float>(sh.heads));
    const float* qh = q.data() + (l * sh.heads + h) * sh.d;
    float* sc = scores.data() + h * n_kv;
    if (q8) {
      (reference ? kernels::table_ref().attn_q8_0 : fn8)(
          kernels::AttnQ8Args{qh, k.data() + at, v.data() + at, n_kv, sh.d, n_kv - 1, scale, slope, sc, o});
    } else {
      (reference ? kernels::table_ref().attn_f16 : fn16)(
          kernels::AttnArgs{qh, reinterpret_cast<const uint16_t*>(k.data() + at), reinterpret_cast<const uint16_t*>(v.data() + at),
                            n_kv, sh.d, n_kv - 1, scale, slope, sc, o});
    }
  };
  head(0, 1, true, ref.data());
  head(0, 1, false, out.data());
  double err = 0;
  for (int64_t i = 0; i < sh.d; ++i) err = std::max(err, std::fabs(static_cast<double>(ref[static_cast<size_t>(i)]) - out[static_cast<size_t>(i)]));
  const bool ok = err <= 1e-4;
  auto token = [&] {
    for (int64_t l = 0; l < sh.layers; ++l)
      parallel_for(0, sh.heads, [&](int64_t h) { head(l, h, false, out.data() + (l * sh.heads + h) * sh.d); });
  };
  const double bytes = 2.0 * static_cast<double>(k.size());
  std::vector<double> gbs, bws, ratios, cpu_gbs;
  token();  // warm-up
  for (int r = 0; r < reps; ++r) {
    int iters = 0;
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    do {
      token();
      ++iters;
    } while (seconds_since(t0) < min_run_s);
    const double g = bytes * iters / seconds_since(t0) / 1e9;
    cpu_gbs.push_back(bytes * iters / (process_cpu_seconds() - c0) / 1e9);
    const double bw = read_bandwidth(big);
    gbs.push_back(g);
    bws.push_back(bw);
    ratios.push_back(g / bw);
  }
  std::printf("| attn %s | %s | %lldx%lldx%lld @ %lld | %.1f | %s (%.1e) | %.2f | %.2f | %.2f | %.2f | - | - |\n", kv_type.c_str(),
              std::string(isa_name(isa)).c_str(), static_cast<long long>(sh.layers), static_cast<long long>(sh.heads),
              static_cast<long long>(sh.d), static_cast<long long>(n_kv), bytes / (1 << 20), ok ? "ok" : "FAIL", err,
              median(gbs), median(bws), median(ratios), median(cpu_gbs));
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kernel-bench: matmul kernel speed per weight type and ISA on BLOOM-560m shapes"};
  std::vector<std::string> type_names{"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                      "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"};
  std::vector<std::string> isa_names;
  std::vector<std::string> shape_names{"1024x3072", "1024x1024", "1024x4096", "4096x1024", "1024x250880"};
  int threads = 2, reps = 5, prefill_tokens = 512;
  double bw_gib = 1.0, min_run_s = 0.25;
  bool no_prefill = false, head_prefill = false, ref_prefill = false, attn_only = false;
  std::vector<int64_t> attn_depths;
  std::string attn_shape = "24x16x64";
  std::vector<std::string> attn_kv{"f16"};
  app.add_option("--types", type_names, "weight types (ggml spelling)");
  app.add_option("--isa", isa_names, "ISAs (default: every runnable one)");
  app.add_option("--shapes", shape_names, "shapes as COLSxROWS (ne0 x ne1)");
  app.add_option("-t,--threads", threads, "threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "runs per measurement (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--prefill-tokens", prefill_tokens, "T of the batch measurement")->check(CLI::PositiveNumber);
  app.add_option("--bw-gib", bw_gib, "size of the read-bandwidth array, GiB");
  app.add_option("--min-run", min_run_s, "minimum seconds per T=1 run (repeats the matmul)");
  app.add_flag("--no-prefill", no_prefill, "skip the T=512 measurement");
  app.add_flag("--head-prefill", head_prefill, "also run T=512 on the 250880-row head (slow)");
  app.add_flag("--ref-prefill", ref_prefill, "also run T=512 for the scalar reference (slow)");
  app.add_option("--attn-depths", attn_depths, "also time attention of one token over caches of these many positions");
  app.add_option("--attn-shape", attn_shape, "attention shape LAYERSxHEADSxHEAD_DIM");
  app.add_option("--attn-kv", attn_kv, "KV cache types of the attention runs (f16, q8_0)")->check(CLI::IsMember({"f16", "q8_0"}));
  app.add_flag("--attn-only", attn_only, "time attention only (no matmuls)");
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<Isa> isas;
    if (isa_names.empty()) isas = usable_isas();
    for (const std::string& n : isa_names) isas.push_back(select_isa(n));
    std::vector<GgmlType> types;
    for (const std::string& n : type_names) {
      const auto t = type_from_name(n);
      kernels::WType w{};
      if (!t || !kernels::wtype_of(*t, w)) throw Error(ErrorKind::Usage, "--types: unknown or unsupported type " + n);
      types.push_back(*t);
    }
    std::vector<Shape> shapes;
    for (const std::string& s : shape_names) {
      const auto xpos = s.find('x');
      if (xpos == std::string::npos) throw Error(ErrorKind::Usage, "--shapes: expected COLSxROWS, got " + s);
      shapes.push_back({std::stoll(s.substr(0, xpos)), std::stoll(s.substr(xpos + 1))});
    }
    set_num_threads(threads);
    std::printf("# kernel-bench: cpu [%s], threads %d, median of %d, read-bandwidth array %.2f GiB, load average %s\n",
                cpu_feature_string().c_str(), threads, reps, bw_gib, load_average().c_str());
    std::vector<uint64_t> big(static_cast<size_t>(bw_gib * (1ull << 30)) / 8);
    for (size_t i = 0; i < big.size(); ++i) big[i] = i * 2654435761u;
    std::printf("# read bandwidth (warm-up): %.2f GB/s\n", read_bandwidth(big));
    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    std::printf("# OMP_WAIT_POLICY=%s (on a machine shared with other busy processes, use passive: spinning\n"
                "# OpenMP barriers then wait for descheduled threads and small T=1 matmuls take milliseconds)\n",
                wait_policy ? wait_policy : "(unset)");
    std::printf("| type | isa | shape (ne0 x ne1) | MiB | valid (rel err) | T=1 GB/s | read GB/s | ratio | T=1 GB per CPU-s | T=%d GFLOP/s | ratio-run read GB/s |\n",
                prefill_tokens);
    std::printf("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    std::fflush(stdout);

    const int64_t max_cols = std::max_element(shapes.begin(), shapes.end(), [](auto& a, auto& b) { return a.cols < b.cols; })->cols;
    std::vector<float> x(static_cast<size_t>(max_cols * prefill_tokens));
    Rng rng{12345};
    for (auto& v : x) v = static_cast<float>(static_cast<int64_t>(rng.next() % 20001) - 10000) * 1e-4f;

    AttnShape ash;
    if (std::sscanf(attn_shape.c_str(), "%ldx%ldx%ld", &ash.layers, &ash.heads, &ash.d) != 3 || ash.layers < 1 ||
        ash.heads < 1 || ash.d < 1)
      throw Error(ErrorKind::Usage, "--attn-shape: expected LAYERSxHEADSxHEAD_DIM, got " + attn_shape);
    for (int64_t n_kv : attn_depths) {
      if (n_kv < 1) throw Error(ErrorKind::Usage, "--attn-depths: positions must be at least 1");
      for (const std::string& kv : attn_kv) {
        if (kv == "q8_0" && ash.d % 32 != 0) throw Error(ErrorKind::Usage, "--attn-kv q8_0: the head dim must be a multiple of 32");
        for (Isa isa : isas)
          if (!bench_attention(isa, kv, ash, n_kv, reps, min_run_s, big)) return 1;
      }
    }
    if (attn_only) types.clear();

    MatmulWorkspace ws;
    for (GgmlType t : types) {
      for (const Shape& s : shapes) {
        int64_t row_bytes = 0;
        const std::vector<std::byte> wbuf = make_weights(t, s, row_bytes);
        const TensorView w{t, s.cols, s.rows, row_bytes, wbuf.data()};
        const double mib = static_cast<double>(wbuf.size()) / (1 << 20);
        std::vector<float> y(static_cast<size_t>(s.rows) * static_cast<size_t>(prefill_tokens));
        auto measure = [&](const TensorView& wv, Isa isa, const char* layout) -> bool {
          const double err = isa == Isa::Ref ? 0.0 : validate(wv, isa, x);
          const bool ok = err <= 1e-4;
          // T = 1
          std::vector<double> gbs, bws, ratios, cpu_gbs;
          matmul(wv, x.data(), 1, y.data(), ws, isa);  // warm-up
          for (int r = 0; r < reps; ++r) {
            int iters = 0;
            const auto t0 = Clock::now();
            const double c0 = process_cpu_seconds();
            do {
              matmul(wv, x.data(), 1, y.data(), ws, isa);
              ++iters;
            } while (seconds_since(t0) < min_run_s);
            const double g = static_cast<double>(wbuf.size()) * iters / seconds_since(t0) / 1e9;
            cpu_gbs.push_back(static_cast<double>(wbuf.size()) * iters / (process_cpu_seconds() - c0) / 1e9);
            const double bw = read_bandwidth(big);
            gbs.push_back(g);
            bws.push_back(bw);
            ratios.push_back(g / bw);
          }
          // T = prefill
          std::string gflops = "-", bw2 = "-";
          const bool big_head = s.rows > 100000;
          if (!no_prefill && (!big_head || head_prefill) && (isa != Isa::Ref || ref_prefill)) {
            std::vector<double> gf, b2;
            for (int r = 0; r < reps; ++r) {
              const auto t0 = Clock::now();
              matmul(wv, x.data(), prefill_tokens, y.data(), ws, isa);
              const double dt = seconds_since(t0);
              gf.push_back(2.0 * static_cast<double>(s.rows) * static_cast<double>(s.cols) * prefill_tokens / dt / 1e9);
              b2.push_back(read_bandwidth(big));
            }
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.1f", median(gf));
            gflops = buf;
            std::snprintf(buf, sizeof buf, "%.1f", median(b2));
            bw2 = buf;
          }
          std::printf("| %s | %s | %lldx%lld | %.1f | %s (%.1e) | %.2f | %.2f | %.2f | %.2f | %s | %s |\n",
                      (std::string(type_name(t)) + (layout[0] ? std::string(" ") + layout : "")).c_str(), std::string(isa_name(isa)).c_str(),
                      static_cast<long long>(s.cols), static_cast<long long>(s.rows), mib, ok ? "ok" : "FAIL", err,
                      median(gbs), median(bws), median(ratios), median(cpu_gbs), gflops.c_str(), bw2.c_str());
          std::fflush(stdout);
          return ok;
        };
        // The file's layout, and the x8 layout (kernels/repack.hpp) where the ISA has x8 dots.
        std::vector<std::byte> x8buf;
        TensorView w8 = w;
        if (kernels::x8_supported(t, s.cols, s.rows, row_bytes)) {
          x8buf.resize(wbuf.size());
          for (int64_t g = 0; g < s.rows / 8; ++g)
            kernels::repack_x8(t, wbuf.data() + g * 8 * row_bytes, row_bytes, x8buf.data() + g * 8 * row_bytes);
          w8.data = x8buf.data();
          w8.x8 = true;
        }
        for (Isa isa : isas) {
          kernels::WType wt{};
          kernels::wtype_of(t, wt);
          const kernels::KernelTable* kt = kernels::table_for(isa);
          const bool has_x8 = !x8buf.empty() && kt && kt->dot_x8[static_cast<int>(wt)];
          if (!measure(w, isa, "")) return 1;
          if (has_x8 && !measure(w8, isa, "x8")) return 1;
        }
      }
    }
    std::printf("# load average at the end: %s\n", load_average().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "kernel-bench: %s\n", e.what());
    return exit_status(e.kind());
  }
  return 0;
}
