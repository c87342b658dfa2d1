// Scalar kernels: the reference every SIMD level is tested against, and the
// fallback for CPUs without AVX2. Compiled for the baseline ISA.
#include "core/vector/kernels/distance.h"

namespace medsearch::vector::kernels {
namespace {

float dot_f32(const float* a, const float* b, size_t dim) {
  float s = 0.0f;
  for (size_t i = 0; i < dim; ++i) s += a[i] * b[i];
  return s;
}
float l2sq_f32(const float* a, const float* b, size_t dim) {
  float s = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}
int32_t dot_i8(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t s = 0;
  for (size_t i = 0; i < dim; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}
int32_t l2sq_i8(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    s += d * d;
  }
  return s;
}

#include "core/vector/kernels/graph_adapters.inc"

}  // namespace

extern const DistanceKernels kScalarKernels;
const DistanceKernels kScalarKernels = {
    IsaLevel::kScalar, dot_f32, l2sq_f32, dot_i8, l2sq_i8, dot_f32_many, l2sq_f32_many,
    neg_dot_f32_graph, l2sq_f32_graph, neg_dot_i8_graph, l2sq_i8_graph};

}  // namespace medsearch::vector::kernels
