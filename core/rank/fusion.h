// fusion.h: merging the rankings of several retrievers into one.
//
// Every retriever returns passages sorted best first (lexical::ScoredPassage).
// Fusion takes spans of such rankings, so any retriever plugs in.
//
//   reciprocal rank fusion (Cormack et al. 2009): score(p) = sum_r 1 / (k + rank_r(p)),
//     rank counted from 1; a ranking that lacks p adds nothing.
//   convex combination (convex_scores): score(p) = w * norm_a(p) + (1 - w) * norm_b(p),
//     each side's scores min-max normalised to [0, 1] over the pool; the
//     pipeline scores every pooled passage on both sides, so the arrays align.
//
// rrf_fuse's results are sorted by score, ties broken by the smaller passage
// number, so fusion is deterministic. Cost: O(n log n) in the number of
// distinct passages.
#pragma once

#include <span>
#include <vector>

#include "core/lexical/bm25_index.h"

namespace medsearch::rank {

using lexical::ScoredPassage;

inline constexpr float kRrfK = 60.0f;

std::vector<ScoredPassage> rrf_fuse(std::span<const std::span<const ScoredPassage>> rankings, float k = kRrfK);

// The convex combination over aligned score arrays (a[i], b[i] scores of one
// passage i on each side, every passage scored by both): out[i] =
// weight_a * minmax(a)[i] + (1 - weight_a) * minmax(b)[i]. Sizes equal.
void convex_scores(std::span<const float> a, std::span<const float> b, float weight_a, std::span<float> out);

// Sorts best first, ties by the smaller passage number.
void sort_ranking(std::vector<ScoredPassage>* ranking);

}  // namespace medsearch::rank
