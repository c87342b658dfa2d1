#include "core/vector/quantizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace medsearch::vector::internal {
namespace {

// The encoder as first written: clamp(nearbyint(x / scale), -127, 127).
int8_t reference_code(float x, float inv) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(x * inv), -127.0f, 127.0f));
}

// encode() rounds with the 1.5 * 2^23 trick instead of nearbyint(): the codes
// must be the same, ties (x.5, to even) and clipping included, so indexes
// built before the change keep their meaning.
TEST(Int8Quantizer, EncodeMatchesNearbyintReference) {
  Int8Quantizer q;
  q.set_scale(0.5f);  // inv = 2: x = k / 4 hits every .0 / .5 tie of x * inv
  std::vector<float> x;
  for (int k = -600; k <= 600; ++k) x.push_back(static_cast<float>(k) / 4.0f);
  for (float v : {126.4f, 126.5f, 127.49f, 127.5f, 128.0f, 1e30f, -1e30f, -0.0f, 1e-30f, -63.75f}) x.push_back(v / 2);
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 40.0f);
  for (int i = 0; i < 10000; ++i) x.push_back(g(rng));
  std::vector<int8_t> got(x.size());
  q.encode(x.data(), x.size(), got.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], reference_code(x[i], 2.0f)) << "x = " << x[i];
}

TEST(Int8Quantizer, OwnScaleUsesTheLargestMagnitude) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (size_t dim : {1u, 7u, 100u, 384u, 1000u}) {
    std::vector<float> x(dim);
    for (float& v : x) v = g(rng);
    x[dim / 2] = -3.5f;  // the largest magnitude is negative
    std::vector<int8_t> got(dim);
    const float scale = Int8Quantizer::encode_own_scale(x.data(), dim, got.data());
    EXPECT_FLOAT_EQ(scale, 3.5f / 127.0f);
    EXPECT_EQ(got[dim / 2], -127);
    for (size_t i = 0; i < dim; ++i) ASSERT_EQ(got[i], reference_code(x[i], 1.0f / scale)) << dim << " " << i;
  }
  std::vector<float> zeros(16, 0.0f);
  std::vector<int8_t> out(16, 1);
  EXPECT_EQ(Int8Quantizer::encode_own_scale(zeros.data(), 16, out.data()), 1.0f);
  for (int8_t c : out) EXPECT_EQ(c, 0);
}

}  // namespace
}  // namespace medsearch::vector::internal
