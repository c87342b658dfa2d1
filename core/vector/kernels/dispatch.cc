// Run-time choice of the kernel table. Compiled for the baseline ISA.
#include <cstdlib>
#include <cstring>

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
IsaLevel detect() {
  const auto& cpu = medsearch::internal::cpu_features();  // CPU and OS (XCR0) agree
  IsaLevel level = IsaLevel::kScalar;
  if (cpu.avx2 && cpu.fma) level = IsaLevel::kAvx2;
  if (level == IsaLevel::kAvx2 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq) {
    level = IsaLevel::kAvx512;
    if (cpu.avx512vnni) level = IsaLevel::kAvx512Vnni;
  }
  // MEDSEARCH_ISA=scalar|avx2|avx512 caps the level (benchmarks, debugging).
  if (const char* cap = std::getenv("MEDSEARCH_ISA")) {
    IsaLevel want = level;
    if (!std::strcmp(cap, "scalar")) want = IsaLevel::kScalar;
    else if (!std::strcmp(cap, "avx2")) want = IsaLevel::kAvx2;
    else if (!std::strcmp(cap, "avx512")) want = IsaLevel::kAvx512;
    if (want < level) level = want;
  }
  return level;
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
