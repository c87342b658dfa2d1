// AVX-512 (F, BW, VL, DQ) kernels without VNNI. Compiled for x86-64-v4;
// internal linkage only.
// GCC 12 warns about _mm512_undefined_* inside _mm512_reduce_add_*; harmless.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "core/vector/kernels/distance.h"

namespace medsearch::vector::kernels {
namespace {

#include "core/vector/kernels/avx512_common.inc"

int32_t dot_i8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(load_i16(a + i), load_i16(b + i)));
    acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(load_i16(a + i + 32), load_i16(b + i + 32)));
  }
  for (; i + 32 <= dim; i += 32) acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(load_i16(a + i), load_i16(b + i)));
  if (i < dim) {
    acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(load_i16_masked(a + i, dim - i), load_i16_masked(b + i, dim - i)));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

int32_t l2sq_i8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512i d = _mm512_sub_epi16(load_i16(a + i), load_i16(b + i));
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(d, d));
  }
  if (i < dim) {
    const __m512i d = _mm512_sub_epi16(load_i16_masked(a + i, dim - i), load_i16_masked(b + i, dim - i));
    acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(d, d));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

#include "core/vector/kernels/graph_adapters.inc"

}  // namespace

extern const DistanceKernels kAvx512Kernels;
const DistanceKernels kAvx512Kernels = {
    IsaLevel::kAvx512, dot_f32, l2sq_f32, dot_i8, l2sq_i8, dot_f32_many, l2sq_f32_many,
    neg_dot_f32_graph, l2sq_f32_graph, neg_dot_i8_graph, l2sq_i8_graph};

}  // namespace medsearch::vector::kernels
