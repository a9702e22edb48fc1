// CPU feature detection (CPUID + XGETBV on x86-64, HWCAP on AArch64 Linux) and the process-wide
// choice of kernel set. Library code never logs; the CLI prints the choice.
#include "bloomz/cpu_features.hpp"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "bloomz/error.hpp"
#include "kernels/kernels.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define BLOOMZ_X86_64 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)  // <asm/hwcap.h>, for older C libraries
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace bloomz {
namespace {

#if defined(BLOOMZ_X86_64)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(BLOOMZ_X86_64)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool fma = (c >> 12) & 1;
  const bool f16c = (c >> 29) & 1;
  const bool avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
  const bool zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  if (ymm_ok) {
    f.avx2 = (b >> 5) & 1;
    f.fma = fma;
    f.f16c = f16c;
  }
  if (zmm_ok) {
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512bf16 = (a1 >> 5) & 1;
  }
#elif defined(__aarch64__)
  // Advanced SIMD (with the fp16 <-> f32 conversions) is part of every AArch64 Linux/macOS target;
  // the dot product (SDOT/UDOT, ARMv8.2-A) is optional and asked of the OS.
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.neon = (hwcap & HWCAP_ASIMD) != 0;
  f.dotprod = f.neon && (hwcap & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  f.neon = true;
  int on = 0;
  size_t len = sizeof on;
  if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &on, &len, nullptr, 0) == 0) f.dotprod = on != 0;
#else
  f.neon = true;
#endif
#endif
  return f;
}

bool cpu_can_run(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
#if defined(BLOOMZ_EMULATED_AVX512)
  // The test build's AVX-512 tables are SIMDe code compiled with AVX2 flags.
  const bool avx512 = avx2, vnni = avx2;
#else
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  const bool vnni = avx512 && f.avx512vnni;
#endif
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Avx2: return avx2;
    case Isa::Avx512: return avx512;
    case Isa::Avx512Vnni: return vnni;
    case Isa::Neon: return f.neon;
    case Isa::NeonDot: return f.neon && f.dotprod;
  }
  return false;
}

constexpr Isa kAllIsas[] = {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot};

std::atomic<int> g_active{-1};

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Neon: return "neon";
    case Isa::NeonDot: return "neon-dot";
  }
  return "?";
}

std::optional<Isa> isa_from_name(std::string_view name) {
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (Isa isa : kAllIsas)
    if (isa_name(isa) == lower) return isa;
  return std::nullopt;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_feature_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  return s.empty() ? std::string("none") : s;
}

bool isa_compiled(Isa isa) { return kernels::table_for(isa) != nullptr; }

bool isa_runnable(Isa isa) { return isa_compiled(isa) && cpu_can_run(isa); }

std::vector<Isa> usable_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa_runnable(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() {
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2, Isa::NeonDot, Isa::Neon})
    if (isa_runnable(isa)) return isa;
  return Isa::Ref;
}

Isa select_isa(std::string_view requested) {
  std::string name(requested);
  std::string source = "--isa";
  if (name.empty() || name == "auto") {
    const char* env = std::getenv("BLOOMZ_ISA");
    if (env && *env && std::string_view(env) != "auto") {
      name = env;
      source = "BLOOMZ_ISA";
    } else {
      name.clear();
    }
  }
  Isa isa = best_isa();
  if (!name.empty()) {
    const std::optional<Isa> parsed = isa_from_name(name);
    if (!parsed)
      throw Error(ErrorKind::Usage, source + " (--isa/BLOOMZ_ISA): unknown ISA '" + name +
                                        "' (expected auto, ref, avx2, avx512, avx512vnni, neon, neon-dot)");
    if (!isa_compiled(*parsed))
      throw Error(ErrorKind::Usage, source + " (--isa/BLOOMZ_ISA): ISA '" + name + "' is not compiled into this binary");
    if (!cpu_can_run(*parsed))
      throw Error(ErrorKind::Usage, source + " (--isa/BLOOMZ_ISA): this CPU cannot run ISA '" + name + "' (it has: " +
                                        cpu_feature_string() + ")");
    isa = *parsed;
  }
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(best_isa());
    g_active.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

}  // namespace bloomz
