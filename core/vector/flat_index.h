// flat_index.h: exact k-NN by brute force. The ground truth in tests, the
// right index for small corpora, and the exact stage for selective filters.
//
// Storage: float32 rows in a VectorStore (heap after add, mapped in place
// after load), slot -> doc id, a sorted doc id -> slot map, tombstones.
// Search: one query scans the rows with the SIMD one-to-many kernel, split
// over row blocks with tbb; batches of >= kGemmMinQueries queries use the
// Eigen GEMM of the CPU's level (embed/kernels/dense.h) over query x row blocks. The k winners are
// rescored with the SIMD kernel, so scores do not depend on the path.
// A filter with fewer than 1/kFilterScanRatio of the rows allowed is walked
// id by id (binary search into the id map); larger ones are checked per row.
// Cost: O(n dim) per query. Memory: 4 dim + 13 bytes per row.
// Thread safety: see vector_index.h.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include <medsearch/vector_index.h>

#include "core/vector/id_map.h"
#include "core/vector/rw_lock.h"
#include "core/vector/topk.h"
#include "core/vector/vector_store.h"

namespace medsearch::vector {

class FlatIndex final : public VectorIndex {
 public:
  static constexpr size_t kGemmMinQueries = 8;
  static constexpr size_t kFilterScanRatio = 8;

  explicit FlatIndex(const IndexOptions& options);
  static Result<std::unique_ptr<FlatIndex>> load(std::shared_ptr<const medsearch::internal::MappedFile> file,
                                                 const std::string& name);

  const IndexOptions& options() const override { return opt_; }
  size_t size() const override;
  bool contains(DocId id) const override;
  DocId next_doc_id() const override;
  Status add(MatrixView rows, std::span<const DocId> ids) override;
  Status search(MatrixView queries, const SearchParams& params, std::span<DocId> out_ids,
                std::span<float> out_scores) const override;
  Status remove(std::span<const DocId> ids) override;
  Status compact() override;
  Status save(const std::filesystem::path& path) const override;
  size_t memory_bytes() const override;
  size_t mapped_bytes() const override;

 private:
  void search_one(const float* q, const SearchParams& p, DocId* out_ids, float* out_scores) const;
  void search_gemm(const float* q, size_t nq, const SearchParams& p, DocId* out_ids, float* out_scores) const;
  void finish(const float* q, internal::TopK& top, uint32_t k, DocId* ids, float* scores) const;
  void scan(const float* q, size_t begin, size_t end, const IdFilter* filter, internal::TopK& top) const;
  float exact_dist(const float* q, uint32_t slot) const;

  IndexOptions opt_;
  // Lock order: write_mu_, then mu_.
  std::mutex write_mu_;             // serialises add / remove / compact
  mutable internal::RwLock mu_;     // guards everything below (shared: search)
  VectorStore rows_;
  std::vector<float> sq_norms_;     // L2 only: |row|^2 for the GEMM path
  std::vector<DocId> slot_ids_;
  std::vector<uint8_t> deleted_;    // per slot
  size_t live_ = 0;
  DocId next_id_ = 0;
  internal::IdMap ids_;             // live doc id -> slot
};

}  // namespace medsearch::vector
