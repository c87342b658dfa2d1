// The Eigen part of FlatIndex (many-to-many scoring). Compiled with the
// project-wide MEDSEARCH_EIGEN_ARCH like every Eigen TU (see CMakeLists.txt).
#include <Eigen/Core>

#include "core/vector/flat_index.h"

namespace medsearch::vector::internal {

void gemm_dot(const float* q, size_t nq, const float* rows, size_t nr, size_t dim, float* out) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMajor> Q(q, static_cast<Eigen::Index>(nq), static_cast<Eigen::Index>(dim));
  Eigen::Map<const RowMajor> R(rows, static_cast<Eigen::Index>(nr), static_cast<Eigen::Index>(dim));
  Eigen::Map<RowMajor> O(out, static_cast<Eigen::Index>(nq), static_cast<Eigen::Index>(nr));
  O.noalias() = Q * R.transpose();
}

}  // namespace medsearch::vector::internal
