// dense_eigen.cc: the DenseKernels of one CPU level (dense.h), in Eigen.
//
// Compiled once per level (CMakeLists.txt, medsearch_isa_<level>) with
//   -march=x86-64-vN -DMEDSEARCH_ISA_NS=isa_vN -DEigen=medsearch_eigen_vN
// so that this file's functions and every Eigen template it instantiates have
// names of their own level. The only symbol other files use is the table,
// MEDSEARCH_ISA_NS::kDense; tests/portable/check_symbols.py fails the test
// command if any object of a level defines a symbol another object could
// share (a weak or COMDAT symbol outside the level's namespaces).

// The encoder parallelises over batches and column blocks with oneTBB; Eigen
// stays single-threaded inside (it would use OpenMP if the build enabled it).
#define EIGEN_DONT_PARALLELIZE

#ifndef MEDSEARCH_ISA_NS
#error "compile with -DMEDSEARCH_ISA_NS=isa_<level> (CMakeLists.txt)"
#endif

#include "core/embed/kernels/dense.h"

#include <algorithm>
#include <cmath>

// GCC 12 reports Eigen's AVX-512 packet code (built on _mm512_undefined_*)
// as maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

namespace medsearch::embed::kernels::MEDSEARCH_ISA_NS {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using StridedMap = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using Index = Eigen::Index;

Index ix(size_t n) { return static_cast<Index>(n); }

void gemm_nt(size_t m, size_t n, size_t k, const float* a, const float* w, float* c) {
  MatrixMap(c, ix(m), ix(n)).noalias() = ConstMatrixMap(a, ix(m), ix(k)) * ConstMatrixMap(w, ix(n), ix(k)).transpose();
}

void gemm_nt_add(size_t m, size_t n, size_t k, const float* a, const float* w, float* c) {
  MatrixMap(c, ix(m), ix(n)).noalias() += ConstMatrixMap(a, ix(m), ix(k)) * ConstMatrixMap(w, ix(n), ix(k)).transpose();
}

// C(i, j) is the dot product of rows A(i) and W(j), both contiguous: a block
// of J rows of W is streamed once from memory and reused from L1 for every
// block of R rows of A, with R x J vector accumulators reduced at the end.
// (Eigen's GEMM copies, "packs", all of W into its panel layout on every
// call; for a few rows that copy costs as much as the arithmetic.)
using Packet = Eigen::internal::packet_traits<float>::type;
constexpr Index kPacket = Eigen::internal::packet_traits<float>::size;
// AVX-512 has 32 vector registers, SSE and AVX2 16: R x J accumulators + J + 1 loads.
constexpr int kBlockRows = kPacket >= 16 ? 4 : 3;
constexpr int kBlockCols = kPacket >= 16 ? 4 : 3;

template <int R>
EIGEN_ALWAYS_INLINE void dot_block(Index k, const float* a, const float* w, float* c, Index ldc) {
  using namespace Eigen::internal;
  constexpr int J = kBlockCols;
  Packet acc[R][J];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) acc[r][j] = pset1<Packet>(0.0f);
  }
  for (Index p = 0; p < k; p += kPacket) {
    Packet wp[J];
    for (int j = 0; j < J; ++j) wp[j] = ploadu<Packet>(w + j * k + p);
    for (int r = 0; r < R; ++r) {
      const Packet ap = ploadu<Packet>(a + r * k + p);
      for (int j = 0; j < J; ++j) acc[r][j] = pmadd(ap, wp[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) c[r * ldc + j] += predux(acc[r][j]);
  }
}

void small_gemm_nt_add(size_t m, size_t n, size_t k, const float* a, const float* w, float* c, size_t col_begin,
                       size_t col_end) {
  const Index M = ix(m), N = ix(n), K = ix(k);
  for (Index j = ix(col_begin); j < ix(col_end); j += kBlockCols) {
    const float* wj = w + j * K;
    for (Index i = 0; i < M; i += kBlockRows) {
      const float* ai = a + i * K;
      float* ci = c + i * N + j;
      switch (std::min<Index>(kBlockRows, M - i)) {
        case 4: dot_block<4>(K, ai, wj, ci, N); break;
        case 3: dot_block<3>(K, ai, wj, ci, N); break;
        case 2: dot_block<2>(K, ai, wj, ci, N); break;
        default: dot_block<1>(K, ai, wj, ci, N); break;
      }
    }
  }
}

void add_bias_layer_norm(float* data, size_t rows, size_t cols, const float* bias, const float* gamma_data,
                         const float* beta_data, float eps) {
  MatrixMap x(data, ix(rows), ix(cols));
  const Eigen::Map<const RowVector> gamma(gamma_data, ix(cols)), beta(beta_data, ix(cols));
  const float inv_h = 1.0f / static_cast<float>(cols);
  for (Index r = 0; r < x.rows(); ++r) {
    auto row = x.row(r);
    if (bias != nullptr) row += Eigen::Map<const RowVector>(bias, ix(cols));
    const float mean = row.sum() * inv_h;
    row.array() -= mean;
    const float inv_std = 1.0f / std::sqrt(row.squaredNorm() * inv_h + eps);
    row.array() = row.array() * inv_std * gamma.array() + beta.array();
  }
}

void gelu(float* data, size_t n) {
  Eigen::Map<Eigen::ArrayXf> f(data, ix(n));
  f = 0.5f * f * (1.0f + (f * static_cast<float>(M_SQRT1_2)).erf());
}

void attention(size_t T, size_t heads, size_t d, const float* qkv, size_t ld, float* ctx, size_t ldc,
               float* scores_data) {
  const Index t = ix(T), D = ix(d), H = ix(heads * d);
  MatrixMap scores(scores_data, t, t);
  for (Index h = 0; h < ix(heads); ++h) {
    const ConstStridedMap q(qkv + h * D, t, D, Eigen::OuterStride<>(ix(ld)));
    const ConstStridedMap k(qkv + H + h * D, t, D, Eigen::OuterStride<>(ix(ld)));
    const ConstStridedMap v(qkv + 2 * H + h * D, t, D, Eigen::OuterStride<>(ix(ld)));
    scores.noalias() = q * k.transpose();
    for (Index i = 0; i < t; ++i) {
      auto srow = scores.row(i);
      const float mx = srow.maxCoeff();
      srow = (srow.array() - mx).exp().matrix();
      srow *= 1.0f / srow.sum();
    }
    StridedMap out_h(ctx + h * D, t, D, Eigen::OuterStride<>(ix(ldc)));
    out_h.noalias() = scores * v;
  }
}

void pool(const float* x_data, size_t T, size_t H, bool cls, bool normalize, float* pooled_data, float* out) {
  const ConstMatrixMap x(x_data, ix(T), ix(H));
  Eigen::Map<RowVector> pooled(pooled_data, ix(H));
  if (cls) {
    pooled = x.row(0);
  } else {
    pooled = x.colwise().sum() / static_cast<float>(T);
  }
  const float denom = normalize ? std::max(pooled.norm(), 1e-12f) : 1.0f;  // torch F.normalize
  Eigen::Map<RowVector>(out, ix(H)) = pooled / denom;
}

}  // namespace

#if defined(__AVX512F__)
constexpr internal::CpuLevel kLevel = internal::CpuLevel::kV4;
#elif defined(__AVX2__)
constexpr internal::CpuLevel kLevel = internal::CpuLevel::kV3;
#else
constexpr internal::CpuLevel kLevel = internal::CpuLevel::kV2;
#endif

extern const DenseKernels kDense = {kLevel,
                                    gemm_nt,
                                    gemm_nt_add,
                                    small_gemm_nt_add,
                                    static_cast<size_t>(kBlockCols),
                                    static_cast<size_t>(kPacket),
                                    add_bias_layer_norm,
                                    gelu,
                                    attention,
                                    pool};

}  // namespace medsearch::embed::kernels::MEDSEARCH_ISA_NS
