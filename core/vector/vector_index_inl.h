// Template definitions for vector_index.h.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

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
