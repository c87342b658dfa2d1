// vector_index.h: k-NN over fixed-dimension float rows ("here is a query
// vector, give me k candidate ids").
//
// Two implementations: FlatIndex (exact; ground truth, small corpora,
// selective filters) and HnswIndex (hnswlib graph, float32 or int8 + exact
// rescoring). Create with make_vector_index(), reopen with load_vector_index().
//
// Shapes: rows and queries are n x dim, row-major (MatrixView). Results are
// n x k, row-major, best first; unfilled slots (fewer than k live or allowed
// vectors) are kInvalidDocId with a NaN score.
// Scores: inner product / cosine similarity (higher is better) or squared L2
// distance (lower is better), always exact float32 unless an int8 search is
// run with rescore = 0.
//
// Errors (Status, nothing is modified on failure unless stated):
//   kInvalidArgument  wrong dim, NaN/inf components, k == 0, output spans too
//                     small, duplicate or already-present ids on add, unknown
//                     ids on remove, id == kInvalidDocId;
//   kNotFound / kCorrupt / kIoError  from load and save.
//
// Thread safety (all implementations): thread-safe.
//   search() runs concurrently with other search() calls (shared lock).
//   add(), remove() and compact() serialise among themselves; add() inserts
//   in chunks of kAddChunk rows, taking the exclusive lock per chunk, so
//   searches interleave with a long add and may see part of it. remove()
//   is atomic. compact() rebuilds beside the live index (searches continue)
//   and swaps under the exclusive lock.
//   Batched calls run tbb::parallel_for in the caller's task_arena (inside
//   this_task_arena::isolate while a lock is held); the core creates no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include <medsearch/status.h>
#include <medsearch/vector_types.h>

namespace medsearch::vector {

struct IndexOptions {
  size_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  IndexKind kind = IndexKind::kHnsw;
  VectorDType dtype = VectorDType::kFloat32;  // kInt8: HnswIndex only
  uint32_t M = 16;                            // graph degree (2M on level 0)
  uint32_t ef_construction = 200;
  uint32_t seed = 100;
  // int8: keep a float32 copy of every row for exact rescoring. It lives in a
  // file-backed mapping (temp file until save, the index file after load),
  // outside memory_bytes(). false: no copy, no rescoring.
  bool keep_float32 = true;
};

inline constexpr size_t kAddChunk = 8192;

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  virtual const IndexOptions& options() const = 0;
  size_t dim() const { return options().dim; }
  // Live vectors (added and not removed).
  virtual size_t size() const = 0;
  virtual bool contains(DocId id) const = 0;
  // One more than the largest id ever added (0 when empty): the first id
  // add() assigns when called without ids.
  virtual DocId next_doc_id() const = 0;

  // rows: n x dim. ids: n distinct new ids, or empty to assign
  // next_doc_id() .. next_doc_id() + n - 1. Cost: O(n log N * ef_construction)
  // for HNSW, O(n dim) for flat.
  [[nodiscard]] virtual Status add(MatrixView rows, std::span<const DocId> ids) = 0;

  // queries: n x dim; out_ids / out_scores: at least n * params.k each.
  [[nodiscard]] virtual Status search(MatrixView queries, const SearchParams& params, std::span<DocId> out_ids,
                                      std::span<float> out_scores) const = 0;

  // Marks ids removed (searches skip them at once); memory is reclaimed by
  // compact(). All ids must be present.
  [[nodiscard]] virtual Status remove(std::span<const DocId> ids) = 0;
  [[nodiscard]] virtual Status compact() = 0;

  // Crash-safe write (core/vector/index_file.h). Runs under the shared lock.
  [[nodiscard]] virtual Status save(const std::filesystem::path& path) const = 0;

  // Anonymous memory held by the index (graph, codes, id maps, capacity
  // included). File-backed float32 rows are reported by mapped_bytes().
  virtual size_t memory_bytes() const = 0;
  virtual size_t mapped_bytes() const = 0;
};

[[nodiscard]] Result<std::unique_ptr<VectorIndex>> make_vector_index(const IndexOptions& options);
// Verifies and opens a file written by save(). Float32 rows (FlatIndex rows,
// int8 rescoring rows) are used in place from the mapping; the HNSW graph is
// copied to the heap. The file may be replaced or deleted afterwards (the
// mapping keeps the old inode alive).
[[nodiscard]] Result<std::unique_ptr<VectorIndex>> load_vector_index(const std::filesystem::path& path);


}  // namespace medsearch::vector

