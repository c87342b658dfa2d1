// AVX-512 VNNI kernels: vpdpbusd for int8 dot products (64 products per
// instruction), vpdpwssd for int8 L2. Compiled with the AVX-512 flags plus
// -mavx512vnni; internal linkage only.
// GCC 12 warns about _mm512_undefined_* inside _mm512_reduce_add_*; harmless.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "core/vector/kernels/distance.h"

namespace medsearch::vector::kernels {
namespace {

#include "core/vector/kernels/avx512_common.inc"

inline __mmask64 tail64(size_t n) { return n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1); }

// vpdpbusd multiplies unsigned by signed bytes: a.b = |a| . (b with a's sign),
// exact because components lie in [-127, 127].
inline __m512i dpbusd_signed(__m512i acc, __m512i va, __m512i vb) {
  const __mmask64 neg = _mm512_movepi8_mask(va);
  const __m512i sb = _mm512_mask_sub_epi8(vb, neg, _mm512_setzero_si512(), vb);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(va), sb);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= dim; i += 128) {
    acc0 = dpbusd_signed(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    acc1 = dpbusd_signed(acc1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
  }
  for (; i + 64 <= dim; i += 64) acc0 = dpbusd_signed(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
  if (i < dim) {
    const __mmask64 m = tail64(dim - i);
    acc1 = dpbusd_signed(acc1, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

int32_t l2sq_i8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    const __m512i d0 = _mm512_sub_epi16(load_i16(a + i), load_i16(b + i));
    const __m512i d1 = _mm512_sub_epi16(load_i16(a + i + 32), load_i16(b + i + 32));
    acc0 = _mm512_dpwssd_epi32(acc0, d0, d0);
    acc1 = _mm512_dpwssd_epi32(acc1, d1, d1);
  }
  for (; i + 32 <= dim; i += 32) {
    const __m512i d = _mm512_sub_epi16(load_i16(a + i), load_i16(b + i));
    acc0 = _mm512_dpwssd_epi32(acc0, d, d);
  }
  if (i < dim) {
    const __m512i d = _mm512_sub_epi16(load_i16_masked(a + i, dim - i), load_i16_masked(b + i, dim - i));
    acc1 = _mm512_dpwssd_epi32(acc1, d, d);
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

#include "core/vector/kernels/graph_adapters.inc"

}  // namespace

extern const DistanceKernels kAvx512VnniKernels;
const DistanceKernels kAvx512VnniKernels = {
    IsaLevel::kAvx512Vnni, dot_f32, l2sq_f32, dot_i8, l2sq_i8, dot_f32_many, l2sq_f32_many,
    neg_dot_f32_graph, l2sq_f32_graph, neg_dot_i8_graph, l2sq_i8_graph};

}  // namespace medsearch::vector::kernels
