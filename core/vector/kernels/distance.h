// distance.h: distance kernels, one translation unit per ISA level, chosen
// once at startup.
//
// Kernels are free functions grouped by call shape:
//   one-to-one   dot / l2sq of two rows (float32 or int8);
//   one-to-many  a query against n contiguous rows (FlatIndex, rescoring);
//   graph        hnswlib DISTFUNC-shaped adapters (smaller = closer) whose
//                `param` points to a size_t dimension.
// Many-to-many (batched brute force) is the encoder's GEMM (embed/kernels/dense.h).
//
// Each table lives in its own TU compiled with its own flags, in the object
// library of its CPU level (CMakeLists.txt: distance_scalar.cc is baseline
// code; distance_avx2.cc is in medsearch_isa_v3, -march=x86-64-v3;
// distance_avx512.cc and distance_avx512_vnni.cc (+ -mavx512vnni) in
// medsearch_isa_v4, -march=x86-64-v4). The level comes from cpu_level()
// (core/internal/cpu.h), as every kernel table's does. Those TUs define
// everything with internal linkage and use no inline library templates, so no
// AVX-512 code can leak into baseline code through the linker
// (tests/portable/check_symbols.py checks it).
//
// int8 kernels require components in [-127, 127] (the quantizer guarantees it;
// the VNNI dot product relies on |x| fitting in an unsigned byte) and
// dim <= kMaxDim so that int32 accumulators cannot overflow.
// Thread-safe: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>

namespace medsearch::vector::kernels {

inline constexpr size_t kMaxDim = 32768;  // 254^2 * 32768 < 2^31

enum class IsaLevel : uint8_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };
const char* isa_name(IsaLevel level);

using GraphDistance = float (*)(const void* a, const void* b, const void* dim_ptr);

struct DistanceKernels {
  IsaLevel level;
  float (*dot_f32)(const float* a, const float* b, size_t dim);
  float (*l2sq_f32)(const float* a, const float* b, size_t dim);
  int32_t (*dot_i8)(const int8_t* a, const int8_t* b, size_t dim);
  int32_t (*l2sq_i8)(const int8_t* a, const int8_t* b, size_t dim);
  // out[i] = dot(q, rows + i * dim) / l2sq(...), i < n.
  void (*dot_f32_many)(const float* q, const float* rows, size_t n, size_t dim, float* out);
  void (*l2sq_f32_many)(const float* q, const float* rows, size_t n, size_t dim, float* out);
  // Graph distances: -dot (ip/cosine) or l2sq, as float, smaller = closer.
  GraphDistance neg_dot_f32;
  GraphDistance l2sq_f32_graph;
  GraphDistance neg_dot_i8;
  GraphDistance l2sq_i8_graph;
};

// The best level this CPU (and OS) supports, detected once.
IsaLevel detected_isa();
// The kernels for the detected level, chosen once at first use.
const DistanceKernels& best_kernels();
// The kernels of one level, or nullptr if this CPU cannot run them
// (tests and benchmarks iterate over every level).
const DistanceKernels* kernels_for(IsaLevel level);

}  // namespace medsearch::vector::kernels
