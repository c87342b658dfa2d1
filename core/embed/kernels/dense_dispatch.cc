// The choice of the DenseKernels table (dense.h). Compiled for the baseline.
#include "core/embed/kernels/dense.h"

namespace medsearch::embed::kernels {

namespace isa_v2 {
extern const DenseKernels kDense;
}
namespace isa_v3 {
extern const DenseKernels kDense;
}
namespace isa_v4 {
extern const DenseKernels kDense;
}

const DenseKernels* dense_kernels_for(internal::CpuLevel level) {
  if (level > internal::cpu_level()) return nullptr;
  switch (level) {
    case internal::CpuLevel::kV2: return &isa_v2::kDense;
    case internal::CpuLevel::kV3: return &isa_v3::kDense;
    case internal::CpuLevel::kV4:
    case internal::CpuLevel::kAmx: return &isa_v4::kDense;
  }
  return nullptr;
}

const DenseKernels& dense_kernels() {
  static const DenseKernels* const k = dense_kernels_for(internal::cpu_level());
  return *k;
}

}  // namespace medsearch::embed::kernels
