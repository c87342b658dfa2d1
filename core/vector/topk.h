// topk.h: bounded selection of the k smallest distances (a max-heap of size k).
// Thread-compatible; one per query and thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace medsearch::vector::internal {

// `dist`: smaller is closer. `id`: a slot or doc id, depending on the caller.
struct Neighbor {
  float dist;
  uint32_t id;
  friend bool operator<(const Neighbor& a, const Neighbor& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
  }
};

class TopK {
 public:
  explicit TopK(size_t k = 0) : k_(k) { heap_.reserve(k + 1); }
  void reset(size_t k) {
    k_ = k;
    heap_.clear();
    heap_.reserve(k + 1);
  }
  // The distance a candidate must beat to enter.
  float threshold() const { return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().dist; }
  void push(float dist, uint32_t id) {
    if (heap_.size() < k_) {
      heap_.push_back({dist, id});
      std::push_heap(heap_.begin(), heap_.end());
    } else if (Neighbor{dist, id} < heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {dist, id};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }
  void merge(const TopK& other) {
    for (const auto& n : other.heap_) push(n.dist, n.id);
  }
  // Best first; empties the heap.
  std::vector<Neighbor> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end());
    std::vector<Neighbor> out;
    out.swap(heap_);
    return out;
  }
  size_t size() const { return heap_.size(); }

 private:
  size_t k_;
  std::vector<Neighbor> heap_;
};

}  // namespace medsearch::vector::internal
