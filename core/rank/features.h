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
#include <optional>
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
// What the direction is computed from: per audience (health professional,
// patient), the sum of its passages' vectors (in double, in passage order)
// and their count. Sums of disjoint passage sets add up.
struct AudienceSums {
  std::array<std::vector<double>, 2> sum;
  std::array<uint64_t, 2> count{};
};
AudienceSums audience_sums(std::span<const float> vectors, uint32_t dim, std::span<const uint32_t> passage_doc,
                           std::span<const uint8_t> doc_audience);
std::vector<float> audience_direction(const AudienceSums& sums, uint32_t dim);

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
// build_pool() is describe_passages() of the pool's passages, then
// assemble_pool(); a sharded collection runs the first on each shard and the
// second on the merged lists (core/shard/), so both give the same features.
std::vector<Candidate> build_pool(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                                  std::span<const float> query_vector, std::span<const lexical::ScoredPassage> bm25,
                                  std::span<const lexical::ScoredPassage> dense,
                                  std::span<const QueryPhrase> phrases = {});

// A query term with term_id kNoTerm is one the index does not hold (a shard's
// view of a term other shards hold): it matches no passage.
inline constexpr uint32_t kNoTerm = UINT32_MAX;

// What a pool candidate's features are made of besides its ranks: facts of
// its passage and, per query term, the passage's part of each field's BM25.
struct PassageFacts {
  uint32_t doc = 0;      // its document: a key unique among the pool's documents
  uint32_t section = 0;  // its section (document, heading path): likewise
  uint32_t length = 0;   // body length in analysed terms
  uint32_t ordinal = 0;  // its position in its document
  uint32_t audience = 0;  // 0 neither, 1 health professional, 2 patient
  float heading_commonness = 0;
  float dense = 0;       // cosine with the query (0 without vectors)
  uint32_t phrases = 0;  // query phrases found in it or its headings
};  // no padding: shards send these as bytes

// The facts of some passages for one query, in the order asked.
struct PassageRows {
  std::vector<PassageFacts> facts;
  // Per passage and query term (row-major, passages x terms): the term's part
  // of the body and of the heading field's BM25 (term_scores_sorted()).
  std::vector<float> body, heading;
  size_t num_terms = 0;
};

// The facts of `passages` (any order). `stats`: score BM25 with a
// collection's statistics (lexical::ScoringStats, aligned with `terms`).
PassageRows describe_passages(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                              std::span<const float> query_vector, std::span<const uint32_t> passages,
                              std::span<const QueryPhrase> phrases, const lexical::ScoringStats* stats = nullptr);

// What the features need of the query: per term, its weight and idf in each
// field; its number of phrases; its cosine with the audience direction.
struct QuerySide {
  std::vector<float> weight, idf_body, idf_heading;
  size_t phrases = 0;
  float audience = 0;          // query vector . CorpusView::audience_direction (0 without)
  bool has_vectors = false;    // the query and the corpus have vectors
  bool has_sections = false;   // CorpusView::passage_section is known
  float heading_weight = 0;    // Bm25Params::heading_weight
};

// The pool's candidates, one per row of `rows`: candidate i is passage
// passages[i] with rank ranks[i] in the BM25 and the dense list (kNotListed
// when not in it), the lists being bm25_size and dense_size long.
inline constexpr uint32_t kNotListed = UINT32_MAX;
std::vector<Candidate> assemble_pool(const QuerySide& query, std::span<const uint32_t> passages,
                                     std::span<const std::array<uint32_t, 2>> ranks, uint32_t bm25_size,
                                     uint32_t dense_size, const PassageRows& rows);

// The query's adjacent pairs of analysed tokens (positions p and p + 1, so no
// stopword between them), as the query spells them, ASCII-lower-cased: the
// first kMaxPhrases distinct ones (a question has a handful; a pasted page
// must not cost pairs x pool passages).
// Pairs with a word the index does not know are left out (no passage holds them).
inline constexpr size_t kMaxPhrases = 16;
std::vector<QueryPhrase> query_phrases(std::string_view query, std::span<const text::Token> tokens,
                                       const lexical::Bm25Index& index);
// The same with another vocabulary (a collection's): find_term gives a term's id, if known.
std::vector<QueryPhrase> query_phrases(std::string_view query, std::span<const text::Token> tokens,
                                       const std::function<std::optional<uint32_t>(std::string_view)>& find_term);

}  // namespace medsearch::rank
