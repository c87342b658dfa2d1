// Grouping and maximal marginal relevance on hand-made candidates.
#include "core/rank/diversify.h"

#include <gtest/gtest.h>

#include <cmath>

namespace medsearch::rank {
namespace {

// Six passages in three documents (0: p0 p1, 1: p2 p3, 2: p4 p5); 2-d vectors:
// p0 and p2 are identical (a page and its duplicate); p3 and p5 point away from them.
struct Fixture {
  std::vector<uint32_t> passage_doc = {0, 0, 1, 1, 2, 2};
  std::vector<uint32_t> first = {0, 2, 4, 6};
  std::vector<float> vectors;
  CorpusView view;
  Fixture() {
    const float angle[] = {0.0f, 1.2f, 0.0f, 1.4f, 1.5f, -1.4f};
    for (float a : angle) {
      vectors.push_back(std::cos(a));
      vectors.push_back(std::sin(a));
    }
    view.passage_doc = passage_doc;
    view.doc_first_passage = first;
    view.vectors = vectors;
    view.dim = 2;
  }
};

std::vector<Candidate> ranked(std::initializer_list<std::pair<uint32_t, float>> items) {
  std::vector<Candidate> out;
  for (auto [p, s] : items) out.push_back(Candidate{.passage = p, .score = s});
  return out;
}

std::vector<uint32_t> passages(const std::vector<Candidate>& c, const std::vector<uint32_t>& picked) {
  std::vector<uint32_t> out;
  for (uint32_t i : picked) out.push_back(c[i].passage);
  return out;
}

TEST(Diversify, ByScoreWithPerDocumentLimit) {
  Fixture f;
  const auto c = ranked({{0, 1.0f}, {1, 0.9f}, {2, 0.8f}, {3, 0.7f}, {4, 0.6f}});
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 4})), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 4, .max_per_document = 1})), (std::vector<uint32_t>{0, 2, 4}));
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 2, .max_per_document = 1})), (std::vector<uint32_t>{0, 2}));
  EXPECT_TRUE(diversify({}, f.view, {.k = 3}).empty());
}

TEST(Diversify, MmrPushesTheDuplicateDown) {
  Fixture f;
  // p2 (a copy of p0) scores second; with MMR, p3 and p5 (different directions) overtake it.
  const auto c = ranked({{0, 1.0f}, {2, 0.95f}, {3, 0.9f}, {5, 0.85f}, {4, 0.5f}});
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 3, .mmr_lambda = 1.0f})), (std::vector<uint32_t>{0, 2, 3}));
  // Worked by hand: after p0, p3 and p5 (nearly orthogonal to it) beat the copy.
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 3, .mmr_lambda = 0.5f})), (std::vector<uint32_t>{0, 3, 5}));
  // lambda 0 still returns k distinct passages.
  const auto pure = diversify(c, f.view, {.k = 5, .mmr_lambda = 0.0f});
  EXPECT_EQ(pure.size(), 5u);
}

TEST(Diversify, WithoutVectorsMmrIsSkipped) {
  Fixture f;
  f.view.vectors = {};
  const auto c = ranked({{0, 1.0f}, {2, 0.95f}, {3, 0.9f}});
  EXPECT_EQ(passages(c, diversify(c, f.view, {.k = 3, .mmr_lambda = 0.3f})), (std::vector<uint32_t>{0, 2, 3}));
}

}  // namespace
}  // namespace medsearch::rank
