// query_cache.cc: the LRU cache of query vectors (index_impl.h).
#include "core/index/index_impl.h"

namespace medsearch::internal {

Result<std::vector<float>> QueryCache::get(std::string_view query, const embed::Embedder& embedder) {
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(query);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  // Embedded without the lock: concurrent queries embed in parallel (the same
  // text twice, at worst, the first time it is asked).
  std::vector<float> v(embedder.dim());
  const std::string_view views[] = {query};
  MEDSEARCH_RETURN_IF_ERROR(embedder.embed(views, embed::TextKind::kQuery, v));
  std::lock_guard lock(mu_);
  if (map_.find(query) == map_.end()) {
    lru_.emplace_front(std::string(query), v);
    map_.emplace(lru_.front().first, lru_.begin());
    if (lru_.size() > capacity_) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }
  return v;
}

}  // namespace medsearch::internal
