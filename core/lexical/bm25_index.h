// bm25_index.h: an in-memory inverted index over passages, scored with
// Lucene-style BM25 on two fields.
//
// Fields: kBody (the passage text) and kHeading (title and heading path). A
// passage's score is
//   sum_t qtf(t) * [ idf_body(t) * tfn_body(t,p) + heading_weight * idf_head(t) * tfn_head(t,p) ]
// with Lucene's idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and
// tfn = tf / (tf + k1 * (1 - b + b * len / avg_len)), per field.
//
// Top-k is term-at-a-time into a dense accumulator (a float per passage): on
// corpora of this size (10^4 to 10^5 passages) a scatter-add over postings
// beats document-at-a-time traversal with its per-posting cursor bookkeeping.
// Common terms are pruned MaxScore-style: the rare ("essential") terms are
// accumulated first; if the largest total the common terms could still add is
// below the current k-th best score, only candidates that could still reach
// it are completed (by binary search in the common terms' postings). The
// result is the exact top-k. Ties are broken by the smaller passage number.
//
// Thread safety: thread-compatible. After build() or load(), concurrent
// search() calls are safe; per-thread scratch lives in thread_local storage.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <medsearch/options.h>
#include <medsearch/status.h>

#include "core/text/analyzer.h"

namespace medsearch::internal {
class BinaryWriter;  // core/internal/binary_io.h (not installed)
class BinaryReader;
}  // namespace medsearch::internal

namespace medsearch::lexical {

enum Field : int { kBody = 0, kHeading = 1, kNumFields = 2 };

// One scored passage. `passage` indexes the passages the index was built over.
struct ScoredPassage {
  uint32_t passage;
  float score;
};

// A term of an analysed query, resolved against the vocabulary.
struct QueryTerm {
  uint32_t term_id;
  float weight;  // occurrences of the term in the query
};

// Collection statistics to score with instead of the index's own, when the
// index holds one shard of a larger collection: its scores are then those one
// index over the whole collection gives (Elasticsearch's
// dfs_query_then_fetch). The term frequencies and field lengths are the
// index's; the passage count, summed field lengths and each query term's
// document frequencies are the collection's.
struct ScoringStats {
  uint64_t passages = 0;
  uint64_t length_sum[kNumFields] = {};
  // Per query term, aligned with the terms searched: its document frequency
  // per field in the collection (at least the index's own).
  std::span<const std::array<uint32_t, kNumFields>> doc_freq;
};

// Lucene's idf: ln(1 + (N - df + 0.5) / (df + 0.5)).
float lucene_idf(double passages, double doc_freq);

class Bm25Index {
 public:
  Bm25Index() = default;
  Bm25Index(Bm25Index&&) = default;
  Bm25Index& operator=(Bm25Index&&) = default;
  Bm25Index(const Bm25Index&) = delete;  // term_ids_ holds views into terms_
  Bm25Index& operator=(const Bm25Index&) = delete;

  // Builds over `num_passages` passages; `field_text(p, field)` returns the text
  // of one field of passage p and must be safe to call from several threads.
  // Runs in parallel (oneTBB, the caller's arena). Deterministic: the result
  // does not depend on thread scheduling.
  static Result<Bm25Index> build(const text::Analyzer& analyzer, uint32_t num_passages,
                         const std::function<std::string_view(uint32_t, Field)>& field_text,
                         const Bm25Params& params);

  // Resolves analysed query terms; unknown terms are dropped, repeats add weight.
  std::vector<QueryTerm> resolve(std::span<const text::Token> tokens) const;

  // Top-k passages by score, best first; ties by passage number.
  struct Options {
    uint32_t k = 10;
    // Passage -> group (document), size num_passages(), non-decreasing (the
    // passages of a group are contiguous); needed by the two below.
    std::span<const uint32_t> group_of;
    // Per group: 0 excludes the group's passages. Empty: every group allowed.
    std::span<const uint8_t> group_allowed;
    // At most one passage per group (the group's best): document-level results.
    bool one_per_group = false;
    uint32_t num_groups = 0;
  };
  // `stats`: score with a collection's statistics (ScoringStats).
  std::vector<ScoredPassage> search(std::span<const QueryTerm> terms, const Options& options,
                                    const ScoringStats* stats = nullptr) const;

  // Score of one passage for the query (for explanations and tests).
  float score(std::span<const QueryTerm> terms, uint32_t passage) const;
  // Per-field BM25 of one passage, unweighted (for explanations and features).
  float field_score(std::span<const QueryTerm> terms, uint32_t passage, Field field,
                    const ScoringStats* stats = nullptr) const;
  // Per query term and passage, its part of field_score() (0 where the
  // passage lacks the term), without the query-term weight: `passages`
  // ascending; out is passages.size() x terms.size(), row-major
  // (out[i * terms.size() + t]).
  // Walks each term's postings once with galloping search, so it costs about
  // terms x passages x log(postings / passages), in order through memory.
  void term_scores_sorted(std::span<const QueryTerm> terms, std::span<const uint32_t> passages, Field field,
                          std::span<float> out, const ScoringStats* stats = nullptr) const;
  // Lucene idf of a term in a field: ln(1 + (N - df + 0.5) / (df + 0.5)).
  float idf(uint32_t term_id, Field field) const;
  // The id of an analysed term, or nullopt when no passage has it.
  std::optional<uint32_t> find_term(std::string_view term) const {
    const auto it = term_ids_.find(term);
    if (it == term_ids_.end()) return std::nullopt;
    return it->second;
  }
  // Length of a passage's field in analysed terms.
  uint32_t field_length(uint32_t passage, Field field) const { return fields_[field].lengths[passage]; }

  uint32_t num_passages() const { return num_passages_; }
  size_t num_terms() const { return terms_.size(); }
  const Bm25Params& params() const { return params_; }
  const std::string& term(uint32_t id) const { return terms_[id]; }
  uint32_t doc_freq(uint32_t term_id, Field field) const {
    return fields_[field].offsets[term_id + 1] - fields_[field].offsets[term_id];
  }
  size_t memory_bytes() const;

  // An index over the passages of `base` with keep[p] != 0 (renumbered in
  // order), followed by the passages of `added` (built with the same analyzer),
  // with the result's own statistics (passage count, document frequencies,
  // average field lengths) and base's parameters: it scores bit for bit as
  // build() over the same passages in the same order would, and nothing is
  // re-analysed. Terms left without postings are dropped. keep.size() ==
  // base.num_passages(). Cost: one pass over both indexes' postings, then the
  // impacts (O(postings), in parallel).
  static Bm25Index merge(const Bm25Index& base, std::span<const uint8_t> keep, const Bm25Index& added);

  void serialize(internal::BinaryWriter* out) const;
  static Result<Bm25Index> deserialize(internal::BinaryReader* in);

 private:
  struct FieldPostings {
    std::vector<uint32_t> offsets;    // num_terms + 1; postings of term t are [offsets[t], offsets[t+1])
    std::vector<uint32_t> passages;   // ascending within a term
    std::vector<uint16_t> tfs;        // term frequency, saturated at 65535
    std::vector<float> impacts;       // idf * tfn (* field weight), derived from tfs and lengths
    std::vector<float> max_impact;    // per term: the largest of its impacts (MaxScore bound)
    std::vector<uint32_t> lengths;    // field length in terms, per passage
  };
  void compute_impacts();
  // The impacts of a term's postings in a field as an index with `stats`
  // (term t of the query its doc_freq) would have them, into `out` (one per
  // posting); returns their maximum.
  float impacts_with(uint32_t term_id, Field field, const ScoringStats& stats, size_t t, float* out) const;
  void index_vocabulary();

  Bm25Params params_;
  uint32_t num_passages_ = 0;
  std::vector<std::string> terms_;  // sorted; term id = position
  std::unordered_map<std::string_view, uint32_t> term_ids_;  // views into terms_
  FieldPostings fields_[kNumFields];
};

}  // namespace medsearch::lexical
