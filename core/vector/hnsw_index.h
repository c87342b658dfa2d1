// hnsw_index.h: approximate k-NN on hnswlib's HierarchicalNSW graph, with our
// kernels, float32 or int8 vectors, per-call parameters and filters.
//
// What we keep from hnswlib (system package 0.6.2, never exposed: only
// hnsw_index.cc includes it): the graph layout and its insertion
// (addPoint, which is safe to run in parallel with itself). What we bring:
//   * SpaceInterface implementations over core/vector/kernels (float32
//     -dot / L2, int8 -dot / L2 with VNNI), chosen once at startup;
//   * our own search loop over the graph's public data, with ef, filter and
//     rescoring passed per call (hnswlib keeps ef_ on the object: setEf races
//     with concurrent searches) and thread-local scratch heaps; it starts
//     loading all of an expansion's unvisited neighbours before scoring any
//     (hnswlib prefetches one line of the next one), and the level-0 block
//     asks for transparent huge pages (fewer TLB misses per node);
//   * int8 storage: the graph holds one byte per component (one global
//     scale, see quantizer.h); the best candidates are rescored exactly
//     against float32 rows that live in a file-backed mapping (VectorStore
//     spill / the index file);
//   * filters: a Roaring bitmap of allowed ids. The graph walk skips
//     disallowed nodes when choosing results but still traverses them; when
//     the filter allows few vectors we scan them exactly instead (see
//     use_exact_filter() in hnsw_index.cc for the measured crossover);
//   * deletes: hnswlib's mark (skipped by searches) + compact(), which
//     rebuilds the graph from the live vectors.
//
// Memory per vector (M = 16, dim d), all counted by memory_bytes():
// float32 4d + ~167 bytes, int8 d + ~167 bytes (level-0 links 132, label 8,
// level 4, upper-list pointer 8, upper-level links ~5, one visited list 2, id
// map 8). hnswlib's insertion locks (a 40-byte mutex per node slot and 2.6 MB
// of update mutexes) exist only while add() inserts: freed after an add of at
// least 1/8 of the index, after compact() and after load(), re-created by the
// next add() (an index grown by many small adds keeps them; see add()).
// Measured by bench/vector_compare.py at 341k x 100 (GloVe): int8 271,
// float32 571 bytes per vector (hnswlib's file: 549). The int8 index's
// float32 rescoring rows (4d bytes) live in a file-backed mapping
// (mapped_bytes(): an unlinked temp file until save, the index file after
// load); the kernel can write them back and evict them, and only the ~40
// rows rescored per query are touched. Freed memory (the locks, add()'s
// temporaries) goes back to malloc, which may keep it for reuse instead of
// returning it to the system: at 100k x 100 int8 the process grew by 354
// bytes per vector over a bulk add, 264 after malloc_trim(0).
// hnswlib's own float32 index costs
// 4d + ~149 bytes in its file (549 at d = 100) and ~4d + 260 in memory (it
// also keeps its locks and a label hash map, ~40 bytes per vector, which we
// release after every add chunk: labels are our doc ids, and the doc id ->
// node map is a sorted array instead), so int8 is <= 0.5x of even its file
// size from d ~ 100 up.
//
// Ids are hnswlib labels: a doc id's node is found via IdMap; a node's doc id
// is its label.
//
// Thread safety: see vector_index.h (search shared, add/remove/compact
// exclusive per chunk). hnswlib's search is not safe against concurrent
// inserts, which is why add() takes the exclusive lock. Within one add(),
// rows are inserted in parallel with hnswlib's per-node locks; hnswlib 0.6.2
// has two benign races there (its level RNG and the entry-point read), which
// is why the TSan test drives add() with one thread per call.
#pragma once

#include <memory>
#include <string>

#include <medsearch/vector_index.h>

namespace medsearch::internal {
class MappedFile;  // core/internal/mapped_file.h (not installed)
}  // namespace medsearch::internal

namespace medsearch::vector {

class HnswIndex final : public VectorIndex {
 public:
  explicit HnswIndex(const IndexOptions& options);
  ~HnswIndex() override;
  static Result<std::unique_ptr<HnswIndex>> load(std::shared_ptr<const medsearch::internal::MappedFile> file,
                                                 const std::string& name);

  const IndexOptions& options() const override;
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

  // Default ef when SearchParams::ef == 0: max(k, kDefaultEf).
  static constexpr uint32_t kDefaultEf = 64;
  // Whether a filter allowing `allowed` of `live` vectors is answered by an
  // exact scan (exposed for the benchmark that measures the crossover).
  static bool use_exact_filter(uint64_t allowed, uint64_t live, uint32_t ef, uint32_t M = 16);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medsearch::vector
