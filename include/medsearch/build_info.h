// build_info.h: what this build of medsearch is and which kernels it runs.
//
// The library runs on any x86-64-v2 CPU. Its kernels that need wider
// instructions are compiled once per level (x86-64-v3: AVX2+FMA, x86-64-v4:
// AVX-512, amx: the encoder in bfloat16 on AMX tiles), and one probe of the
// CPU and the operating system picks the highest level for all of them at
// the first use. The environment variable MEDSEARCH_CPU_LEVEL=v2|v3|v4|amx,
// read once, lowers it (to compare the paths, or to rule one out).
// `medsearch --version` prints this; Python: medsearch.build_info().
#pragma once

#include <string>
#include <vector>

namespace medsearch {

struct BuildInfo {
  std::string version;                // "0.1.0"
  std::string compiler;               // "GCC 12.2.0"
  std::string baseline;               // -march of everything outside the kernels: "x86-64-v2"
  std::vector<std::string> compiled;  // kernel levels in this build, lowest first: "x86-64-v2", ..., "amx"
  std::string supported;              // the highest of them this CPU and OS support
  std::string selected;               // the level in use: `supported`, or lower by MEDSEARCH_CPU_LEVEL
  std::string requested;              // MEDSEARCH_CPU_LEVEL as read ("" when unset)
  std::string cpu_features;           // what the probe found: "ssse3 sse4.1 sse4.2 popcnt avx ..."
  std::string distance_kernels;       // vector distances: "scalar", "avx2", "avx512" or "avx512_vnni"
  std::string encoder_float32;        // the encoder's float32 kernels (Eigen): "x86-64-v2", "-v3" or "-v4"
  std::string encoder_bfloat16;       // "amx", or "" when unavailable (see encoder_bfloat16_reason)
  std::string encoder_bfloat16_reason;  // why bfloat16 is unavailable ("" when it is)
};

// Computed at the first call (it runs the CPU probe); thread-safe.
BuildInfo build_info();

// Several lines, "key: value", for --version and logs.
std::string to_string(const BuildInfo& info);

}  // namespace medsearch
