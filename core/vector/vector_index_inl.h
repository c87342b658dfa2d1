// vector_index_inl.h: what the vector indexes share inside the library:
// argument checks, id assignment, row preparation (vector_index.cc). Not installed.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <medsearch/vector_index.h>

namespace medsearch::vector {

namespace internal {
// Shared argument checks (vector_index.cc).
Status check_options(const IndexOptions& o);
Status check_rows(MatrixView rows, size_t dim, const char* what);
Status check_search(MatrixView queries, size_t dim, const SearchParams& p, std::span<DocId> ids,
                    std::span<float> scores);
// ids for add(): validates them (distinct, != kInvalidDocId, `present` false)
// or assigns a sequential range; returns the ids to use.
template <typename Present>
Result<std::vector<DocId>> resolve_ids(std::span<const DocId> ids, size_t n, DocId next, Present present);
// Copies rows, normalising them when the metric is cosine (zero rows stay zero).
std::vector<float> prepare_rows(MatrixView rows, Metric metric);
void fill_empty(std::span<DocId> ids, std::span<float> scores);
// Turns an internal distance (smaller is closer) into the reported score.
inline float score_from_dist(float dist, Metric m) { return m == Metric::kL2 ? dist : -dist; }
}  // namespace internal

}  // namespace medsearch::vector

namespace medsearch::vector::internal {

template <typename Present>
Result<std::vector<DocId>> resolve_ids(std::span<const DocId> ids, size_t n, DocId next, Present present) {
  std::vector<DocId> out;
  if (ids.empty()) {
    if (uint64_t{next} + n >= uint64_t{kInvalidDocId}) {
      return Status::invalid_argument("cannot assign " + std::to_string(n) + " more ids: ids must stay below 2^32 - 1");
    }
    out.resize(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<DocId>(next + i);
    return out;
  }
  if (ids.size() != n) {
    return Status::invalid_argument("got " + std::to_string(ids.size()) + " ids for " + std::to_string(n) + " rows");
  }
  out.assign(ids.begin(), ids.end());
  std::vector<DocId> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] == kInvalidDocId) return Status::invalid_argument("id 4294967295 (2^32 - 1) is reserved");
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      return Status::invalid_argument("id " + std::to_string(sorted[i]) + " appears twice in one add()");
    }
    if (present(sorted[i])) {
      return Status::invalid_argument("id " + std::to_string(sorted[i]) + " is already in the index (remove it first)");
    }
  }
  return out;
}

}  // namespace medsearch::vector::internal
