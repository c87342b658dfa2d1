// The reranker model: parsing (and refusing bad files), linear and tree
// scoring with contributions, the built-in model against the training tool's
// golden scores (LightGBM's own predictions).
#include <medsearch/reranker.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
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

// score_batch() (QuickScorer: 8 rows at a time for trees of up to 16 leaves,
// row by row up to 64; else the flat walk) gives, bit for bit, the floats of walking each tree from its root
// (x <= threshold: left; NaN: left, as the batch walk has always sent it) and
// adding the leaves in tree order: random trees of 1 to 80 leaves, rows whose
// values often equal a threshold, and a few infinite and NaN values.
TEST(Reranker, BatchScoresAreTheTreeWalks) {
  struct RandomTree {
    std::vector<int32_t> feature, left, right;
    std::vector<float> threshold, leaf_value;
  };
  std::mt19937 rng(11);
  const float grid[] = {-2.0f, -0.5f, 0.0f, 0.25f, 0.3f, 1.0f, 7.5f};  // thresholds and row values meet
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto random_value = [&] { return pick(3) == 0 ? std::uniform_real_distribution<float>(-3, 8)(rng) : grid[pick(7)]; };
  for (uint32_t leaves : {1u, 2u, 15u, 31u, 64u, 65u, 80u}) {
    std::vector<RandomTree> trees(12);
    for (RandomTree& t : trees) {
      // Split a random leaf until the tree has `leaves`; then number the nodes
      // breadth-first so children point forward, as the model file requires.
      struct Node {
        bool split = false;
        int32_t feature = 0, left = -1, right = -1;
        float threshold = 0, value = 0;
      };
      std::vector<Node> nodes(1);
      std::vector<int32_t> open = {0};
      while (open.size() < leaves) {
        const size_t i = pick(open.size());
        const int32_t n = open[i];
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
        nodes[n].split = true;
        nodes[n].feature = static_cast<int32_t>(pick(kNumFeatures));
        nodes[n].threshold = random_value();
        nodes[n].left = static_cast<int32_t>(nodes.size());
        nodes[n].right = static_cast<int32_t>(nodes.size() + 1);
        nodes.resize(nodes.size() + 2);
        open.push_back(nodes[n].left);
        open.push_back(nodes[n].right);
      }
      std::vector<int32_t> split_id(nodes.size(), -1), leaf_id(nodes.size(), -1);
      std::vector<int32_t> order = {0};
      for (size_t i = 0; i < order.size(); ++i) {
        if (nodes[order[i]].split) {
          order.push_back(nodes[order[i]].left);
          order.push_back(nodes[order[i]].right);
        }
      }
      for (int32_t n : order) {
        if (nodes[n].split) {
          split_id[n] = static_cast<int32_t>(t.feature.size());
          t.feature.push_back(nodes[n].feature);
          t.threshold.push_back(nodes[n].threshold);
        }
      }
      // Leaves in a shuffled order, as LightGBM numbers them by creation, not position.
      std::vector<int32_t> leaf_nodes;
      for (int32_t n : order) {
        if (!nodes[n].split) leaf_nodes.push_back(n);
      }
      std::shuffle(leaf_nodes.begin(), leaf_nodes.end(), rng);
      for (int32_t n : leaf_nodes) {
        leaf_id[n] = static_cast<int32_t>(t.leaf_value.size());
        t.leaf_value.push_back(std::uniform_real_distribution<float>(-1, 1)(rng));
      }
      t.left.resize(t.feature.size());
      t.right.resize(t.feature.size());
      for (int32_t n : order) {
        if (!nodes[n].split) continue;
        auto child = [&](int32_t c) { return nodes[c].split ? split_id[c] : ~leaf_id[c]; };
        t.left[split_id[n]] = child(nodes[n].left);
        t.right[split_id[n]] = child(nodes[n].right);
      }
    }
    auto list = [](const auto& v) {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v[i]));  // floats round-trip
        out += (i ? "," : "") + std::string(buf);
      }
      return out + "]";
    };
    const float bias = 0.125f;
    std::string json = R"({"format":"medsearch-reranker","version":1,"name":"random","features":)" + names_json() +
                       R"(,"model":{"type":"trees","bias":0.125,"trees":[)";
    for (size_t i = 0; i < trees.size(); ++i) {
      const RandomTree& t = trees[i];
      json += (i ? "," : "") + std::string(R"({"feature":)") + list(t.feature) + R"(,"threshold":)" + list(t.threshold) +
              R"(,"left":)" + list(t.left) + R"(,"right":)" + list(t.right) +
              R"(,"node_value":)" + list(std::vector<float>(t.feature.size(), 0.0f)) +
              R"(,"leaf_value":)" + list(t.leaf_value) + "}";
    }
    json += R"(],"terms":[{"feature":"dense_z","weight":2.5}]},)" + std::string(kCoverage) + "}";
    auto model = Reranker::parse(json);
    ASSERT_TRUE(model.is_ok()) << model.status().message();

    std::vector<FeatureVector> rows(203);  // not a multiple of the walk's 8 lanes
    for (size_t r = 0; r < rows.size(); ++r) {
      for (float& v : rows[r]) v = random_value();
      if (r % 17 == 0) rows[r][pick(kNumFeatures)] = std::numeric_limits<float>::quiet_NaN();
      if (r % 19 == 0) rows[r][pick(kNumFeatures)] = std::numeric_limits<float>::infinity();
      if (r % 23 == 0) rows[r][pick(kNumFeatures)] = -std::numeric_limits<float>::infinity();
    }
    std::vector<float> out(rows.size());
    (*model)->score_batch(rows, out);
    for (size_t r = 0; r < rows.size(); ++r) {
      const FeatureVector& x = rows[r];
      float expected = bias;
      for (const RandomTree& t : trees) {
        int32_t n = t.feature.empty() ? -1 : 0;
        while (n >= 0) n = x[t.feature[n]] > t.threshold[n] ? t.right[n] : t.left[n];
        expected += t.leaf_value[~n];
      }
      expected += 2.5f * x[kDenseZ];
      ASSERT_EQ(std::bit_cast<uint32_t>(out[r]), std::bit_cast<uint32_t>(expected))
          << leaves << " leaves, row " << r << ": " << out[r] << " vs " << expected;
      ASSERT_EQ(std::bit_cast<uint32_t>((*model)->score(x)), std::bit_cast<uint32_t>(expected));
    }
  }
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
