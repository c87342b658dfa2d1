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
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/reranker.h>

#include "core/lexical/bm25_index.h"
#include "core/text/analyzer.h"

namespace medsearch::rank {

// The corpus side of feature extraction; views into the index, which must
// outlive the call.
struct CorpusView {
  const lexical::Bm25Index* bm25 = nullptr;
  std::span<const uint32_t> passage_doc;        // passage -> document
  std::span<const uint32_t> doc_first_passage;  // document -> its first passage; size documents + 1
  std::span<const float> vectors;               // row p = passage p, `dim` floats; may be empty
  uint32_t dim = 0;
  std::span<const uint32_t> passage_section;     // passage -> its section (document, heading path); may be empty
  std::span<const uint8_t> doc_audience;         // document -> 0 neither, 1 health professional, 2 patient
  // Unit vector from the mean health-professional passage toward the mean
  // patient passage (AudienceDirection); empty unless the corpus has both.
  std::span<const float> audience_direction;
  std::span<const float> passage_heading_commonness;  // passage -> kHeadingCommonness; may be empty
  // The passage's text and heading path, for phrase matching; may be empty.
  std::function<std::string_view(uint32_t)> body_text;
  std::function<const std::vector<std::string>&(uint32_t)> heading_path;
};

// How many of the dense list's best passages decide a query term's weight in
// the dense-led features.
inline constexpr uint32_t kDenseLedDepth = 10;

// The difference of the mean patient and the mean health-professional passage
// vector, L2-normalised: the direction in which a text reads as written for
// patients. Empty when the corpus lacks either audience or vectors.
std::vector<float> audience_direction(std::span<const float> vectors, uint32_t dim,
                                      std::span<const uint32_t> passage_doc, std::span<const uint8_t> doc_audience);

// The pool of the two lists (each best first, as the retrievers return them),
// each passage once, with its features. `query_vector` may be empty (dense
// features are then 0). Cost: one galloping pass through each query term's
// postings per field (Bm25Index::term_scores_sorted), and a dim-float dot
// product per pool passage.
// Two adjacent words of the query, for kPhraseMatch.
struct QueryPhrase {
  std::string text;      // as the query spells them, ASCII-lower-cased
  uint32_t first_term;   // their analysed terms' ids in the BM25 index: a passage
  uint32_t second_term;  // without both cannot hold the phrase, and is not searched
};

// `phrases`: query_phrases() of the query, for kPhraseMatch.
std::vector<Candidate> build_pool(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                                  std::span<const float> query_vector, std::span<const lexical::ScoredPassage> bm25,
                                  std::span<const lexical::ScoredPassage> dense,
                                  std::span<const QueryPhrase> phrases = {});

// The query's adjacent pairs of analysed tokens (positions p and p + 1, so no
// stopword between them), as the query spells them, ASCII-lower-cased: the
// first kMaxPhrases distinct ones (a question has a handful; a pasted page
// must not cost pairs x pool passages).
// Pairs with a word the index does not know are left out (no passage holds them).
inline constexpr size_t kMaxPhrases = 16;
std::vector<QueryPhrase> query_phrases(std::string_view query, std::span<const text::Token> tokens,
                                       const lexical::Bm25Index& index);

}  // namespace medsearch::rank
