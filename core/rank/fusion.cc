#include "core/rank/fusion.h"

#include <algorithm>
#include <unordered_map>

namespace medsearch::rank {

void sort_ranking(std::vector<ScoredPassage>* ranking) {
  std::sort(ranking->begin(), ranking->end(), [](const ScoredPassage& x, const ScoredPassage& y) {
    return x.score > y.score || (x.score == y.score && x.passage < y.passage);
  });
}

namespace {

std::vector<ScoredPassage> to_ranking(const std::unordered_map<uint32_t, float>& scores) {
  std::vector<ScoredPassage> out;
  out.reserve(scores.size());
  for (const auto& [p, s] : scores) out.push_back({p, s});
  sort_ranking(&out);
  return out;
}

}  // namespace

std::vector<ScoredPassage> rrf_fuse(std::span<const std::span<const ScoredPassage>> rankings, float k) {
  std::unordered_map<uint32_t, float> fused;
  for (const auto& ranking : rankings) {
    for (size_t r = 0; r < ranking.size(); ++r) fused[ranking[r].passage] += 1.0f / (k + static_cast<float>(r + 1));
  }
  return to_ranking(fused);
}

namespace {

// Adds weight * (min-max normalised scores) to out; all-equal scores carry no
// preference and all get 1.
void add_normalised(std::span<const float> scores, float weight, std::span<float> out) {
  if (scores.empty()) return;
  const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
  const float min = *lo, range = *hi - *lo;
  for (size_t i = 0; i < scores.size(); ++i) out[i] += weight * (range > 0 ? (scores[i] - min) / range : 1.0f);
}

}  // namespace

void convex_scores(std::span<const float> a, std::span<const float> b, float weight_a, std::span<float> out) {
  std::fill(out.begin(), out.end(), 0.0f);
  add_normalised(a, weight_a, out);
  add_normalised(b, 1.0f - weight_a, out);
}

}  // namespace medsearch::rank
