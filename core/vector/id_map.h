// id_map.h: doc id -> slot, as a sorted array of pairs (8 bytes per entry,
// no per-node allocations, unlike std::unordered_map's ~40).
//
// find() is a binary search. insert() sorts the new batch and merges it in
// (O(n + b log b)); erase() is one O(n) pass per batch. Adds and removes come
// in batches, so this is cheaper overall than a hash map and half its memory.
// Thread-compatible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <medsearch/vector_types.h>

namespace medsearch::vector::internal {

class IdMap {
 public:
  using Entry = std::pair<DocId, uint32_t>;

  std::optional<uint32_t> find(DocId id) const {
    auto it = std::lower_bound(v_.begin(), v_.end(), id, [](const Entry& e, DocId x) { return e.first < x; });
    if (it == v_.end() || it->first != id) return std::nullopt;
    return it->second;
  }
  bool contains(DocId id) const { return find(id).has_value(); }

  // For visiting ids in increasing order (a Roaring bitmap's order): finds
  // `id` searching forward from *pos with a galloping search, and leaves *pos
  // there for the next, larger id. Amortised O(log gap) instead of O(log n).
  std::optional<uint32_t> find_from(size_t* pos, DocId id) const {
    size_t lo = *pos, step = 1, hi = lo;
    while (hi < v_.size() && v_[hi].first < id) {
      lo = hi + 1;
      hi += step;
      step *= 2;
    }
    hi = std::min(hi, v_.size());
    auto it = std::lower_bound(v_.begin() + static_cast<ptrdiff_t>(lo), v_.begin() + static_cast<ptrdiff_t>(hi), id,
                               [](const Entry& e, DocId x) { return e.first < x; });
    *pos = static_cast<size_t>(it - v_.begin());
    if (it == v_.end() || it->first != id) return std::nullopt;
    return it->second;
  }

  // `entries` must not contain ids already present.
  void insert(std::vector<Entry> entries) {
    std::sort(entries.begin(), entries.end());
    const size_t old = v_.size();
    v_.insert(v_.end(), entries.begin(), entries.end());
    if (old > 0 && !entries.empty() && v_[old - 1].first > v_[old].first) {
      std::inplace_merge(v_.begin(), v_.begin() + static_cast<ptrdiff_t>(old), v_.end());
    }
  }
  // Removes the given ids (present ones); returns the slots they had.
  std::vector<uint32_t> erase(std::span<const DocId> ids) {
    std::vector<DocId> sorted(ids.begin(), ids.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<uint32_t> slots;
    auto out = v_.begin();
    size_t j = 0;
    for (auto it = v_.begin(); it != v_.end(); ++it) {
      while (j < sorted.size() && sorted[j] < it->first) ++j;
      if (j < sorted.size() && sorted[j] == it->first) {
        slots.push_back(it->second);
      } else {
        *out++ = *it;
      }
    }
    v_.erase(out, v_.end());
    return slots;
  }
  void clear() { v_.clear(); }
  void reserve(size_t n) { v_.reserve(n); }
  size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  const std::vector<Entry>& entries() const { return v_; }
  size_t memory_bytes() const { return v_.capacity() * sizeof(Entry); }

 private:
  std::vector<Entry> v_;
};

}  // namespace medsearch::vector::internal
