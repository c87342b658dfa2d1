// diversify.h: the last step of the query pipeline: from a ranked list of
// candidates to the k passages shown, at most `max_per_document` from one
// document and, with mmr_lambda < 1, spread out by maximal marginal relevance
// (Carbonell & Goldstein 1998): each next pick maximises
//   lambda * relevance - (1 - lambda) * max cosine to the passages already picked,
// relevance being the score min-max normalised over the candidates considered.
// Near-identical passages (the health-professional and patient versions of a
// summary share paragraphs) then do not fill the top k.
//
// Cost: the first `window` candidates are considered (window >= k); each pick
// updates every remaining candidate's similarity with one dot product, so
// O(k * window * dim).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/rank/features.h"

namespace medsearch::rank {

struct DiversifyOptions {
  uint32_t k = 10;
  uint32_t max_per_document = 0;  // 0: no limit
  float mmr_lambda = 1.0f;        // 1: by score only; lower: more diversity
  uint32_t window = 0;            // candidates considered; 0: 4 * k
};

// `ranked` is sorted by score, best first. Returns indices into `ranked`, in
// the order shown. Vectors (corpus.vectors) are needed only for mmr_lambda < 1;
// without them MMR is skipped.
std::vector<uint32_t> diversify(std::span<const Candidate> ranked, const CorpusView& corpus,
                                const DiversifyOptions& options);

}  // namespace medsearch::rank
