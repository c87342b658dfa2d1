// cpu.h: which instruction-set extensions this process may use, for the
// whole library (the vector kernels' dispatch, the encoder's load-time check,
// the AMX GEMM).
//
// An extension counts only when the CPU reports it (CPUID) and the operating
// system saves its registers across context switches (XCR0, read with
// XGETBV): YMM state for AVX/AVX2/FMA, opmask and ZMM state for AVX-512, tile
// configuration and data for AMX. Linux additionally hands out the AMX tile
// data per process, on request: amx_tiles_permitted() asks.
//
// Compiled for the x86-64 baseline (no -m flags; CMakeLists.txt leaves
// core/internal alone), so it runs on any x86-64 CPU before anything is known.
// Thread-safe; each answer is computed once.
#pragma once

#include <string>

namespace medsearch::internal {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool bmi = false;
  bool bmi2 = false;
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

// The set features as space-separated names ("sse4.2 avx avx2 fma ..."), in
// the order of CpuFeatures; for logs and tests.
std::string to_string(const CpuFeatures& f);

}  // namespace medsearch::internal
