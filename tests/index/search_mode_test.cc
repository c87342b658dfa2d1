// The text forms of modes, levels and fusions (what the CLI and the Python
// module pass to the core), and SearchMode::kAuto: rerank on an index with
// passage vectors, BM25 without, answered exactly as the mode it resolves to.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

TEST(SearchModeText, NamesRoundTripAndBadNamesAreErrors) {
  for (SearchMode m : {SearchMode::kAuto, SearchMode::kBm25, SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
    auto parsed = parse_mode(mode_name(m));
    ASSERT_TRUE(parsed.is_ok()) << mode_name(m);
    EXPECT_EQ(*parsed, m);
  }
  auto bad = parse_mode("semantic");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'auto', 'bm25', 'dense', 'hybrid' or 'rerank', got 'semantic'"), std::string::npos);

  EXPECT_EQ(*parse_level("passage"), ResultLevel::kPassage);
  EXPECT_EQ(*parse_level("doc"), ResultLevel::kDocument);
  EXPECT_EQ(*parse_level("document"), ResultLevel::kDocument);
  EXPECT_EQ(parse_level("page").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*parse_fusion("convex"), Fusion::kConvex);
  EXPECT_EQ(*parse_fusion("rrf"), Fusion::kRrf);
  EXPECT_EQ(parse_fusion("max").status().code(), StatusCode::kInvalidArgument);
}

// kAuto answers as the mode it resolves to, and the response says which.
void expect_auto_is(const Index& index, SearchMode want) {
  EXPECT_EQ(index.snapshot()->resolve_mode(SearchMode::kAuto), want);
  for (SearchMode m : {SearchMode::kBm25, SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
    EXPECT_EQ(index.snapshot()->resolve_mode(m), m);
  }
  for (const auto& q : testing::kQueries) {
    SearchOptions a, b;
    a.mode = SearchMode::kAuto;
    b.mode = want;
    auto auto_response = index.search(q, a);
    auto want_response = index.search(q, b);
    ASSERT_TRUE(auto_response.is_ok() && want_response.is_ok()) << q;
    EXPECT_EQ(auto_response->mode, want);
    ASSERT_EQ(auto_response->hits.size(), want_response->hits.size()) << q;
    for (size_t i = 0; i < auto_response->hits.size(); ++i) {
      EXPECT_EQ(auto_response->hits[i].passage, want_response->hits[i].passage) << q;
      EXPECT_EQ(auto_response->hits[i].score, want_response->hits[i].score) << q;
    }
    EXPECT_EQ(std::isnan(auto_response->coverage), std::isnan(want_response->coverage));
  }
}

TEST(SearchModeAuto, RerankWithVectorsBm25Without) {
  auto lexical = Index::build(testing::corpus("c", 30, 4), BuildOptions{});
  ASSERT_TRUE(lexical.is_ok());
  expect_auto_is(**lexical, SearchMode::kBm25);
  auto dense = Index::build(testing::corpus("c", 30, 4), BuildOptions{}, nullptr, std::make_shared<testing::TinyEmbedder>());
  ASSERT_TRUE(dense.is_ok());
  expect_auto_is(**dense, SearchMode::kRerank);
  // candidate_pool: kAuto is the rerank pool on an index with vectors.
  SearchOptions a;
  a.mode = SearchMode::kAuto;
  EXPECT_TRUE((*dense)->candidate_pool("recurrent mesothelioma", a).is_ok());
  EXPECT_EQ((*lexical)->candidate_pool("recurrent mesothelioma", a).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medsearch
