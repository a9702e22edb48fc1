// What this CPU and OS can run, the kernel sets (ISAs) bloomz has, and the one chosen for the
// process. Selection happens once at start-up (select_isa); an explicit request the CPU cannot
// run is an error, never a silent fallback.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bloomz {

enum class Isa { Ref, Avx2, Avx512, Avx512Vnni, Neon, NeonDot };

std::string_view isa_name(Isa isa);  // "ref", "avx2", "avx512", "avx512vnni", "neon", "neon-dot"
std::optional<Isa> isa_from_name(std::string_view name);

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;              // with OS YMM state (xgetbv)
  bool avx512f = false, avx512bw = false, avx512vl = false;  // with OS ZMM/opmask state
  bool avx512dq = false, avx512vnni = false, avx512bf16 = false;
  bool neon = false, dotprod = false;
};

const CpuFeatures& cpu_features();
std::string cpu_feature_string();        // e.g. "avx2 fma f16c"
bool isa_compiled(Isa isa);              // a table for it is in this binary
bool isa_runnable(Isa isa);              // compiled and the CPU/OS can run it
std::vector<Isa> usable_isas();          // every runnable ISA, ref first
Isa best_isa();                          // the fastest runnable one

// Choose the kernel set for the process: `requested` ("auto" or a name) or else $BLOOMZ_ISA, else
// best_isa(). Throws Error(Usage) for an unknown name or an ISA this machine cannot run.
Isa select_isa(std::string_view requested = "auto");
Isa active_isa();

}  // namespace bloomz
