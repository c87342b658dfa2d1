#include "core/rank/diversify.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/vector/kernels/distance.h"

namespace medsearch::rank {

std::vector<uint32_t> diversify(std::span<const Candidate> ranked, const CorpusView& corpus,
                                const DiversifyOptions& options) {
  std::vector<uint32_t> out;
  const uint32_t k = std::min<uint32_t>(options.k, static_cast<uint32_t>(ranked.size()));
  if (k == 0) return out;
  out.reserve(k);
  std::unordered_map<uint32_t, uint32_t> per_doc;
  auto doc_full = [&](uint32_t i) {
    if (options.max_per_document == 0) return false;
    auto it = per_doc.find(corpus.passage_doc[ranked[i].passage]);
    return it != per_doc.end() && it->second >= options.max_per_document;
  };
  auto take = [&](uint32_t i) {
    out.push_back(i);
    ++per_doc[corpus.passage_doc[ranked[i].passage]];
  };

  const bool mmr = options.mmr_lambda < 1.0f && !corpus.vectors.empty();
  if (!mmr) {
    for (uint32_t i = 0; i < ranked.size() && out.size() < k; ++i) {
      if (!doc_full(i)) take(i);
    }
    return out;
  }

  const uint32_t window = std::min<uint32_t>(static_cast<uint32_t>(ranked.size()),
                                             std::max(k, options.window ? options.window : 4 * k));
  float lo = ranked[window - 1].score, hi = ranked[0].score;
  const float inv = hi > lo ? 1.0f / (hi - lo) : 0.0f;
  const float lambda = options.mmr_lambda;
  const auto& kernels = vector::kernels::best_kernels();
  std::vector<float> max_sim(window, -1.0f);
  std::vector<uint8_t> used(window, 0);
  auto row = [&](uint32_t i) { return corpus.vectors.data() + size_t{ranked[i].passage} * corpus.dim; };
  while (out.size() < k) {
    uint32_t best = UINT32_MAX;
    float best_value = -std::numeric_limits<float>::infinity();
    for (uint32_t i = 0; i < window; ++i) {
      if (used[i] || doc_full(i)) continue;
      const float relevance = inv > 0 ? (ranked[i].score - lo) * inv : 1.0f;
      const float value = lambda * relevance - (1.0f - lambda) * std::max(0.0f, max_sim[i]);
      if (value > best_value) {
        best_value = value;
        best = i;
      }
    }
    if (best == UINT32_MAX) break;
    used[best] = 1;
    take(best);
    for (uint32_t i = 0; i < window; ++i) {
      if (!used[i]) max_sim[i] = std::max(max_sim[i], kernels.dot_f32(row(i), row(best), corpus.dim));
    }
  }
  // The window ran out (per-document limits): fill from the rest by score.
  for (uint32_t i = window; i < ranked.size() && out.size() < k; ++i) {
    if (!doc_full(i)) take(i);
  }
  return out;
}

}  // namespace medsearch::rank
