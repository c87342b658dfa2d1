#include "core/rank/features.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/rank/fusion.h"
#include "core/vector/kernels/distance.h"

namespace medsearch::rank {

std::span<const std::string_view> feature_names() {
  static constexpr std::string_view kNames[kNumFeatures] = {
      "bm25",           "bm25_rel",      "body_idf_norm", "heading_idf_norm", "dense",       "dense_gap",
      "bm25_rank",      "dense_rank",    "cover_body",    "cover_heading",    "cover_any",   "log_length",
      "first_passage",  "log_ordinal",   "doc_support",   "doc_dense_gap",    "rrf",         "query_terms"};
  return kNames;
}

std::vector<Candidate> build_pool(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                                  std::span<const float> query_vector, std::span<const lexical::ScoredPassage> bm25,
                                  std::span<const lexical::ScoredPassage> dense) {
  using lexical::kBody;
  using lexical::kHeading;
  const lexical::Bm25Index& index = *corpus.bm25;
  const float heading_weight = index.params().heading_weight;

  // Pool in first-seen order (BM25 list, then dense), with each passage's ranks.
  constexpr uint32_t kAbsent = UINT32_MAX;
  std::vector<Candidate> pool;
  std::vector<std::array<uint32_t, 2>> ranks;
  std::unordered_map<uint32_t, uint32_t> slot;
  slot.reserve(bm25.size() + dense.size());
  auto add = [&](std::span<const lexical::ScoredPassage> list, int side) {
    for (uint32_t r = 0; r < list.size(); ++r) {
      auto [it, inserted] = slot.try_emplace(list[r].passage, static_cast<uint32_t>(pool.size()));
      if (inserted) {
        pool.push_back(Candidate{.passage = list[r].passage});
        ranks.push_back({kAbsent, kAbsent});
      }
      ranks[it->second][side] = r;
    }
  };
  add(bm25, 0);
  add(dense, 1);
  if (pool.empty()) return pool;

  // The query's idf mass per field: the most a passage could cover.
  const size_t nt = terms.size();
  std::vector<float> term_idf(nt);
  float idf_body = 0, idf_heading = 0;
  for (size_t t = 0; t < nt; ++t) {
    term_idf[t] = terms[t].weight * index.idf(terms[t].term_id, kBody);
    idf_body += term_idf[t];
    idf_heading += terms[t].weight * index.idf(terms[t].term_id, kHeading);
  }
  // Per-term field scores of every pooled passage, looked up in passage order
  // (one pass through each term's postings).
  std::vector<uint32_t> order(pool.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return pool[a].passage < pool[b].passage; });
  std::vector<uint32_t> sorted(pool.size());
  for (size_t i = 0; i < order.size(); ++i) sorted[i] = pool[order[i]].passage;
  std::vector<float> body_sorted(pool.size() * nt), heading_sorted(pool.size() * nt);
  index.term_scores_sorted(terms, sorted, kBody, body_sorted);
  index.term_scores_sorted(terms, sorted, kHeading, heading_sorted);
  std::vector<uint32_t> row_of(pool.size());
  for (uint32_t r = 0; r < order.size(); ++r) row_of[order[r]] = r;
  const bool have_vectors = !query_vector.empty() && !corpus.vectors.empty();
  const auto& kernels = vector::kernels::best_kernels();

  std::unordered_map<uint32_t, std::pair<uint32_t, float>> per_doc;  // doc -> (passages in pool, best cosine)
  float best_bm25 = 0, best_dense = -1.0f;
  for (size_t i = 0; i < pool.size(); ++i) {
    Candidate& c = pool[i];
    FeatureVector& f = c.features;
    const float* body_parts = body_sorted.data() + size_t{row_of[i]} * nt;
    const float* heading_parts = heading_sorted.data() + size_t{row_of[i]} * nt;
    float covered_body = 0, covered_heading = 0, covered_any = 0;
    for (size_t t = 0; t < nt; ++t) {
      const float w = terms[t].weight;
      c.body += w * body_parts[t];
      c.heading += w * heading_parts[t];
      const float idf = term_idf[t];
      if (body_parts[t] > 0) covered_body += idf;
      if (heading_parts[t] > 0) covered_heading += idf;
      if (body_parts[t] > 0 || heading_parts[t] > 0) covered_any += idf;
    }
    if (have_vectors) {
      c.dense = kernels.dot_f32(query_vector.data(), corpus.vectors.data() + size_t{c.passage} * corpus.dim, corpus.dim);
    }
    f[kBm25] = c.body + heading_weight * c.heading;
    f[kBodyIdfNorm] = idf_body > 0 ? c.body / idf_body : 0.0f;
    f[kHeadingIdfNorm] = idf_heading > 0 ? c.heading / idf_heading : 0.0f;
    f[kDense] = c.dense;
    const uint32_t bm25_rank = ranks[i][0] == kAbsent ? static_cast<uint32_t>(bm25.size()) : ranks[i][0];
    const uint32_t dense_rank = ranks[i][1] == kAbsent ? static_cast<uint32_t>(dense.size()) : ranks[i][1];
    f[kBm25Rank] = std::log2(2.0f + static_cast<float>(bm25_rank));
    f[kDenseRank] = std::log2(2.0f + static_cast<float>(dense_rank));
    // kRrfK x rrf_fuse's score (1 / (k + 1-based rank)) per list, written so
    // the float values stay those the reranker was trained on.
    f[kRrf] = (ranks[i][0] == kAbsent ? 0.0f : kRrfK / (kRrfK + 1.0f + ranks[i][0])) +
              (ranks[i][1] == kAbsent ? 0.0f : kRrfK / (kRrfK + 1.0f + ranks[i][1]));
    f[kCoverBody] = idf_body > 0 ? covered_body / idf_body : 0.0f;
    f[kCoverHeading] = idf_body > 0 ? covered_heading / idf_body : 0.0f;
    f[kCoverAny] = idf_body > 0 ? covered_any / idf_body : 0.0f;
    f[kLogLength] = std::log1p(static_cast<float>(index.field_length(c.passage, kBody)));
    const uint32_t doc = corpus.passage_doc[c.passage];
    const uint32_t ordinal = c.passage - corpus.doc_first_passage[doc];
    f[kFirstPassage] = ordinal == 0 ? 1.0f : 0.0f;
    f[kLogOrdinal] = std::log1p(static_cast<float>(ordinal));
    f[kQueryTerms] = std::log1p(static_cast<float>(terms.size()));
    auto& d = per_doc.try_emplace(doc, 0u, -1.0f).first->second;
    d.first += 1;
    d.second = std::max(d.second, c.dense);
    best_bm25 = std::max(best_bm25, f[kBm25]);
    best_dense = std::max(best_dense, c.dense);
  }
  for (Candidate& c : pool) {
    FeatureVector& f = c.features;
    const auto& d = per_doc[corpus.passage_doc[c.passage]];
    f[kBm25Rel] = best_bm25 > 0 ? f[kBm25] / best_bm25 : 0.0f;
    f[kDenseGap] = have_vectors ? c.dense - best_dense : 0.0f;
    f[kDocSupport] = std::log1p(static_cast<float>(d.first));
    f[kDocDenseGap] = have_vectors ? d.second - best_dense : 0.0f;
  }
  return pool;
}

}  // namespace medsearch::rank
