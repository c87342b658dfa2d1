// pipeline.cc: the query pipeline of Index (index.h): analyse and embed the
// query once, gather BM25 and dense candidates (in parallel), pool them with
// their features, fuse, rerank, group and diversify, and say how likely the
// top hits answer the question.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_invoke.h>

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/index/index_impl.h"
#include "core/rank/diversify.h"
#include "core/rank/fusion.h"

namespace medsearch {

Result<std::vector<lexical::ScoredPassage>> internal::Generation::dense_search(std::span<const float> qv,
                                                                             const std::vector<uint8_t>& allowed,
                                                                             uint32_t k, uint32_t ef) const {
  k = std::min<uint32_t>(k, static_cast<uint32_t>(passages.size()));
  vector::SearchParams params;
  params.k = k;
  params.ef = std::max(ef, k);
  // The dense index is keyed by vector id and may hold other generations'
  // rows: the filter is this generation's (allowed) vids.
  vector::IdFilter filter;
  if (!allowed.empty()) {
    for (size_t d = 0; d < docs.size(); ++d) {
      if (!allowed[d]) continue;
      const uint32_t lo = doc_first_passage[d], hi = doc_first_passage[d + 1];
      filter.add_many(std::span<const uint32_t>(passage_vid).subspan(lo, hi - lo));
    }
    params.filter = &filter;
  } else if (live) {
    params.filter = live.get();
  }
  std::vector<vector::DocId> ids(k);
  std::vector<float> scores(k);
  std::vector<lexical::ScoredPassage> out;
  while (true) {
    MEDSEARCH_RETURN_IF_ERROR(dense->search(vector::MatrixView{qv.data(), 1, dim}, params, ids, scores));
    out.clear();
    bool foreign = false;
    for (uint32_t i = 0; i < k && !foreign; ++i) {
      if (ids[i] == vector::kInvalidDocId) continue;
      const auto it = std::lower_bound(passage_vid.begin(), passage_vid.end(), ids[i]);
      foreign = it == passage_vid.end() || *it != ids[i];
      if (!foreign) out.push_back({static_cast<uint32_t>(it - passage_vid.begin()), scores[i]});
    }
    if (!foreign) return out;
    // A generation published without a filter (its vids were all the index
    // held) meets rows a writer added since: search again with its vids.
    if (params.filter) return Status::internal("the dense index returned a vector id outside the filter");
    filter.add_many(passage_vid);
    params.filter = &filter;
  }
}



rank::CorpusView internal::Generation::corpus_view() const {
  return {.bm25 = bm25.get(), .passage_doc = passage_doc, .doc_first_passage = doc_first_passage,
          .vectors = vectors, .dim = dim, .passage_section = passage_section, .doc_audience = doc_audience,
          .audience_direction = audience_direction, .passage_heading_commonness = passage_heading_commonness,
          .body_text = [this](uint32_t p) { return body_text(p); },
          .heading_path = [this](uint32_t p) -> const std::vector<std::string>& { return heading_path(p); }};
}

namespace {

// Keeps the first (best) passage of each document, up to k of them.
std::vector<lexical::ScoredPassage> best_per_document(const std::vector<lexical::ScoredPassage>& ranked,
                                                      std::span<const uint32_t> passage_doc, uint32_t k) {
  std::vector<lexical::ScoredPassage> out;
  std::unordered_set<uint32_t> seen;
  for (const auto& r : ranked) {
    if (out.size() == k) break;
    if (seen.insert(passage_doc[r.passage]).second) out.push_back(r);
  }
  return out;
}

using internal::Generation;
using internal::SnapshotParts;

// A query, analysed and embedded once for the whole pipeline.
struct Query {
  std::vector<lexical::QueryTerm> terms;
  std::vector<float> vector;     // empty in bm25 mode
  std::vector<uint8_t> allowed;  // per document; empty: all allowed
  float unknown_share = 0;       // of the analysed tokens, the share the index does not know
  std::vector<rank::QueryPhrase> phrases;  // rank::query_phrases()
};


// The response's coverage features from its ranked candidates (best first).
rank::CoverageVector coverage_features(std::span<const rank::Candidate> ranked, float unknown_share) {
  rank::CoverageVector r{};
  const rank::Candidate& top = ranked[0];
  float best_dense = -1.0f;
  for (const auto& c : ranked) best_dense = std::max(best_dense, c.dense);
  r[rank::kUnknownShare] = unknown_share;
  r[rank::kTopCoverDenseLed] = top.features[rank::kCoverDenseLed];
  r[rank::kBestDense] = best_dense;
  r[rank::kTopScore] = top.score;
  r[rank::kMargin] = ranked.size() > 1 ? top.score - ranked[1].score : 0.0f;
  r[rank::kTopDense] = top.dense;
  r[rank::kTopCoverAny] = top.features[rank::kCoverAny];
  r[rank::kTopBodyIdfNorm] = top.features[rank::kBodyIdfNorm];
  return r;
}


// The query's vector from the embedder, through the snapshot's cache.
Result<std::vector<float>> embed_query(const SnapshotParts& sp, std::string_view query) {
  if (!sp.embedder) {
    return Status::invalid_argument(sp.gen->dim
                                        ? "no encoder attached to embed the query (attach one, or pass a query vector)"
                                        : "this index has no passage vectors (build it with an encoder)");
  }
  return sp.cache->get(query, *sp.embedder);
}

// The share of `tokens` analysed query tokens that are not among the resolved `terms`.
float unknown_share(size_t tokens, std::span<const lexical::QueryTerm> terms) {
  float known = 0;
  for (const auto& t : terms) known += t.weight;
  return internal::unknown_share(tokens, known);
}

Status prepare(const SnapshotParts& sp, std::string_view query, const SearchOptions& options,
               std::span<const uint32_t> exclude_documents, Query* q) {
  const Generation& s = *sp.gen;
  const auto& docs = s.docs;
  const uint32_t dim = s.dim;
  const bool needs_text = options.mode != SearchMode::kDense || options.query_vector.empty();
  if (needs_text && internal::is_blank(query)) return Status::invalid_argument("empty query");
  MEDSEARCH_RETURN_IF_ERROR(validate(options));
  q->allowed.clear();
  if (!options.filters.empty()) {
    auto compiled = s.compile_filters(options.filters);
    if (!compiled) return compiled.status();
    q->allowed = std::move(compiled).value();
  }
  if (!exclude_documents.empty()) {
    if (q->allowed.empty()) q->allowed.assign(docs.size(), 1);
    for (uint32_t d : exclude_documents) {
      if (d >= docs.size()) return Status::invalid_argument("excluded document number " + std::to_string(d) + " out of range");
      q->allowed[d] = 0;
    }
  }
  if (needs_text) {
    std::vector<text::Token> tokens;
    sp.settings->analyzer.analyze(query, &tokens);
    q->terms = s.bm25->resolve(tokens);
    if (options.mode == SearchMode::kHybrid || options.mode == SearchMode::kRerank) {  // the pool's features
      q->unknown_share = unknown_share(tokens.size(), q->terms);
      q->phrases = rank::query_phrases(query, tokens, *s.bm25);
    }
  }
  q->vector.clear();
  if (options.mode == SearchMode::kBm25) return Status::ok();
  // The dense side needs the query's vector: given, or embedded (and cached).
  if (dim == 0) {
    return Status::invalid_argument("this index has no passage vectors (build it with an encoder), so only mode bm25");
  }
  if (!options.query_vector.empty()) {
    MEDSEARCH_RETURN_IF_ERROR(internal::check_query_vector(options.query_vector, dim));
    q->vector.assign(options.query_vector.begin(), options.query_vector.end());
  } else {
    auto embedded = embed_query(sp, query);
    if (!embedded) return embedded.status();
    q->vector = std::move(embedded).value();
  }
  return Status::ok();
}

lexical::Bm25Index::Options bm25_options(const Generation& s, const Query& q, uint32_t k, bool one_per_doc) {
  lexical::Bm25Index::Options o;
  o.k = k;
  o.group_of = s.passage_doc;
  o.group_allowed = q.allowed;
  o.one_per_group = one_per_doc;
  o.num_groups = static_cast<uint32_t>(s.docs.size());
  return o;
}

// The hybrid/rerank candidate pool: BM25 and dense top `depth`, with features.
Result<std::vector<rank::Candidate>> pool(const Generation& s, const Query& q, const SearchOptions& options,
                                          uint32_t depth) {
  const uint32_t ef = internal::pool_ef(options, depth);
  std::vector<lexical::ScoredPassage> lexical_list;
  Result<std::vector<lexical::ScoredPassage>> dense_list = Status::internal("not searched");
  // The two retrievers are independent: run them side by side when a core is free.
  tbb::parallel_invoke([&] { lexical_list = s.bm25->search(q.terms, bm25_options(s, q, depth, false)); },
                       [&] { dense_list = s.dense_search(q.vector, q.allowed, depth, ef); });
  if (!dense_list) return dense_list.status();
  return rank::build_pool(s.corpus_view(), q.terms, q.vector, lexical_list, *dense_list, q.phrases);
}

}  // namespace

internal::RankedPool internal::rank_pool(std::vector<rank::Candidate>* pool, const SearchOptions& options,
                                         const rank::Reranker& reranker, const rank::CorpusView& view,
                                         float unknown_share) {
  std::vector<rank::Candidate>& cands = *pool;
  RankedPool out;
  if (cands.empty()) return out;
  const bool doc_level = options.level == ResultLevel::kDocument;
  if (options.fusion == Fusion::kRrf) {
    for (auto& c : cands) c.score = c.features[rank::kRrf];
  } else {
    // Both scores are known exactly for every pooled passage: min-max normalise over the pool.
    std::vector<float> lexical(cands.size()), dense(cands.size()), fused(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) {
      lexical[i] = cands[i].features[rank::kBm25];
      dense[i] = cands[i].dense;
    }
    rank::convex_scores(lexical, dense, options.bm25_weight, fused);
    for (size_t i = 0; i < cands.size(); ++i) cands[i].score = fused[i];
  }
  auto by_score = [](const rank::Candidate& a, const rank::Candidate& b) {
    return a.score > b.score || (a.score == b.score && a.passage < b.passage);
  };
  std::sort(cands.begin(), cands.end(), by_score);
  if (options.mode == SearchMode::kRerank) {
    // Rescore the head of the fused list; the tail is dropped, so scores stay on one scale.
    const uint32_t depth = std::max(options.rerank_depth, doc_level ? 3 * options.k : options.k);
    if (cands.size() > depth) cands.resize(depth);
    std::vector<rank::FeatureVector> rows(cands.size());
    std::vector<float> scores(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) rows[i] = cands[i].features;
    reranker.score_batch(rows, scores);
    for (size_t i = 0; i < cands.size(); ++i) cands[i].score = scores[i];
    std::sort(cands.begin(), cands.end(), by_score);
    out.coverage = reranker.coverage(coverage_features(cands, unknown_share));
  }
  rank::DiversifyOptions div;
  div.k = options.k;
  div.max_per_document = doc_level ? 1 : options.max_per_doc;
  div.mmr_lambda = options.mmr;
  out.shown = rank::diversify(cands, view, div);
  return out;
}

bool internal::is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos; }

float internal::unknown_share(size_t tokens, float known) {
  return tokens == 0 ? 0.0f : 1.0f - known / static_cast<float>(tokens);
}

uint32_t internal::dense_depth(const SearchOptions& o) {
  // Document-level results need enough passages to find k distinct documents.
  return o.level == ResultLevel::kDocument ? std::max(std::max(o.candidates, o.k), o.k * 8) : o.k;
}

uint32_t internal::dense_ef(const SearchOptions& o) {
  return o.ef ? o.ef : std::max<uint32_t>(std::max(o.candidates, o.k), 128);
}

uint32_t internal::pool_depth(const SearchOptions& o) {
  const uint32_t candidates = std::max(o.candidates, o.k);
  return o.level == ResultLevel::kDocument ? std::max(candidates, 2 * o.k) : candidates;
}

uint32_t internal::pool_ef(const SearchOptions& o, uint32_t depth) {
  // The pool needs most of the dense top list, not all of it: the reranker
  // also sees BM25's. ef = 2 x depth keeps ~92% of the exact top 50 on the
  // guideline corpus at 3/4 of the time of ef 128 (measured on MedQuAD questions).
  return o.ef ? o.ef : std::max<uint32_t>(2 * depth, 64);
}

Status internal::check_query_vector(std::span<const float> vector, uint32_t dim) {
  if (vector.size() != dim) {
    return Status::invalid_argument("query vector has " + std::to_string(vector.size()) + " dimensions, the index " +
                                    std::to_string(dim));
  }
  for (float x : vector) {
    if (!std::isfinite(x)) return Status::invalid_argument("query vector has NaN or inf");
  }
  return Status::ok();
}

Status validate(const SearchOptions& options) {
  if (options.k == 0) return Status::invalid_argument("k must be at least 1");
  if (!(options.bm25_weight >= 0.0f && options.bm25_weight <= 1.0f)) {
    return Status::invalid_argument("bm25_weight must be in [0, 1]");
  }
  if (!(options.mmr >= 0.0f && options.mmr <= 1.0f)) return Status::invalid_argument("mmr must be in [0, 1]");
  return Status::ok();
}

Result<SearchResponse> Snapshot::search(std::string_view query, const SearchOptions& options) const {
  if (options.mode == SearchMode::kAuto) {
    SearchOptions resolved = options;
    resolved.mode = resolve_mode(options.mode);
    return search(query, resolved);
  }
  const SnapshotParts& sp = *parts_;
  const Generation& s = *sp.gen;
  Query q;
  MEDSEARCH_RETURN_IF_ERROR(prepare(sp, query, options, {}, &q));
  const bool doc_level = options.level == ResultLevel::kDocument;
  const lexical::Bm25Index& bm25 = *s.bm25;
  SearchResponse response;
  response.generation = s.generation;
  response.snapshot = shared_from_this();
  response.mode = options.mode;
  auto scored_hits = [&](const std::vector<lexical::ScoredPassage>& ranked) {
    for (const auto& r : ranked) {
      Hit h;
      h.passage = r.passage;
      h.score = r.score;
      if (options.explain) {
        h.body_score = bm25.field_score(q.terms, r.passage, lexical::kBody);
        h.heading_score = bm25.field_score(q.terms, r.passage, lexical::kHeading);
        if (!q.vector.empty()) h.dense_score = s.dot(q.vector, r.passage);
      }
      response.hits.push_back(h);
    }
  };

  if (options.mode == SearchMode::kBm25) {
    scored_hits(bm25.search(q.terms, bm25_options(s, q, options.k, doc_level)));
    return response;
  }
  if (options.mode == SearchMode::kDense) {
    auto dense_list = s.dense_search(q.vector, q.allowed, internal::dense_depth(options), internal::dense_ef(options));
    if (!dense_list) return dense_list.status();
    if (doc_level) {
      scored_hits(best_per_document(*dense_list, s.passage_doc, options.k));
    } else {
      if (dense_list->size() > options.k) dense_list->resize(options.k);
      scored_hits(*dense_list);
    }
    return response;
  }

  // Hybrid and rerank: pool, fuse, (rerank), group and diversify.
  auto pooled = pool(s, q, options, internal::pool_depth(options));
  if (!pooled) return pooled.status();
  std::vector<rank::Candidate>& cands = *pooled;
  if (cands.empty()) return response;
  const internal::RankedPool ranked = internal::rank_pool(&cands, options, *sp.reranker, s.corpus_view(), q.unknown_share);
  response.coverage = ranked.coverage;
  for (uint32_t i : ranked.shown) {
    const rank::Candidate& c = cands[i];
    Hit h;
    h.passage = c.passage;
    h.score = c.score;
    h.body_score = c.body;
    h.heading_score = c.heading;
    h.dense_score = c.dense;
    if (options.explain) {
      h.has_features = true;
      h.features = c.features;
    }
    response.hits.push_back(h);
  }
  return response;
}

Result<std::vector<rank::Candidate>> Snapshot::candidate_pool(std::string_view query, const SearchOptions& options,
                                                              std::span<const uint32_t> exclude_documents) const {
  SearchOptions resolved = options;
  resolved.mode = resolve_mode(options.mode);
  if (resolved.mode != SearchMode::kHybrid && resolved.mode != SearchMode::kRerank) {
    return Status::invalid_argument("candidate pools belong to the hybrid and rerank modes");
  }
  Query q;
  MEDSEARCH_RETURN_IF_ERROR(prepare(*parts_, query, resolved, exclude_documents, &q));
  return pool(*parts_->gen, q, resolved, std::max(resolved.candidates, resolved.k));
}

float Snapshot::unknown_share(std::string_view query) const {
  std::vector<text::Token> tokens;
  parts_->settings->analyzer.analyze(query, &tokens);
  return medsearch::unknown_share(tokens.size(), parts_->gen->bm25->resolve(tokens));
}

Result<std::vector<float>> Snapshot::embed_query(std::string_view query) const {
  return medsearch::embed_query(*parts_, query);
}

Hit Snapshot::explain(std::string_view query, uint32_t passage, std::span<const float> query_vector) const {
  const Generation& s = *parts_->gen;
  std::vector<text::Token> tokens;
  parts_->settings->analyzer.analyze(query, &tokens);
  const auto terms = s.bm25->resolve(tokens);
  Hit h;
  h.passage = passage;
  h.body_score = s.bm25->field_score(terms, passage, lexical::kBody);
  h.heading_score = s.bm25->field_score(terms, passage, lexical::kHeading);
  if (s.dim) {
    if (query_vector.size() == s.dim) {
      h.dense_score = s.dot(query_vector, passage);
    } else if (parts_->embedder) {
      if (auto qv = medsearch::embed_query(*parts_, query); qv) h.dense_score = s.dot(*qv, passage);
    }
  }
  return h;
}

Result<std::vector<SearchResponse>> Snapshot::search_batch(std::span<const std::string> queries,
                                                           const SearchOptions& options) const {
  std::vector<SearchResponse> out(queries.size());
  std::vector<Status> errors(queries.size());
  tbb::parallel_for(tbb::blocked_range<size_t>(0, queries.size(), 8), [&](const tbb::blocked_range<size_t>& r) {
    for (size_t i = r.begin(); i < r.end(); ++i) {
      auto result = search(queries[i], options);
      if (result) {
        out[i] = std::move(result).value();
      } else {
        errors[i] = result.status();
      }
    }
  });
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i].is_ok()) return Status(errors[i].code(), "query " + std::to_string(i) + ": " + errors[i].message());
  }
  return out;
}

}  // namespace medsearch
