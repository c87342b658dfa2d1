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

Result<std::vector<lexical::ScoredPassage>> Index::Impl::State::dense_search(std::span<const float> qv,
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



rank::CorpusView Index::Impl::State::corpus_view() const {
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

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos; }

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

}  // namespace

Status Index::Impl::prepare(const State& s, std::string_view query, const SearchOptions& options,
                            std::span<const uint32_t> exclude_documents, Query* q) const {
  const auto& docs = s.docs;
  const uint32_t dim = s.dim;
  const bool needs_text = options.mode != SearchMode::kDense || options.query_vector.empty();
  if (needs_text && is_blank(query)) return Status::invalid_argument("empty query");
  if (options.k == 0) return Status::invalid_argument("k must be at least 1");
  if (!(options.convex_weight >= 0.0f && options.convex_weight <= 1.0f)) {
    return Status::invalid_argument("convex_weight must be in [0, 1]");
  }
  if (!(options.mmr_lambda >= 0.0f && options.mmr_lambda <= 1.0f)) {
    return Status::invalid_argument("mmr_lambda must be in [0, 1]");
  }
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
    analyzer.analyze(query, &tokens);
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
    if (options.query_vector.size() != dim) {
      return Status::invalid_argument("query vector has " + std::to_string(options.query_vector.size()) +
                                      " dimensions, the index " + std::to_string(dim));
    }
    for (float x : options.query_vector) {
      if (!std::isfinite(x)) return Status::invalid_argument("query vector has NaN or inf");
    }
    q->vector.assign(options.query_vector.begin(), options.query_vector.end());
  } else {
    auto embedded = embed_query(query, dim);
    if (!embedded) return embedded.status();
    q->vector = std::move(embedded).value();
  }
  return Status::ok();
}

float Index::Impl::unknown_share(size_t tokens, std::span<const lexical::QueryTerm> terms) {
  if (tokens == 0) return 0.0f;
  float known = 0;
  for (const auto& t : terms) known += t.weight;
  return 1.0f - known / static_cast<float>(tokens);
}

lexical::Bm25Index::Options Index::Impl::bm25_options(const State& s, const Query& q, uint32_t k,
                                                      bool one_per_doc) const {
  lexical::Bm25Index::Options o;
  o.k = k;
  o.group_of = s.passage_doc;
  o.group_allowed = q.allowed;
  o.one_per_group = one_per_doc;
  o.num_groups = static_cast<uint32_t>(s.docs.size());
  return o;
}

Result<std::vector<rank::Candidate>> Index::Impl::pool(const State& s, const Query& q, const SearchOptions& options,
                                                       uint32_t depth) const {
  // The pool needs most of the dense top list, not all of it: the reranker
  // also sees BM25's. ef = 2 x depth keeps ~92% of the exact top 50 on the
  // guideline corpus at 3/4 of the time of ef 128 (measured on MedQuAD questions).
  const uint32_t ef = options.ef ? options.ef : std::max<uint32_t>(2 * depth, 64);
  std::vector<lexical::ScoredPassage> lexical_list;
  Result<std::vector<lexical::ScoredPassage>> dense_list = Status::internal("not searched");
  // The two retrievers are independent: run them side by side when a core is free.
  tbb::parallel_invoke([&] { lexical_list = s.bm25->search(q.terms, bm25_options(s, q, depth, false)); },
                       [&] { dense_list = s.dense_search(q.vector, q.allowed, depth, ef); });
  if (!dense_list) return dense_list.status();
  return rank::build_pool(s.corpus_view(), q.terms, q.vector, lexical_list, *dense_list, q.phrases);
}

Result<SearchResponse> Index::Impl::run(const State& s, std::string_view query, const SearchOptions& options) const {
  if (options.mode == SearchMode::kAuto) {  // as this generation answers it
    SearchOptions resolved = options;
    resolved.mode = s.dim ? SearchMode::kRerank : SearchMode::kBm25;
    return run(s, query, resolved);
  }
  Query q;
  MEDSEARCH_RETURN_IF_ERROR(prepare(s, query, options, {}, &q));
  const bool doc_level = options.level == ResultLevel::kDocument;
  const lexical::Bm25Index& bm25 = *s.bm25;
  SearchResponse response;
  response.generation = s.generation;
  response.mode = options.mode;
  auto scored_hits = [&](const std::vector<lexical::ScoredPassage>& ranked) {
    for (const auto& r : ranked) {
      ScoredHit h;
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
  const uint32_t candidates = std::max(options.candidates, options.k);
  if (options.mode == SearchMode::kDense) {
    const uint32_t ef = options.ef ? options.ef : std::max<uint32_t>(candidates, 128);
    // Document-level results need enough passages to find k distinct documents.
    const uint32_t dense_k = doc_level ? std::max(candidates, options.k * 8) : options.k;
    auto dense_list = s.dense_search(q.vector, q.allowed, dense_k, ef);
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
  auto pooled = pool(s, q, options, doc_level ? std::max(candidates, 2 * options.k) : candidates);
  if (!pooled) return pooled.status();
  std::vector<rank::Candidate>& cands = *pooled;
  if (cands.empty()) return response;
  if (options.fusion == Fusion::kRrf) {
    for (auto& c : cands) c.score = c.features[rank::kRrf];
  } else {
    // Both scores are known exactly for every pooled passage: min-max normalise over the pool.
    std::vector<float> lexical(cands.size()), dense(cands.size()), fused(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) {
      lexical[i] = cands[i].features[rank::kBm25];
      dense[i] = cands[i].dense;
    }
    rank::convex_scores(lexical, dense, options.convex_weight, fused);
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
    reranker->score_batch(rows, scores);
    for (size_t i = 0; i < cands.size(); ++i) cands[i].score = scores[i];
    std::sort(cands.begin(), cands.end(), by_score);
    response.coverage = reranker->coverage(coverage_features(cands, q.unknown_share));
  }
  rank::DiversifyOptions div;
  div.k = options.k;
  div.max_per_document = doc_level ? 1 : options.max_per_document;
  div.mmr_lambda = options.mmr_lambda;
  for (uint32_t i : rank::diversify(cands, s.corpus_view(), div)) {
    const rank::Candidate& c = cands[i];
    ScoredHit h;
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

Result<std::vector<rank::Candidate>> Index::candidate_pool(std::string_view query, const SearchOptions& options,
                                                           std::span<const uint32_t> exclude_documents) const {
  const auto s = impl_->current();
  if (options.mode == SearchMode::kAuto && s->dim) {
    SearchOptions resolved = options;
    resolved.mode = SearchMode::kRerank;
    return candidate_pool(query, resolved, exclude_documents);
  }
  if (options.mode != SearchMode::kHybrid && options.mode != SearchMode::kRerank) {
    return Status::invalid_argument("candidate pools belong to the hybrid and rerank modes");
  }
  Impl::Query q;
  MEDSEARCH_RETURN_IF_ERROR(impl_->prepare(*s, query, options, exclude_documents, &q));
  return impl_->pool(*s, q, options, std::max(options.candidates, options.k));
}

float Index::unknown_share(std::string_view query) const {
  const auto s = impl_->current();
  std::vector<text::Token> tokens;
  impl_->analyzer.analyze(query, &tokens);
  return Impl::unknown_share(tokens.size(), s->bm25->resolve(tokens));
}

Result<SearchResponse> Index::retrieve(std::string_view query, const SearchOptions& options) const {
  return impl_->run(*impl_->current(), query, options);
}

Result<std::vector<lexical::ScoredPassage>> Index::search_passages(std::string_view query,
                                                                   const SearchOptions& options) const {
  SearchOptions o = options;
  o.explain = false;
  auto response = impl_->run(*impl_->current(), query, o);
  if (!response) return response.status();
  std::vector<lexical::ScoredPassage> out;
  out.reserve(response->hits.size());
  for (const auto& h : response->hits) out.push_back({h.passage, h.score});
  return out;
}

Result<std::vector<ScoredHit>> Index::search_scored(std::string_view query, const SearchOptions& options) const {
  auto response = impl_->run(*impl_->current(), query, options);
  if (!response) return response.status();
  return std::move(response->hits);
}

SearchMode Index::resolve_mode(SearchMode mode) const {
  if (mode != SearchMode::kAuto) return mode;
  return has_vectors() ? SearchMode::kRerank : SearchMode::kBm25;
}

void Index::set_reranker(std::shared_ptr<const rank::Reranker> reranker) {
  impl_->reranker = reranker ? std::move(reranker) : rank::Reranker::builtin();
}

const rank::Reranker& Index::reranker() const { return *impl_->reranker; }

ScoredHit Index::explain(std::string_view query, uint32_t passage, std::span<const float> query_vector) const {
  const auto s = impl_->current();
  std::vector<text::Token> tokens;
  impl_->analyzer.analyze(query, &tokens);
  const auto terms = s->bm25->resolve(tokens);
  ScoredHit h;
  h.passage = passage;
  h.body_score = s->bm25->field_score(terms, passage, lexical::kBody);
  h.heading_score = s->bm25->field_score(terms, passage, lexical::kHeading);
  if (s->dim) {
    if (query_vector.size() == s->dim) {
      h.dense_score = s->dot(query_vector, passage);
    } else if (impl_->embedder) {
      if (auto qv = impl_->embed_query(query, s->dim); qv) h.dense_score = s->dot(*qv, passage);
    }
  }
  return h;
}

// Runs one(query) for each query in parallel; results in query order, or the first error.
template <typename Out, typename One>
static Result<std::vector<Out>> run_batch(std::span<const std::string> queries, One&& one) {
  std::vector<Out> out(queries.size());
  std::vector<Status> errors(queries.size());
  tbb::parallel_for(tbb::blocked_range<size_t>(0, queries.size(), 8), [&](const tbb::blocked_range<size_t>& r) {
    for (size_t i = r.begin(); i < r.end(); ++i) {
      auto result = one(queries[i]);
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

Result<std::vector<std::vector<SearchHit>>> Index::search_batch(std::span<const std::string> queries,
                                                                const SearchOptions& options) const {
  return run_batch<std::vector<SearchHit>>(queries, [&](const std::string& q) { return search(q, options); });
}

Result<std::vector<SearchResponse>> Index::retrieve_batch(std::span<const std::string> queries,
                                                          const SearchOptions& options) const {
  return run_batch<SearchResponse>(queries, [&](const std::string& q) { return retrieve(q, options); });
}
}  // namespace medsearch
