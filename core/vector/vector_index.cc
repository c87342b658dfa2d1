#include <medsearch/vector_index.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/vector/flat_index.h"
#include "core/vector/hnsw_index.h"
#include "core/vector/index_file.h"
#include "core/vector/kernels/distance.h"
#include "core/vector/vector_index_inl.h"

namespace medsearch::vector {

Result<std::unique_ptr<VectorIndex>> make_vector_index(const IndexOptions& options) {
  MEDSEARCH_RETURN_IF_ERROR(internal::check_options(options));
  if (options.kind == IndexKind::kFlat) return std::unique_ptr<VectorIndex>(new FlatIndex(options));
  return std::unique_ptr<VectorIndex>(new HnswIndex(options));
}

Result<std::unique_ptr<VectorIndex>> load_vector_index(const std::filesystem::path& path) {
  auto file = internal::open_verified(path);
  if (!file) return file.status();
  if (file->kind == IndexKind::kFlat) {
    auto flat = FlatIndex::load(file->file, path.string());
    if (!flat) return flat.status();
    return std::unique_ptr<VectorIndex>(std::move(flat).value());
  }
  auto hnsw = HnswIndex::load(file->file, path.string());
  if (!hnsw) return hnsw.status();
  return std::unique_ptr<VectorIndex>(std::move(hnsw).value());
}

namespace internal {

Status check_options(const IndexOptions& o) {
  if (o.dim == 0 || o.dim > kernels::kMaxDim) {
    return Status::invalid_argument("dim must be in [1, " + std::to_string(kernels::kMaxDim) + "], got " +
                                    std::to_string(o.dim));
  }
  if (o.metric > Metric::kCosine) return Status::invalid_argument("unknown metric");
  if (o.kind > IndexKind::kHnsw) return Status::invalid_argument("unknown index kind");
  if (o.dtype > VectorDType::kInt8) return Status::invalid_argument("unknown dtype");
  if (o.kind == IndexKind::kFlat && o.dtype != VectorDType::kFloat32) {
    return Status::invalid_argument("the flat index is exact and stores float32; use dtype int8 with kind hnsw");
  }
  if (o.kind == IndexKind::kHnsw && (o.M < 2 || o.M > 2048)) {
    return Status::invalid_argument("M must be in [2, 2048], got " + std::to_string(o.M));
  }
  if (o.kind == IndexKind::kHnsw && o.ef_construction < 1) return Status::invalid_argument("ef_construction must be >= 1");
  return Status::ok();
}

Status check_rows(MatrixView rows, size_t dim, const char* what) {
  if (rows.dim != dim) {
    return Status::invalid_argument(std::string(what) + " have dimension " + std::to_string(rows.dim) +
                                    ", the index has " + std::to_string(dim));
  }
  if (rows.rows > 0 && rows.data == nullptr) return Status::invalid_argument(std::string(what) + ": null data");
  for (size_t i = 0; i < rows.rows; ++i) {
    const float* r = rows.row(i);
    // NaN and infinity are the floats whose exponent bits are all ones. An OR
    // over integer tests vectorises; a float sum (r[j] * 0 accumulates NaN)
    // is one dependent add per component, ~0.5 us per 384-d query.
    uint32_t bad = 0;
    for (size_t j = 0; j < dim; ++j) bad |= (std::bit_cast<uint32_t>(r[j]) & 0x7f800000u) == 0x7f800000u;
    if (bad) {
      return Status::invalid_argument(std::string(what) + " row " + std::to_string(i) + " contains NaN or infinity");
    }
  }
  return Status::ok();
}

Status check_search(MatrixView queries, size_t dim, const SearchParams& p, std::span<DocId> ids,
                    std::span<float> scores) {
  if (p.k == 0) return Status::invalid_argument("k must be at least 1");
  MEDSEARCH_RETURN_IF_ERROR(check_rows(queries, dim, "queries"));
  const size_t need = queries.rows * p.k;
  if (ids.size() < need || scores.size() < need) {
    return Status::invalid_argument("output spans hold fewer than queries x k = " + std::to_string(need) + " entries");
  }
  return Status::ok();
}

std::vector<float> prepare_rows(MatrixView rows, Metric metric) {
  std::vector<float> out(rows.rows * rows.dim);
  for (size_t i = 0; i < rows.rows; ++i) {
    const float* r = rows.row(i);
    float* o = out.data() + i * rows.dim;
    double norm = 0.0;
    for (size_t j = 0; j < rows.dim; ++j) norm += double{r[j]} * r[j];
    const float inv = (metric == Metric::kCosine && norm > 0.0) ? static_cast<float>(1.0 / std::sqrt(norm)) : 1.0f;
    for (size_t j = 0; j < rows.dim; ++j) o[j] = r[j] * inv;
  }
  return out;
}

void fill_empty(std::span<DocId> ids, std::span<float> scores) {
  std::fill(ids.begin(), ids.end(), kInvalidDocId);
  std::fill(scores.begin(), scores.end(), std::numeric_limits<float>::quiet_NaN());
}

}  // namespace internal
}  // namespace medsearch::vector
