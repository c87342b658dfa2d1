// types.h: the vocabulary shared by every vector index (ids, metrics, views,
// per-call search parameters, id filters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

struct roaring_bitmap_s;  // CRoaring; only core/vector/*.cc include <roaring/roaring.h>

namespace medsearch::vector {

// A passage number. uint32: ids must satisfy 0 <= id < kInvalidDocId (2^32 - 1);
// kInvalidDocId marks an unfilled result slot (-1 in Python).
using DocId = uint32_t;
inline constexpr DocId kInvalidDocId = std::numeric_limits<DocId>::max();

// kInnerProduct: score = <q, x>, higher is better.
// kCosine: vectors and queries are normalised on the way in; score = cosine.
// kL2: score = squared Euclidean distance, lower is better.
enum class Metric : uint8_t { kInnerProduct = 0, kL2 = 1, kCosine = 2 };
// How the graph stores vectors. kInt8: one signed byte per component
// (symmetric, scale chosen from the data), searched with integer kernels and
// rescored exactly in float32.
enum class VectorDType : uint8_t { kFloat32 = 0, kInt8 = 1 };
enum class IndexKind : uint8_t { kFlat = 0, kHnsw = 1 };

inline bool higher_is_better(Metric m) { return m != Metric::kL2; }

// A borrowed row-major matrix: component j of row i is data[i * stride + j].
// The owner must keep `data` alive for the duration of the call it is passed to.
struct MatrixView {
  const float* data = nullptr;
  size_t rows = 0;
  size_t dim = 0;
  size_t stride = 0;  // in floats; 0 means `dim`
  const float* row(size_t i) const { return data + i * (stride ? stride : dim); }
};

// A set of allowed doc ids (a Roaring bitmap). Built once from passage
// metadata (audience, cancer type, corpus, date) and reused across calls.
// Thread-compatible: const methods may run concurrently.
class IdFilter {
 public:
  IdFilter();
  explicit IdFilter(std::span<const DocId> ids);
  IdFilter(IdFilter&&) noexcept;
  IdFilter& operator=(IdFilter&&) noexcept;
  ~IdFilter();

  void add(DocId id);
  void add_many(std::span<const DocId> ids);
  bool contains(DocId id) const;
  uint64_t cardinality() const;
  std::vector<DocId> to_vector() const;
  // The underlying bitmap, for the search loops in core/vector/*.cc.
  const roaring_bitmap_s* raw() const { return bitmap_; }

 private:
  roaring_bitmap_s* bitmap_;
};

// How a filtered HNSW search runs: kAuto picks by selectivity
// (HnswIndex::use_exact_filter); kGraph / kExact force one path (benchmarks).
enum class FilterMode : uint8_t { kAuto = 0, kGraph = 1, kExact = 2 };

// Search knobs travel with the call, never on the index, so concurrent
// searches with different values are safe.
struct SearchParams {
  uint32_t k = 10;
  // Candidate list size of the graph search; 0 = index default (max(k, 64)).
  // Ignored by FlatIndex. Values below k are raised to k.
  uint32_t ef = 0;
  // Allowed ids (borrowed for the duration of the call); nullptr = all.
  const IdFilter* filter = nullptr;
  // int8 indexes: how many of the best graph candidates are rescored exactly
  // in float32 (at least k). -1 = max(4k, 40); 0 = no rescoring (scores are
  // then int8 approximations).
  int32_t rescore = -1;
  FilterMode filter_mode = FilterMode::kAuto;
};

}  // namespace medsearch::vector
