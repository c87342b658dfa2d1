// The library's CPU-feature probe (core/internal/cpu.h), checked against two
// independent answers: libgcc's __builtin_cpu_supports (which also asks XCR0
// whether the OS saves the registers) and the kernel's /proc/cpuinfo flags
// (which it clears for state it does not enable); plus the AMX permission,
// the level and the vector kernels chosen from it. MEDSEARCH_CPU_LEVEL in a
// child process: tests/python/test_build_info.py.
#include "core/internal/cpu.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "core/vector/kernels/distance.h"

namespace medsearch::internal {
namespace {

struct Named {
  const char* gcc;       // __builtin_cpu_supports name
  const char* cpuinfo;   // /proc/cpuinfo flag
  bool CpuFeatures::*field;
};

// The names differ between libgcc, the kernel and us.
const Named kFeatures[] = {
    {"ssse3", "ssse3", &CpuFeatures::ssse3},
    {"sse4.1", "sse4_1", &CpuFeatures::sse41},
    {"sse4.2", "sse4_2", &CpuFeatures::sse42},
    {"popcnt", "popcnt", &CpuFeatures::popcnt},
    {"avx", "avx", &CpuFeatures::avx},
    {"avx2", "avx2", &CpuFeatures::avx2},
    {"fma", "fma", &CpuFeatures::fma},
    {"bmi", "bmi1", &CpuFeatures::bmi},
    {"bmi2", "bmi2", &CpuFeatures::bmi2},
    {"f16c", "f16c", &CpuFeatures::f16c},
    {"lzcnt", "abm", &CpuFeatures::lzcnt},
    {"movbe", "movbe", &CpuFeatures::movbe},
    {"avx512f", "avx512f", &CpuFeatures::avx512f},
    {"avx512bw", "avx512bw", &CpuFeatures::avx512bw},
    {"avx512dq", "avx512dq", &CpuFeatures::avx512dq},
    {"avx512vl", "avx512vl", &CpuFeatures::avx512vl},
    {"avx512cd", "avx512cd", &CpuFeatures::avx512cd},
    {"avx512vnni", "avx512_vnni", &CpuFeatures::avx512vnni},
    {"avx512bf16", "avx512_bf16", &CpuFeatures::avx512bf16},
    {"amx-tile", "amx_tile", &CpuFeatures::amx_tile},
    {"amx-bf16", "amx_bf16", &CpuFeatures::amx_bf16},
};

// __builtin_cpu_supports needs a string literal.
bool gcc_supports(const std::string& name) {
  __builtin_cpu_init();
#define MEDSEARCH_GCC_FEATURE(n) \
  if (name == n) return __builtin_cpu_supports(n);
  MEDSEARCH_GCC_FEATURE("ssse3")
  MEDSEARCH_GCC_FEATURE("sse4.1")
  MEDSEARCH_GCC_FEATURE("sse4.2")
  MEDSEARCH_GCC_FEATURE("popcnt")
  MEDSEARCH_GCC_FEATURE("f16c")
  MEDSEARCH_GCC_FEATURE("lzcnt")
  MEDSEARCH_GCC_FEATURE("movbe")
  MEDSEARCH_GCC_FEATURE("avx")
  MEDSEARCH_GCC_FEATURE("avx2")
  MEDSEARCH_GCC_FEATURE("fma")
  MEDSEARCH_GCC_FEATURE("bmi")
  MEDSEARCH_GCC_FEATURE("bmi2")
  MEDSEARCH_GCC_FEATURE("avx512f")
  MEDSEARCH_GCC_FEATURE("avx512bw")
  MEDSEARCH_GCC_FEATURE("avx512dq")
  MEDSEARCH_GCC_FEATURE("avx512vl")
  MEDSEARCH_GCC_FEATURE("avx512cd")
  MEDSEARCH_GCC_FEATURE("avx512vnni")
  MEDSEARCH_GCC_FEATURE("avx512bf16")
  MEDSEARCH_GCC_FEATURE("amx-tile")
  MEDSEARCH_GCC_FEATURE("amx-bf16")
#undef MEDSEARCH_GCC_FEATURE
  ADD_FAILURE() << "no such feature " << name;
  return false;
}

std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

TEST(Cpu, AgreesWithLibgcc) {
  const CpuFeatures& f = cpu_features();
  for (const Named& n : kFeatures) EXPECT_EQ(f.*n.field, gcc_supports(n.gcc)) << n.gcc;
}

TEST(Cpu, AgreesWithTheKernel) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo";
  const CpuFeatures& f = cpu_features();
  for (const Named& n : kFeatures) EXPECT_EQ(f.*n.field, flags.count(n.cpuinfo) == 1) << n.cpuinfo;
}

TEST(Cpu, WiderExtensionsImplyTheirBase) {
  const CpuFeatures& f = cpu_features();
  EXPECT_TRUE(!f.avx2 || f.avx);
  EXPECT_TRUE(!f.fma || f.avx);
  for (bool wide : {f.avx512bw, f.avx512dq, f.avx512vl, f.avx512cd, f.avx512vnni, f.avx512bf16}) {
    EXPECT_TRUE(!wide || f.avx512f);
  }
  EXPECT_TRUE(!f.avx512f || f.avx);  // the OS saves ZMM only with YMM
  EXPECT_EQ(&cpu_features(), &f);    // computed once
}

TEST(Cpu, NamesTheSetFeaturesInOrder) {
  CpuFeatures f;
  EXPECT_EQ(to_string(f), "");
  f.sse42 = f.avx2 = f.lzcnt = f.amx_bf16 = true;
  EXPECT_EQ(to_string(f), "sse4.2 avx2 lzcnt amx-bf16");
  std::cout << "[ cpu      ] " << to_string(cpu_features()) << "\n";
}

// The grant is visible to the kernel's own query (ARCH_GET_XCOMP_PERM).
TEST(Cpu, AmxPermissionIsGrantedOnceAndForReal) {
  const bool permitted = amx_tiles_permitted();
  EXPECT_EQ(amx_tiles_permitted(), permitted);
  if (!cpu_features().amx_tile) {
    EXPECT_FALSE(permitted);
    return;
  }
  constexpr long kArchGetXcompPerm = 0x1022;
  uint64_t mask = 0;
  ASSERT_EQ(syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask), 0);
  EXPECT_EQ(permitted, ((mask >> 18) & 1) == 1) << std::hex << mask;
}

// The levels are the psABI's, as libgcc names them (GCC 12 knows
// "x86-64-v2" ... "x86-64-v4"); AMX adds AVX512-BF16 and the tiles.
TEST(Cpu, LevelIsThePsAbiLevel) {
  __builtin_cpu_init();
  CpuLevel want = CpuLevel::kV2;
  if (__builtin_cpu_supports("x86-64-v3")) want = CpuLevel::kV3;
  if (__builtin_cpu_supports("x86-64-v4")) want = CpuLevel::kV4;
  if (want == CpuLevel::kV4 && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("amx-tile") &&
      __builtin_cpu_supports("amx-bf16")) {
    want = CpuLevel::kAmx;
  }
  EXPECT_EQ(cpu_level_name(supported_cpu_level()), std::string(cpu_level_name(want)));
  EXPECT_LE(cpu_level(), supported_cpu_level());
  if (cpu_level_request().empty()) EXPECT_EQ(cpu_level(), supported_cpu_level());
}

TEST(Cpu, ParsesLevelNames) {
  CpuLevel level = CpuLevel::kAmx;
  EXPECT_TRUE(parse_cpu_level("v2", &level));
  EXPECT_EQ(level, CpuLevel::kV2);
  EXPECT_TRUE(parse_cpu_level("x86-64-v4", &level));
  EXPECT_EQ(level, CpuLevel::kV4);
  EXPECT_TRUE(parse_cpu_level("amx", &level));
  EXPECT_EQ(level, CpuLevel::kAmx);
  for (const char* bad : {"", "v1", "v5", "avx2", "V3", "x86-64", "amx "}) {
    EXPECT_FALSE(parse_cpu_level(bad, &level)) << bad;
  }
  for (CpuLevel l : kAllCpuLevels) {
    EXPECT_TRUE(parse_cpu_level(cpu_level_name(l), &level));
    EXPECT_EQ(level, l);
  }
}

// The vector kernels follow the library's level: x86-64-v3 runs AVX2+FMA,
// v4 AVX-512, with VNNI when the CPU has it.
TEST(Cpu, VectorKernelsFollowTheLevel) {
  using vector::kernels::IsaLevel;
  IsaLevel want = IsaLevel::kScalar;
  if (cpu_level() >= CpuLevel::kV3) want = IsaLevel::kAvx2;
  if (cpu_level() >= CpuLevel::kV4) want = cpu_features().avx512vnni ? IsaLevel::kAvx512Vnni : IsaLevel::kAvx512;
  EXPECT_EQ(vector::kernels::detected_isa(), want) << vector::kernels::isa_name(vector::kernels::detected_isa());
}

}  // namespace
}  // namespace medsearch::internal
