// Fusion on hand-made rankings, ties included.
#include "core/rank/fusion.h"

#include <gtest/gtest.h>

namespace medsearch::rank {
namespace {

TEST(Fusion, RrfSumsReciprocalRanks) {
  const std::vector<ScoredPassage> a = {{7, 9.0f}, {3, 5.0f}, {1, 1.0f}};
  const std::vector<ScoredPassage> b = {{3, 0.9f}, {8, 0.8f}};
  const std::span<const ScoredPassage> lists[] = {a, b};
  const auto fused = rrf_fuse(lists, 60.0f);
  ASSERT_EQ(fused.size(), 4u);
  EXPECT_EQ(fused[0].passage, 3u);  // 1/62 + 1/61
  EXPECT_FLOAT_EQ(fused[0].score, 1.0f / 62 + 1.0f / 61);
  // 7 (rank 1 in a) and 8 (rank 2 in b): 1/61 > 1/62.
  EXPECT_EQ(fused[1].passage, 7u);
  EXPECT_EQ(fused[2].passage, 8u);
  EXPECT_EQ(fused[3].passage, 1u);
}

TEST(Fusion, TiesGoToTheSmallerPassage) {
  const std::vector<ScoredPassage> a = {{9, 1.0f}};
  const std::vector<ScoredPassage> b = {{4, 1.0f}};
  const std::span<const ScoredPassage> lists[] = {a, b};
  const auto fused = rrf_fuse(lists);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(fused[0].passage, 4u);
  EXPECT_EQ(fused[1].passage, 9u);
  EXPECT_EQ(fused[0].score, fused[1].score);
}

TEST(Fusion, ConvexScoresOverAlignedArrays) {
  // a: 10 -> 1, 6 -> 0.5, 2 -> 0; b: 0.5 -> 0, 0.9 -> 1.
  const float a[] = {10, 6, 2}, b[] = {0.5f, 0.5f, 0.9f};
  float out[3];
  convex_scores(a, b, 0.25f, out);
  EXPECT_FLOAT_EQ(out[0], 0.25f);
  EXPECT_FLOAT_EQ(out[1], 0.125f);
  EXPECT_FLOAT_EQ(out[2], 0.75f);
  // Weight 1 is side a alone, weight 0 side b alone.
  convex_scores(a, b, 1.0f, out);
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[2], 0.0f);
  convex_scores(a, b, 0.0f, out);
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[2], 1.0f);
}

TEST(Fusion, ConstantAndEmptyLists) {
  // A side with one score for all: no preference, every passage gets 1 x its weight.
  const float flat[] = {2.0f, 2.0f}, other[] = {1.0f, 3.0f};
  float out[2];
  convex_scores(flat, other, 0.5f, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
  convex_scores(std::span<const float>{}, std::span<const float>{}, 0.5f, std::span<float>{});
  EXPECT_TRUE(rrf_fuse({}).empty());
}

}  // namespace
}  // namespace medsearch::rank
