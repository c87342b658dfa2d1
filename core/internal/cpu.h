// cpu.h: which instruction-set extensions this process may use, and the
// level the whole library's kernels run at (the vector distances, the
// encoder's float32 kernels, its AMX bfloat16 GEMM): one probe for all.
//
// An extension counts only when the CPU reports it (CPUID) and the operating
// system saves its registers across context switches (XCR0, read with
// XGETBV): YMM state for AVX/AVX2/FMA, opmask and ZMM state for AVX-512, tile
// configuration and data for AMX. Linux additionally hands out the AMX tile
// data per process, on request: amx_tiles_permitted() asks.
//
// Compiled for the library's baseline like everything outside the per-level
// kernel objects (CMakeLists.txt), so it runs before anything is known.
// Thread-safe; each answer is computed once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace medsearch::internal {

struct CpuFeatures {
  bool ssse3 = false;
  bool sse41 = false;
  bool sse42 = false;
  bool popcnt = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool bmi = false;
  bool bmi2 = false;
  bool f16c = false;
  bool lzcnt = false;
  bool movbe = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512cd = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool amx_tile = false;  // the CPU has it and the OS enabled the tile state
  bool amx_bf16 = false;  // (the process still needs amx_tiles_permitted())
};

// This CPU's features as the OS allows them (all false off x86-64).
const CpuFeatures& cpu_features();

// Whether this process may use the AMX tile data: the CPU and OS have
// AMX-TILE (cpu_features()) and Linux granted ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA (Linux 5.16+). The first call asks the kernel (a
// process-wide, permanent grant); later calls return the same answer. Not
// part of cpu_features() so that only code about to use AMX asks.
bool amx_tiles_permitted();

// The levels the library has kernels for, lowest first: the x86-64 psABI
// levels (x86-64-v2: SSE4.2 and POPCNT, what the whole library is compiled
// for; v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE; v4: AVX-512 F/BW/CD/DQ/VL)
// and AMX (v4 with AVX512-BF16 and AMX-TILE/BF16: the encoder in bfloat16).
enum class CpuLevel : uint8_t { kV2 = 0, kV3 = 1, kV4 = 2, kAmx = 3 };
inline constexpr CpuLevel kAllCpuLevels[] = {CpuLevel::kV2, CpuLevel::kV3, CpuLevel::kV4, CpuLevel::kAmx};

// "x86-64-v2", "x86-64-v3", "x86-64-v4", "amx".
const char* cpu_level_name(CpuLevel level);

// "v2", "x86-64-v2", ..., "amx" (case as written); false for anything else.
bool parse_cpu_level(std::string_view name, CpuLevel* level);

// The highest level this CPU and OS support (x86-64-v2 below that: the
// library needs it anyway). AMX counts when the CPU has it and the OS
// enabled its state; amx_tiles_permitted() is asked only by the AMX kernels.
CpuLevel supported_cpu_level();

// The level the library's kernels run at: supported_cpu_level(), lowered by
// the environment variable MEDSEARCH_CPU_LEVEL (v2|v3|v4|amx) when it names a
// lower one (for tests and comparisons; a higher one changes nothing). Read
// once, at the first call; a value that names no level is reported on stderr
// once and ignored. Every kernel table (vector distances, the encoder's float32
// kernels, AMX) follows it.
CpuLevel cpu_level();

// The value of MEDSEARCH_CPU_LEVEL as cpu_level() read it ("" when unset).
const std::string& cpu_level_request();

// The set features as space-separated names ("sse4.2 avx avx2 fma ..."), in
// the order of CpuFeatures; for logs and tests.
std::string to_string(const CpuFeatures& f);

}  // namespace medsearch::internal
