#include "core/internal/cpu.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace medsearch::internal {

namespace {

#if defined(__x86_64__)
bool bit(uint32_t word, int n) { return ((word >> n) & 1u) != 0; }

// XCR0; only call when CPUID.1:ECX.OSXSAVE is set (XGETBV is #UD otherwise).
// Inline assembly rather than _xgetbv(), which needs -mxsave.
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t{edx} << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return f;
  const unsigned max_leaf = eax;
  if (max_leaf < 1) return f;
  __cpuid(1, eax, ebx, ecx, edx);
  const uint32_t ecx1 = ecx;
  f.ssse3 = bit(ecx1, 9);
  f.sse41 = bit(ecx1, 19);
  f.sse42 = bit(ecx1, 20);
  f.popcnt = bit(ecx1, 23);
  f.movbe = bit(ecx1, 22);
  // XCR0 bits: 1 SSE, 2 AVX (YMM upper halves), 5-7 AVX-512 (opmask,
  // ZMM0-15 upper halves, ZMM16-31), 17-18 AMX (tile config, tile data).
  const uint64_t xcr0 = bit(ecx1, 27) ? read_xcr0() : 0;  // OSXSAVE
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
  const bool os_tiles = (xcr0 & 0x60000) == 0x60000;
  f.avx = os_ymm && bit(ecx1, 28);
  f.fma = f.avx && bit(ecx1, 12);
  f.f16c = f.avx && bit(ecx1, 29);
  if (__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) != 0) f.lzcnt = bit(ecx, 5);  // ABM
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned max_subleaf7 = eax;
  const uint32_t ebx7 = ebx, ecx7 = ecx, edx7 = edx;
  f.bmi = bit(ebx7, 3);
  f.bmi2 = bit(ebx7, 8);
  f.avx2 = f.avx && bit(ebx7, 5);
  f.avx512f = os_zmm && bit(ebx7, 16);
  f.avx512dq = f.avx512f && bit(ebx7, 17);
  f.avx512cd = f.avx512f && bit(ebx7, 28);
  f.avx512bw = f.avx512f && bit(ebx7, 30);
  f.avx512vl = f.avx512f && bit(ebx7, 31);
  f.avx512vnni = f.avx512f && bit(ecx7, 11);
  f.amx_bf16 = os_tiles && bit(edx7, 22);
  f.amx_tile = os_tiles && bit(edx7, 24);
  if (max_subleaf7 >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avx512bf16 = f.avx512f && bit(eax, 5);
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

CpuLevel detect_level(const CpuFeatures& f) {
  const bool v3 = f.avx && f.avx2 && f.fma && f.bmi && f.bmi2 && f.f16c && f.lzcnt && f.movbe;
  const bool v4 = v3 && f.avx512f && f.avx512bw && f.avx512cd && f.avx512dq && f.avx512vl;
  const bool amx = v4 && f.avx512bf16 && f.amx_tile && f.amx_bf16;
  return amx ? CpuLevel::kAmx : v4 ? CpuLevel::kV4 : v3 ? CpuLevel::kV3 : CpuLevel::kV2;
}

bool request_amx_tiles() {
  if (!cpu_features().amx_tile) return false;
#if defined(__linux__) && defined(__x86_64__)
  // arch/x86/include/uapi/asm/prctl.h; the kernel headers of older
  // distributions lack the names.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();  // thread-safe, once
  return features;
}

bool amx_tiles_permitted() {
  static const bool permitted = request_amx_tiles();
  return permitted;
}

const char* cpu_level_name(CpuLevel level) {
  switch (level) {
    case CpuLevel::kV2: return "x86-64-v2";
    case CpuLevel::kV3: return "x86-64-v3";
    case CpuLevel::kV4: return "x86-64-v4";
    case CpuLevel::kAmx: return "amx";
  }
  return "?";
}

bool parse_cpu_level(std::string_view name, CpuLevel* level) {
  for (CpuLevel l : kAllCpuLevels) {
    const std::string_view full = cpu_level_name(l);
    const std::string_view brief = full.substr(full.rfind('-') + 1);  // "v2", ..., "amx"
    if (name == full || name == brief) {
      *level = l;
      return true;
    }
  }
  return false;
}

CpuLevel supported_cpu_level() {
  static const CpuLevel level = detect_level(cpu_features());
  return level;
}

const std::string& cpu_level_request() {
  static const std::string request = [] {
    const char* env = std::getenv("MEDSEARCH_CPU_LEVEL");
    return std::string(env != nullptr ? env : "");
  }();
  return request;
}

CpuLevel cpu_level() {
  static const CpuLevel level = [] {
    CpuLevel l = supported_cpu_level();
    const std::string& request = cpu_level_request();
    if (request.empty()) return l;
    CpuLevel want;
    if (!parse_cpu_level(request, &want)) {
      std::fprintf(stderr, "medsearch: MEDSEARCH_CPU_LEVEL=%s names no level (v2, v3, v4 or amx); ignored\n",
                   request.c_str());
      return l;
    }
    return want < l ? want : l;
  }();
  return level;
}

std::string to_string(const CpuFeatures& f) {
  const std::pair<bool, const char*> names[] = {
      {f.ssse3, "ssse3"},         {f.sse41, "sse4.1"},      {f.sse42, "sse4.2"},      {f.popcnt, "popcnt"},
      {f.avx, "avx"},             {f.avx2, "avx2"},         {f.fma, "fma"},           {f.bmi, "bmi"},
      {f.bmi2, "bmi2"},           {f.f16c, "f16c"},         {f.lzcnt, "lzcnt"},       {f.movbe, "movbe"},
      {f.avx512f, "avx512f"},     {f.avx512bw, "avx512bw"},
      {f.avx512dq, "avx512dq"},   {f.avx512vl, "avx512vl"}, {f.avx512cd, "avx512cd"}, {f.avx512vnni, "avx512vnni"},
      {f.avx512bf16, "avx512bf16"}, {f.amx_tile, "amx-tile"}, {f.amx_bf16, "amx-bf16"}};
  std::string out;
  for (const auto& [set, name] : names) {
    if (!set) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out;
}

}  // namespace medsearch::internal
