// The dense side of the Index: embedding at build, dense and hybrid search,
// attached vectors, query cache, persistence. Uses a small deterministic
// embedder written here, so no model weights are needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <cmath>
#include <unistd.h>

#include <medsearch/index.h>

#include "core/text/analyzer.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;

// Bag of hashed word stems, L2-normalised: texts sharing words are close.
class HashEmbedder final : public embed::Embedder {
 public:
  uint32_t dim() const override { return 64; }
  std::string model_id() const override { return "hash-64"; }
  Status embed(std::span<const std::string_view> texts, embed::TextKind, std::span<float> out) const override {
    if (out.size() != texts.size() * dim()) return Status::invalid_argument("bad output size");
    calls_ += 1;
    for (size_t i = 0; i < texts.size(); ++i) {
      float* v = out.data() + i * dim();
      std::fill(v, v + dim(), 0.0f);
      for (const auto& t : analyzer_.terms(texts[i])) v[std::hash<std::string>{}(t) % dim()] += 1.0f;
      float norm = 0;
      for (uint32_t j = 0; j < dim(); ++j) norm += v[j] * v[j];
      for (uint32_t j = 0; j < dim() && norm > 0; ++j) v[j] /= std::sqrt(norm);
    }
    return Status::ok();
  }
  mutable std::atomic<int> calls_{0};

 private:
  text::Analyzer analyzer_;
};

std::vector<io::Document> corpus(size_t n) {
  static const char* kTopics[] = {"mesothelioma pleural asbestos pemetrexed", "breast cancer tamoxifen HER2",
                                  "lung cancer nivolumab PD-L1", "colorectal cancer aspirin adenoma",
                                  "leukemia imatinib BCR-ABL", "melanoma ipilimumab skin"};
  std::vector<io::Document> docs;
  for (size_t i = 0; i < n; ++i) {
    io::Document d;
    d.doc_id = "d" + std::to_string(i);
    d.corpus = i % 2 ? "odd" : "even";
    d.title = std::string("Topic ") + kTopics[i % 6];
    d.body = std::string(kTopics[i % 6]) + " study number " + std::to_string(i) + " of treatment outcomes";
    docs.push_back(std::move(d));
  }
  return docs;
}

TEST(IndexDense, BuildEmbedsAndDenseSearchFindsTopic) {
  auto embedder = std::make_shared<HashEmbedder>();
  auto index = Index::build(corpus(60), BuildOptions{}, nullptr, embedder);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  ASSERT_TRUE((*index)->has_vectors());
  EXPECT_EQ((*index)->stats().dim, 64u);
  for (auto mode : {SearchMode::kDense, SearchMode::kHybrid}) {
    SearchOptions o;
    o.mode = mode;
    o.k = 5;
    auto response = (*index)->search("nivolumab lung PD-L1", o);
    ASSERT_TRUE(response.is_ok()) << response.status().to_string();
    ASSERT_EQ(response->hits.size(), 5u);
    for (const auto& p : response->passages()) EXPECT_NE(p.title.find("lung"), std::string::npos) << p.title;
    EXPECT_GT(response->hits[0].dense_score, 0.5f);
  }
}

TEST(IndexDense, DenseResultsEqualExactCosineAndRespectFilters) {
  auto embedder = std::make_shared<HashEmbedder>();
  auto index = Index::build(corpus(40), BuildOptions{}, nullptr, embedder);
  ASSERT_TRUE(index.is_ok());
  const Snapshot& ix = *(*index)->snapshot();
  auto qv = ix.embed_query("melanoma skin ipilimumab");
  ASSERT_TRUE(qv.is_ok());
  // Exact reference: cosine of the query with every passage vector.
  std::vector<std::pair<float, uint32_t>> all;
  for (uint32_t p = 0; p < ix.num_passages(); ++p) {
    float dot = 0;
    auto v = ix.vector(p);
    for (size_t j = 0; j < v.size(); ++j) dot += v[j] * (*qv)[j];
    all.emplace_back(-dot, p);
  }
  std::sort(all.begin(), all.end());
  SearchOptions o;
  o.mode = SearchMode::kDense;
  o.k = 8;
  auto hits = ix.search("melanoma skin ipilimumab", o);
  ASSERT_TRUE(hits.is_ok());
  ASSERT_EQ(hits->hits.size(), 8u);
  for (size_t i = 0; i < hits->hits.size(); ++i) EXPECT_NEAR(hits->hits[i].score, -all[i].first, 1e-5);

  o.filters.corpus = {"odd"};
  o.k = 20;
  auto filtered = ix.search("melanoma skin ipilimumab", o);
  ASSERT_TRUE(filtered.is_ok());
  EXPECT_EQ(filtered->hits.size(), 20u);
  for (const auto& p : filtered->passages()) EXPECT_EQ(p.corpus, "odd");
}

TEST(IndexDense, QueryVectorsAreCachedAndCanBeGiven) {
  auto embedder = std::make_shared<HashEmbedder>();
  auto index = Index::build(corpus(30), BuildOptions{}, nullptr, embedder);
  ASSERT_TRUE(index.is_ok());
  SearchOptions o;
  o.mode = SearchMode::kHybrid;
  const int before = embedder->calls_;
  ASSERT_TRUE((*index)->search("aspirin adenoma", o).is_ok());
  ASSERT_TRUE((*index)->search("aspirin adenoma", o).is_ok());
  EXPECT_EQ(embedder->calls_ - before, 1) << "a repeated query must not be embedded twice";

  auto qv = (*index)->snapshot()->embed_query("aspirin adenoma");
  SearchOptions given = o;
  given.query_vector = *qv;
  auto a = (*index)->search("aspirin adenoma", o);
  auto b = (*index)->search("aspirin adenoma", given);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ(a->hits.size(), b->hits.size());
  for (size_t i = 0; i < a->hits.size(); ++i) EXPECT_EQ(a->hits[i].passage, b->hits[i].passage);

  std::vector<float> wrong(7, 0.1f);
  given.query_vector = wrong;
  EXPECT_EQ((*index)->search("x", given).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> nan(64, std::nanf(""));
  given.query_vector = nan;
  EXPECT_EQ((*index)->search("x", given).status().code(), StatusCode::kInvalidArgument);
}

TEST(IndexDense, WithoutVectorsDenseModesAreClearErrors) {
  auto index = Index::build(corpus(10), BuildOptions{});
  ASSERT_TRUE(index.is_ok());
  SearchOptions o;
  o.mode = SearchMode::kDense;
  auto r = (*index)->search("lung", o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no passage vectors"), std::string::npos);
}

TEST(IndexDense, AttachedVectorsPersistAndModelsMustMatch) {
  auto index = Index::build(corpus(50), BuildOptions{});
  ASSERT_TRUE(index.is_ok());
  HashEmbedder e;
  const uint32_t n = (*index)->num_passages();
  std::vector<float> rows(size_t{n} * e.dim());
  std::vector<std::string> texts;
  for (uint32_t p = 0; p < n; ++p) texts.push_back((*index)->snapshot()->embedding_text(p));
  std::vector<std::string_view> views(texts.begin(), texts.end());
  ASSERT_TRUE(e.embed(views, embed::TextKind::kPassage, rows).is_ok());
  EXPECT_FALSE((*index)->attach_vectors(std::span<const float>(rows).first(rows.size() - 1), e.dim(), "x").is_ok());
  ASSERT_TRUE((*index)->attach_vectors(rows, e.dim(), e.model_id()).is_ok());

  const fs::path dir = fs::temp_directory_path() / ("medsearch_dense_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*index)->save(dir).is_ok());
  auto loaded = Index::load(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_TRUE((*loaded)->has_vectors());
  // Queries need an embedder of the same model.
  class Other final : public embed::Embedder {
   public:
    uint32_t dim() const override { return 64; }
    std::string model_id() const override { return "other"; }
    Status embed(std::span<const std::string_view>, embed::TextKind, std::span<float>) const override {
      return Status::ok();
    }
  };
  EXPECT_EQ((*loaded)->attach_embedder(std::make_shared<Other>()).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*loaded)->attach_embedder(std::make_shared<HashEmbedder>()).is_ok());
  for (auto mode : {SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
    for (auto level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
      SearchOptions o;
      o.mode = mode;
      o.level = level;
      (*index)->attach_embedder(std::make_shared<HashEmbedder>()).is_ok();
      auto a = (*index)->search("breast tamoxifen", o);
      auto b = (*loaded)->search("breast tamoxifen", o);
      ASSERT_TRUE(a.is_ok() && b.is_ok());
      ASSERT_EQ(a->hits.size(), b->hits.size());
      for (size_t i = 0; i < a->hits.size(); ++i) {
        EXPECT_EQ(a->hits[i].passage, b->hits[i].passage);
        EXPECT_EQ(a->hits[i].score, b->hits[i].score);
      }
    }
  }
  fs::remove_all(dir);
}


// The pool holds each passage of the two lists once, with features that agree
// with the index's own scores.
TEST(IndexPipeline, CandidatePoolIsTheUnionWithConsistentFeatures) {
  auto index = Index::build(corpus(60), BuildOptions{}, nullptr, std::make_shared<HashEmbedder>());
  ASSERT_TRUE(index.is_ok());
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  o.candidates = 20;
  const std::string q = "lung cancer nivolumab outcomes";
  auto pool = (*index)->candidate_pool(q, o);
  ASSERT_TRUE(pool.is_ok()) << pool.status().message();
  std::set<uint32_t> seen;
  SearchOptions bm25 = o, dense = o;
  bm25.mode = SearchMode::kBm25;
  bm25.k = 20;
  dense.mode = SearchMode::kDense;
  dense.k = 20;
  std::set<uint32_t> expected;
  for (const SearchOptions& one : {bm25, dense}) {
    auto response = (*index)->search(q, one);
    ASSERT_TRUE(response.is_ok());
    for (const auto& h : response->hits) expected.insert(h.passage);
  }
  float best_dense = -1;
  for (const auto& c : *pool) {
    EXPECT_TRUE(seen.insert(c.passage).second) << "passage " << c.passage << " twice";
    const Hit e = (*index)->snapshot()->explain(q, c.passage);
    EXPECT_NEAR(c.body, e.body_score, 1e-4);
    EXPECT_NEAR(c.heading, e.heading_score, 1e-4);
    EXPECT_NEAR(c.dense, e.dense_score, 1e-5);
    EXPECT_NEAR(c.features[rank::kBm25], e.body_score + 0.4f * e.heading_score, 1e-3);
    EXPECT_GE(c.features[rank::kCoverAny], c.features[rank::kCoverBody]);
    EXPECT_LE(c.features[rank::kCoverAny], 1.0f + 1e-6f);
    best_dense = std::max(best_dense, c.dense);
  }
  EXPECT_EQ(seen, expected);
  for (const auto& c : *pool) EXPECT_NEAR(c.features[rank::kDenseGap], c.dense - best_dense, 1e-6);

  // Excluding documents removes their passages, as if they were not indexed.
  std::vector<uint32_t> excluded;
  for (const auto& c : *pool) excluded.push_back((*index)->snapshot()->document_of(c.passage));
  auto rest = (*index)->candidate_pool(q, o, excluded);
  ASSERT_TRUE(rest.is_ok());
  for (const auto& c : *rest) {
    EXPECT_EQ(std::count(excluded.begin(), excluded.end(), (*index)->snapshot()->document_of(c.passage)), 0);
  }
  EXPECT_FALSE((*index)->candidate_pool(q, o, std::vector<uint32_t>{100000}).is_ok());
  SearchOptions wrong = o;
  wrong.mode = SearchMode::kBm25;
  EXPECT_FALSE((*index)->candidate_pool(q, wrong).is_ok());
}

TEST(IndexPipeline, RerankExplainsItsScoresAndGivesCoverage) {
  auto index = Index::build(corpus(60), BuildOptions{}, nullptr, std::make_shared<HashEmbedder>());
  ASSERT_TRUE(index.is_ok());
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  o.k = 8;
  auto r = (*index)->search("melanoma ipilimumab", o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->hits.size(), 8u);
  EXPECT_GT(r->coverage, 0.0f);
  EXPECT_LT(r->coverage, 1.0f);
  const auto& model = r->snapshot->reranker();
  std::map<uint32_t, int> per_doc;
  for (size_t i = 0; i < r->hits.size(); ++i) {
    const auto& h = r->hits[i];
    ASSERT_TRUE(h.has_features);
    EXPECT_FLOAT_EQ(model.score(h.features), h.score);
    float sum = model.bias();
    for (float c : model.contributions(h.features)) sum += c;
    EXPECT_NEAR(sum, h.score, 1e-4);
    if (i) EXPECT_LE(h.score, r->hits[i - 1].score);
    EXPECT_LE(++per_doc[r->snapshot->document_of(h.passage)], 3);
  }
  // The top hits are about the topic asked.
  EXPECT_NE(r->passage(0).text.find("melanoma"), std::string::npos);
  // Other modes are not calibrated.
  o.mode = SearchMode::kHybrid;
  auto hybrid = (*index)->search("melanoma ipilimumab", o);
  ASSERT_TRUE(hybrid.is_ok());
  EXPECT_TRUE(std::isnan(hybrid->coverage));
}

TEST(IndexPipeline, FusionChoicesAndBadOptions) {
  auto index = Index::build(corpus(60), BuildOptions{}, nullptr, std::make_shared<HashEmbedder>());
  ASSERT_TRUE(index.is_ok());
  const std::string q = "breast cancer tamoxifen";
  SearchOptions o;
  o.mode = SearchMode::kHybrid;
  o.k = 5;
  o.max_per_doc = 0;
  // Convex with weight 1 is BM25 over the pool; with weight 0, dense.
  o.fusion = Fusion::kConvex;
  o.bm25_weight = 1.0f;
  auto lexical_only = (*index)->search(q, o);
  SearchOptions bm25 = o;
  bm25.mode = SearchMode::kBm25;
  auto reference = (*index)->search(q, bm25);
  ASSERT_TRUE(lexical_only.is_ok() && reference.is_ok());
  ASSERT_EQ(lexical_only->hits.size(), reference->hits.size());
  for (size_t i = 0; i < reference->hits.size(); ++i) {
    EXPECT_EQ(lexical_only->hits[i].passage, reference->hits[i].passage);
  }
  o.fusion = Fusion::kRrf;
  auto rrf = (*index)->search(q, o);
  ASSERT_TRUE(rrf.is_ok());
  EXPECT_EQ(rrf->hits.size(), 5u);
  for (float bad : {-0.1f, 1.5f, std::nanf("")}) {
    SearchOptions b = o;
    b.bm25_weight = bad;
    EXPECT_EQ((*index)->search(q, b).status().code(), StatusCode::kInvalidArgument);
    b = o;
    b.mmr = bad;
    EXPECT_EQ((*index)->search(q, b).status().code(), StatusCode::kInvalidArgument);
  }
  // Document level: one passage per document, and the filters hold in every mode.
  for (auto mode : {SearchMode::kHybrid, SearchMode::kRerank}) {
    SearchOptions d;
    d.mode = mode;
    d.level = ResultLevel::kDocument;
    d.k = 10;
    d.filters.corpus = {"odd"};
    auto hits = (*index)->search(q, d);
    ASSERT_TRUE(hits.is_ok());
    std::set<std::string> docs;
    for (const auto& p : hits->passages()) {
      EXPECT_TRUE(docs.insert(p.doc_id).second);
      EXPECT_EQ(p.corpus, "odd");
    }
  }
}

TEST(IndexPipeline, RerankWithoutVectorsIsAClearError) {
  auto index = Index::build(corpus(12), BuildOptions{});
  ASSERT_TRUE(index.is_ok());
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  auto r = (*index)->search("melanoma", o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no passage vectors"), std::string::npos);
}

}  // namespace
}  // namespace medsearch
