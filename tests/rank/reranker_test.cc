// The reranker model: parsing (and refusing bad files), linear and tree
// scoring with contributions, the built-in model against the training tool's
// golden scores (LightGBM's own predictions).
#include <medsearch/reranker.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace medsearch::rank {
namespace {

std::string names_json() {
  std::string out = "[";
  for (size_t i = 0; i < feature_names().size(); ++i) out += (i ? ",\"" : "\"") + std::string(feature_names()[i]) + "\"";
  return out + "]";
}

std::string vec(float first, float rest) {
  std::string out = "[" + std::to_string(first);
  for (uint32_t i = 1; i < kNumFeatures; ++i) out += "," + std::to_string(rest);
  return out + "]";
}

const char kCoverage[] =
    R"("coverage":{"mean":[0,0,0,0,0,0,0,0],"scale":[1,1,1,1,1,1,1,1],"weights":[2,0,0,0,0,0,0,0],"bias":-1})";

std::string linear_model() {
  // score = 0.5 + 3 * (bm25 - 1) / 2
  return R"({"format":"medsearch-reranker","version":1,"name":"t","features":)" + names_json() +
         R"(,"model":{"type":"linear","mean":)" + vec(1, 0) + R"(,"scale":)" + vec(2, 1) + R"(,"weights":)" +
         vec(3, 0) + R"(,"bias":0.5},)" + kCoverage + "}";
}

std::string tree_model(const std::string& terms = "") {
  // One tree: dense <= 0.5 ? (bm25 <= 2 ? leaf0 : leaf1) : leaf2.
  const int dense = kDense, bm25 = kBm25;
  return R"({"format":"medsearch-reranker","version":1,"name":"trees","features":)" + names_json() +
         R"(,"model":{"type":"trees","bias":0.25,"trees":[{"feature":[)" + std::to_string(dense) + "," +
         std::to_string(bm25) + R"(],"threshold":[0.5,2],"left":[1,-1],"right":[-3,-2],"node_value":[0.5,0.2],)"
         R"("leaf_value":[0.1,0.4,1.0]}])" + (terms.empty() ? "" : ",\"terms\":" + terms) + "}," + kCoverage + "}";
}

TEST(Reranker, LinearScoreAndContributions) {
  auto model = Reranker::parse(linear_model());
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  FeatureVector x{};
  x[kBm25] = 5.0f;
  EXPECT_FLOAT_EQ((*model)->score(x), 0.5f + 3.0f * 2.0f);
  const auto parts = (*model)->contributions(x);
  EXPECT_FLOAT_EQ(parts[kBm25], 6.0f);
  float sum = (*model)->bias();
  for (float p : parts) sum += p;
  EXPECT_FLOAT_EQ(sum, (*model)->score(x));
  CoverageVector r{};
  r[kTopScore] = 0.5f;  // z = 2 * 0.5 - 1 = 0
  EXPECT_FLOAT_EQ((*model)->coverage(r), 0.5f);
}

TEST(Reranker, TreesFollowTheirSplits) {
  auto model = Reranker::parse(tree_model());
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  FeatureVector x{};
  x[kDense] = 0.4f;
  x[kBm25] = 1.0f;
  EXPECT_FLOAT_EQ((*model)->score(x), 0.25f + 0.1f);
  x[kBm25] = 3.0f;
  EXPECT_FLOAT_EQ((*model)->score(x), 0.25f + 0.4f);
  x[kDense] = 0.5f;  // <= goes left
  EXPECT_FLOAT_EQ((*model)->score(x), 0.25f + 0.4f);
  x[kDense] = 0.9f;
  EXPECT_FLOAT_EQ((*model)->score(x), 0.25f + 1.0f);
  // Saabas contributions: root 0.5 -> leaf 1.0, all on dense; they sum to the score.
  const auto parts = (*model)->contributions(x);
  EXPECT_FLOAT_EQ(parts[kDense], 0.5f);
  EXPECT_FLOAT_EQ((*model)->bias() + parts[kDense], (*model)->score(x));
  x[kDense] = 0.1f;
  x[kBm25] = 1.0f;
  const auto left = (*model)->contributions(x);
  EXPECT_FLOAT_EQ(left[kDense], 0.2f - 0.5f);
  EXPECT_FLOAT_EQ(left[kBm25], 0.1f - 0.2f);
}

// Linear terms (the prior the trees were boosted from) add weight x feature to
// the score and to that feature's contribution; the base does not move.
TEST(Reranker, TreeTermsAddToScoreAndContributions) {
  auto plain = Reranker::parse(tree_model());
  auto model = Reranker::parse(tree_model(R"([{"feature":"dense_z","weight":2.0},{"feature":"bm25","weight":-0.5}])"));
  ASSERT_TRUE(plain.is_ok() && model.is_ok()) << model.status().message();
  FeatureVector x{};
  x[kDense] = 0.9f;
  x[kBm25] = 3.0f;
  x[kDenseZ] = 1.5f;
  EXPECT_FLOAT_EQ((*model)->score(x), (*plain)->score(x) + 2.0f * 1.5f - 0.5f * 3.0f);
  EXPECT_FLOAT_EQ((*model)->bias(), (*plain)->bias());
  const auto parts = (*model)->contributions(x);
  EXPECT_FLOAT_EQ(parts[kDenseZ], 3.0f);
  EXPECT_FLOAT_EQ(parts[kBm25], -1.5f);
  float sum = (*model)->bias();
  for (float p : parts) sum += p;
  EXPECT_FLOAT_EQ(sum, (*model)->score(x));
  // score_batch() agrees with score() row by row.
  std::vector<FeatureVector> rows(11, x);
  for (size_t i = 0; i < rows.size(); ++i) rows[i][kDenseZ] = static_cast<float>(i) - 5.0f;
  std::vector<float> out(rows.size());
  (*model)->score_batch(rows, out);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_FLOAT_EQ(out[i], (*model)->score(rows[i]));
}

TEST(Reranker, RefusesBadModels) {
  auto expect_error = [](const std::string& json, const std::string& words) {
    auto model = Reranker::parse(json);
    ASSERT_FALSE(model.is_ok()) << json;
    EXPECT_NE(model.status().message().find(words), std::string::npos) << model.status().message();
  };
  expect_error("{not json", "not valid JSON");
  expect_error(R"({"format":"other","version":1})", "format");
  std::string m = linear_model();
  expect_error(std::string(m).replace(m.find("\"version\":1"), 11, "\"version\":7"), "version");
  expect_error(std::string(m).replace(m.find("\"bm25\""), 6, "\"bm42\""), "another feature set");
  expect_error(std::string(m).replace(m.find("\"linear\""), 8, "\"forest\""), "unknown model type");
  expect_error(std::string(m).replace(m.find(kCoverage), sizeof(kCoverage) - 1, "\"x\":1"), "coverage");
  std::string t = tree_model();
  expect_error(std::string(t).replace(t.find("\"left\":[1,-1]"), 13, "\"left\":[0,-1]"), "child index");
  expect_error(std::string(t).replace(t.find("\"leaf_value\":[0.1,0.4,1.0]"), 26, "\"leaf_value\":[0.1]"), "leaves");
  expect_error(std::string(m).replace(m.find("\"scale\":[2"), 10, "\"scale\":[0"), "positive");
  expect_error(tree_model(R"([{"feature":"dense_y","weight":1}])"), "unknown feature 'dense_y'");
  expect_error(tree_model(R"([{"feature":"dense_z"}])"), "weight");
  expect_error(tree_model(R"([7])"), "a term must be an object");
  auto missing = Reranker::load("/nonexistent/model.json");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model.json"), std::string::npos);
}

// The built-in model scores the golden rows as the trainer (LightGBM) did.
TEST(Reranker, BuiltinMatchesTrainingGolden) {
  const auto model = Reranker::builtin();
  ASSERT_NE(model, nullptr);
  std::ifstream in(std::string(MEDSEARCH_SOURCE_DIR) + "/data/reranker/reranker-v1.golden.jsonl");
  ASSERT_TRUE(in) << "golden file missing: run tools/train_reranker.py";
  simdjson::dom::parser parser;
  std::string line;
  size_t rows = 0;
  double worst = 0;
  while (std::getline(in, line)) {
    simdjson::dom::element row;
    ASSERT_EQ(parser.parse(line).get(row), simdjson::SUCCESS);
    FeatureVector x{};
    size_t i = 0;
    for (auto v : row["features"].get_array()) x[i++] = static_cast<float>(double(v));
    ASSERT_EQ(i, kNumFeatures);
    const double expected = double(row["score"]);
    worst = std::max(worst, std::abs(model->score(x) - expected));
    ++rows;
  }
  EXPECT_GE(rows, 50u);
  EXPECT_LT(worst, 1e-4) << "largest difference from the trainer's scores";
}

}  // namespace
}  // namespace medsearch::rank
