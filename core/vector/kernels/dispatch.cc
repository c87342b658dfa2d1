// Run-time choice of the kernel table. Compiled for the baseline ISA.
#include "core/internal/cpu.h"
#include "core/vector/kernels/distance.h"

namespace medsearch::vector::kernels {

extern const DistanceKernels kScalarKernels;
extern const DistanceKernels kAvx2Kernels;
extern const DistanceKernels kAvx512Kernels;
extern const DistanceKernels kAvx512VnniKernels;

const char* isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::kScalar: return "scalar";
    case IsaLevel::kAvx2: return "avx2";
    case IsaLevel::kAvx512: return "avx512";
    case IsaLevel::kAvx512Vnni: return "avx512_vnni";
  }
  return "?";
}

namespace {
// The library's level (cpu_level(): the probe, lowered by MEDSEARCH_CPU_LEVEL):
// x86-64-v3 runs the AVX2+FMA kernels, x86-64-v4 the AVX-512 ones, with VNNI
// when the CPU has it.
IsaLevel detect() {
  using medsearch::internal::CpuLevel;
  const CpuLevel level = medsearch::internal::cpu_level();
  if (level == CpuLevel::kV2) return IsaLevel::kScalar;
  if (level == CpuLevel::kV3) return IsaLevel::kAvx2;
  return medsearch::internal::cpu_features().avx512vnni ? IsaLevel::kAvx512Vnni : IsaLevel::kAvx512;
}
}  // namespace

IsaLevel detected_isa() {
  static const IsaLevel level = detect();
  return level;
}

const DistanceKernels* kernels_for(IsaLevel level) {
  if (level > detected_isa()) return nullptr;
  switch (level) {
    case IsaLevel::kScalar: return &kScalarKernels;
    case IsaLevel::kAvx2: return &kAvx2Kernels;
    case IsaLevel::kAvx512: return &kAvx512Kernels;
    case IsaLevel::kAvx512Vnni: return &kAvx512VnniKernels;
  }
  return nullptr;
}

const DistanceKernels& best_kernels() {
  static const DistanceKernels* k = kernels_for(detected_isa());
  return *k;
}

}  // namespace medsearch::vector::kernels
