// features.h: what the reranker knows about a (query, passage) pair.
//
// The query pipeline gathers a pool of candidate passages (the union of the
// BM25 and dense top lists) and describes each by kNumFeatures numbers:
// lexical scores per field, the dense cosine, ranks in each list, how much of
// the query the passage covers, and where the passage sits in its document.
// Scores are also given relative to the pool's best (the reranker compares
// passages of one query, and absolute BM25 scales vary with the query).
//
// The names (feature_names()) are part of the reranker's model file: a model
// trained on another feature set is refused at load.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/lexical/bm25_index.h"

namespace medsearch::rank {

enum Feature : uint32_t {
  kBm25,            // BM25, body + weighted heading field
  kBm25Rel,         // BM25 / the pool's best BM25
  kBodyIdfNorm,     // body BM25 / the query's summed body idf
  kHeadingIdfNorm,  // heading BM25 / the query's summed heading idf
  kDense,           // cosine of query and passage vectors
  kDenseGap,        // cosine - the pool's best cosine
  kBm25Rank,        // log2(2 + rank in the BM25 list), rank = list size when absent
  kDenseRank,       // log2(2 + rank in the dense list)
  kCoverBody,       // idf-weighted share of the query's terms found in the body
  kCoverHeading,    // ... in the heading path / title
  kCoverAny,        // ... in either
  kLogLength,       // log(1 + body length in terms)
  kFirstPassage,    // 1 for the first passage of its document
  kLogOrdinal,      // log(1 + passage ordinal in its document)
  kDocSupport,      // log(1 + passages of the same document in the pool)
  kDocDenseGap,     // the document's best cosine in the pool - the pool's best
  kRrf,             // kRrfK (60) * reciprocal rank fusion score of the two lists (fusion.h)
  kQueryTerms,      // log(1 + analysed query terms known to the index)
  kNumFeatures
};

std::span<const std::string_view> feature_names();

using FeatureVector = std::array<float, kNumFeatures>;

// The corpus side of feature extraction; views into the index, which must
// outlive the call.
struct CorpusView {
  const lexical::Bm25Index* bm25 = nullptr;
  std::span<const uint32_t> passage_doc;        // passage -> document
  std::span<const uint32_t> doc_first_passage;  // document -> its first passage; size documents + 1
  std::span<const float> vectors;               // row p = passage p, `dim` floats; may be empty
  uint32_t dim = 0;
};

// One candidate of the pool.
struct Candidate {
  uint32_t passage = 0;
  FeatureVector features{};
  float body = 0;     // BM25 of the body field
  float heading = 0;  // BM25 of the heading field, before its weight
  float dense = 0;    // cosine (0 without vectors)
  float score = 0;    // filled by fusion / the reranker
};

// The pool of the two lists (each best first, as the retrievers return them),
// each passage once, with its features. `query_vector` may be empty (dense
// features are then 0). Cost: one galloping pass through each query term's
// postings per field (Bm25Index::term_scores_sorted), and a dim-float dot
// product per pool passage.
std::vector<Candidate> build_pool(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                                  std::span<const float> query_vector, std::span<const lexical::ScoredPassage> bm25,
                                  std::span<const lexical::ScoredPassage> dense);

}  // namespace medsearch::rank
