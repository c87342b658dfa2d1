// dense.h: the encoder's float32 kernels (Eigen), one table per CPU level.
//
// The table holds everything of the forward pass that Eigen vectorises: the
// dense layers' GEMM (Eigen's, which packs its operands, for batches; one
// that reads the weights in place for a few rows, a query), LayerNorm, GELU,
// per-text attention, pooling. FlatIndex's batched search uses gemm_nt too.
// dense_eigen.cc is compiled once per level (CMakeLists.txt: the object
// libraries medsearch_isa_<level>) with that level's -march, in a namespace of
// its own (isa_v2, isa_v3, isa_v4) and with Eigen renamed (medsearch_eigen_v3,
// ...): no Eigen template is instantiated twice under one name, so the linker
// cannot keep one level's copy for another's callers. Everything else in the
// library is compiled for the baseline (x86-64-v2) and calls through the
// table that dense_kernels() chose from cpu_level() (core/internal/cpu.h).
//
// Matrices are row-major and contiguous unless a leading dimension says
// otherwise. Buffers that a kernel reduces over (LayerNorm's rows, pooling)
// should start on a 64-byte boundary: Eigen peels unaligned leading elements,
// so the summation order, and the last bit, follows the address.
// Thread-safe: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/internal/cpu.h"

namespace medsearch::embed::kernels {

struct DenseKernels {
  internal::CpuLevel level;
  // C (m x n) = A (m x k) W^T, W (n x k): a linear layer's [out, in] weights.
  void (*gemm_nt)(size_t m, size_t n, size_t k, const float* a, const float* w, float* c);
  // C += A W^T.
  void (*gemm_nt_add)(size_t m, size_t n, size_t k, const float* a, const float* w, float* c);
  // C(:, col_begin..col_end) += A W(col_begin..col_end, :)^T without packing W,
  // for m up to a few dozen rows. Requires k % small_depth == 0 and col_begin,
  // col_end multiples of small_cols; other columns are not touched, so
  // disjoint column ranges may run on different threads (with identical
  // results: a column's sums do not depend on the split).
  void (*small_gemm_nt_add)(size_t m, size_t n, size_t k, const float* a, const float* w, float* c,
                            size_t col_begin, size_t col_end);
  size_t small_cols;
  size_t small_depth;
  // Every row r of x (rows x cols): x_r = LayerNorm(x_r + bias) with gamma,
  // beta; bias may be null.
  void (*add_bias_layer_norm)(float* x, size_t rows, size_t cols, const float* bias, const float* gamma,
                              const float* beta, float eps);
  // x = 0.5 x (1 + erf(x / sqrt 2)), n floats (exact GELU).
  void (*gelu)(float* x, size_t n);
  // Self-attention of one text of T tokens, every head: ctx_h = softmax(q_h
  // k_h^T) v_h, q already scaled by 1/sqrt(d). qkv: T rows of [q | k | v]
  // (3 x heads x d floats, row stride ld); ctx: T rows of heads x d (stride
  // ldc), overwritten; scores: T x T floats of scratch.
  void (*attention)(size_t T, size_t heads, size_t d, const float* qkv, size_t ld, float* ctx, size_t ldc,
                    float* scores);
  // pooled = x's first row (cls) or the mean of its T rows (H wide); out =
  // pooled / max(|pooled|, 1e-12) when normalize, else pooled.
  void (*pool)(const float* x, size_t T, size_t H, bool cls, bool normalize, float* pooled, float* out);
};

// The table of one level, or nullptr when cpu_level() is below it (tests and
// benchmarks compare the levels). AMX has no float32 table of its own: it
// gets x86-64-v4's.
const DenseKernels* dense_kernels_for(internal::CpuLevel level);

// The table for cpu_level(), chosen once.
const DenseKernels& dense_kernels();

}  // namespace medsearch::embed::kernels
