// PrecomputedEmbedder: lookup by text and kind, normalisation, errors, and an
// Index built and queried with the caller's vectors, checked against exact
// cosines computed here.
#include <medsearch/precomputed.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <medsearch/index.h>

#include "tests/index/tiny_corpus.h"
#include "tests/vector/test_data.h"

namespace medsearch::embed {
namespace {

using vector::testing::gaussian;

std::vector<double> normalised(std::span<const float> row) {
  double norm = 0;
  for (float v : row) norm += double(v) * v;
  std::vector<double> out;
  for (float v : row) out.push_back(v / std::sqrt(norm));
  return out;
}

TEST(PrecomputedEmbedder, ServesRowsByTextAndKindNormalised) {
  const std::vector<float> passages = {1, 0, 3, 4, 0, 2}, queries = {0, -5};
  auto made = PrecomputedEmbedder::create(2, "mine", {{"a", "b", "c"}, passages}, {{"a"}, queries});
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const PrecomputedEmbedder& e = **made;
  EXPECT_EQ(e.dim(), 2u);
  EXPECT_EQ(e.model_id(), "mine");
  EXPECT_EQ(e.size(TextKind::kPassage), 3u);
  EXPECT_EQ(e.size(TextKind::kQuery), 1u);
  std::vector<float> out(6);
  const std::vector<std::string_view> texts = {"c", "b", "a"};
  ASSERT_TRUE(e.embed(texts, TextKind::kPassage, out).is_ok());
  EXPECT_EQ(out, (std::vector<float>{0, 1, 0.6f, 0.8f, 1, 0}));
  std::vector<float> q(2);
  const std::vector<std::string_view> a = {"a"};
  ASSERT_TRUE(e.embed(a, TextKind::kQuery, q).is_ok());  // the query table, not the passage one
  EXPECT_EQ(q, (std::vector<float>{0, -1}));

  const std::vector<std::string_view> unknown = {"a", "zzz"};
  const Status st = e.embed(unknown, TextKind::kPassage, std::span(out).subspan(0, 4));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'zzz'"), std::string::npos) << st.message();
  const std::vector<std::string_view> b = {"b"};
  EXPECT_EQ(e.embed(b, TextKind::kQuery, q).code(), StatusCode::kInvalidArgument);  // only a passage text
  EXPECT_EQ(e.embed(b, TextKind::kPassage, out).code(), StatusCode::kInvalidArgument);  // wrong out size
}

TEST(PrecomputedEmbedder, RejectsBadTables) {
  const auto code = [](uint32_t dim, std::string id, PrecomputedEmbedder::Table p, PrecomputedEmbedder::Table q = {}) {
    return PrecomputedEmbedder::create(dim, std::move(id), std::move(p), std::move(q)).status().code();
  };
  const std::vector<float> two = {1, 2, 3, 4};
  EXPECT_EQ(code(0, "m", {{"a", "b"}, two}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(2, "", {{"a", "b"}, two}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(2, "m", {{}, {}}), StatusCode::kInvalidArgument);                 // nothing at all
  EXPECT_EQ(code(2, "m", {{"a"}, two}), StatusCode::kInvalidArgument);             // 2 rows for 1 text
  EXPECT_EQ(code(2, "m", {{"a", "a"}, two}), StatusCode::kInvalidArgument);        // text twice
  const std::vector<float> zero = {1, 2, 0, 0}, nan = {1, 2, NAN, 0}, inf = {INFINITY, 2, 1, 1};
  EXPECT_EQ(code(2, "m", {{"a", "b"}, zero}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(2, "m", {{"a", "b"}, nan}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(2, "m", {{"a", "b"}, inf}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(2, "m", {{"a", "b"}, two}, {{"q"}, two}), StatusCode::kInvalidArgument);  // query rows
  EXPECT_EQ(code(2, "m", {{}, {}}, {{"q", "r"}, two}), StatusCode::kOk);                    // queries only
}

TEST(PrecomputedEmbedder, BuildsAndQueriesAnIndexWithTheCallersVectors) {
  // The passages' texts come from a BM25-only build of the same documents.
  auto plain = Index::build(testing::corpus("pre", 24, 5), BuildOptions{});
  ASSERT_TRUE(plain.is_ok());
  const uint32_t n = (*plain)->num_passages(), dim = 12;
  std::vector<std::string> texts;
  for (uint32_t p = 0; p < n; ++p) texts.push_back((*plain)->snapshot()->embedding_text(p));
  const std::vector<float> rows = gaussian(size_t{n} * dim, 1);
  const std::vector<float> query_rows = gaussian(testing::kQueries.size() * dim, 2);
  auto made = PrecomputedEmbedder::create(dim, "my-model-v1", {texts, rows}, {testing::kQueries, query_rows});
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  std::shared_ptr<const Embedder> embedder = std::move(made).value();

  auto built = Index::build(testing::corpus("pre", 24, 5), BuildOptions{}, nullptr, embedder);
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  const Index& index = **built;
  ASSERT_EQ(index.num_passages(), n);
  EXPECT_EQ(index.stats().model_id, "my-model-v1");
  for (uint32_t p = 0; p < n; ++p) {  // each passage holds its own row
    const auto want = normalised(std::span(rows).subspan(size_t{p} * dim, dim));
    for (uint32_t j = 0; j < dim; ++j) ASSERT_NEAR(index.snapshot()->vector(p)[j], want[j], 1e-6) << p;
  }
  for (size_t qi = 0; qi < testing::kQueries.size(); ++qi) {
    const auto q = normalised(std::span(query_rows).subspan(qi * dim, dim));
    std::vector<std::pair<double, uint32_t>> exact;
    for (uint32_t p = 0; p < n; ++p) {
      const auto v = normalised(std::span(rows).subspan(size_t{p} * dim, dim));
      double dot = 0;
      for (uint32_t j = 0; j < dim; ++j) dot += q[j] * v[j];
      exact.emplace_back(-dot, p);
    }
    std::sort(exact.begin(), exact.end());
    SearchOptions o;
    o.mode = SearchMode::kDense;
    o.k = 5;
    auto response = index.search(testing::kQueries[qi], o);
    ASSERT_TRUE(response.is_ok()) << response.status().to_string();
    const auto& hits = response->hits;
    ASSERT_EQ(hits.size(), 5u);
    for (size_t r = 0; r < 5; ++r) {
      EXPECT_EQ(hits[r].passage, exact[r].second) << testing::kQueries[qi] << " rank " << r;
      EXPECT_NEAR(hits[r].score, -exact[r].first, 1e-5);
    }
  }
  // A query without a precomputed vector: the embedder's error, by name.
  SearchOptions o;
  o.mode = SearchMode::kDense;
  auto missing = index.search("a question nobody embedded", o);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("no query vector"), std::string::npos) << missing.status().message();
}

}  // namespace
}  // namespace medsearch::embed
