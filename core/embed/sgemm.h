// sgemm.h: the encoder's GEMM on its own, for the benchmarks. Not installed.
#pragma once

namespace medsearch::embed {

// C = A * W^T for row-major A (m x k), W (n x k: a linear layer's [out, in]
// weights) and C (m x n), single-threaded, with the same Eigen GEMM, operand
// layout and ISA level as the encoder's layers for big batches. It is the
// roofline of bench/embed/encoder_bench.cc (a bench translation unit must not
// instantiate Eigen itself: it is not compiled for MEDSEARCH_EIGEN_ARCH).
void eigen_sgemm(int m, int n, int k, const float* a, const float* w, float* c);

}  // namespace medsearch::embed
