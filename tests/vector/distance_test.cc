// Every kernel at every ISA level this CPU has, against the scalar reference.
#include "core/vector/kernels/distance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace medsearch::vector::kernels {
namespace {

class DistanceTest : public ::testing::TestWithParam<IsaLevel> {
 protected:
  void SetUp() override {
    k_ = kernels_for(GetParam());
    if (!k_) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam());
    ref_ = kernels_for(IsaLevel::kScalar);
  }
  const DistanceKernels* k_ = nullptr;
  const DistanceKernels* ref_ = nullptr;
};

std::vector<size_t> dims() {
  std::vector<size_t> d;
  for (size_t i = 1; i <= 70; ++i) d.push_back(i);
  for (size_t i : {96, 100, 127, 128, 129, 255, 256, 300, 384, 768, 1000, 1536}) d.push_back(i);
  return d;
}

TEST_P(DistanceTest, Float32MatchesScalar) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  for (size_t dim : dims()) {
    // Offset by one float so unaligned loads are exercised.
    std::vector<float> a(dim + 1), b(dim + 1);
    for (auto& x : a) x = g(rng);
    for (auto& x : b) x = g(rng);
    const float* pa = a.data() + 1;
    const float* pb = b.data() + 1;
    double mag = 0, sq = 0;
    for (size_t i = 0; i < dim; ++i) {
      mag += std::fabs(double{pa[i]} * pb[i]);
      sq += double(pa[i] - pb[i]) * (pa[i] - pb[i]);
    }
    EXPECT_NEAR(k_->dot_f32(pa, pb, dim), ref_->dot_f32(pa, pb, dim), 1e-5 * mag + 1e-6) << "dim " << dim;
    EXPECT_NEAR(k_->l2sq_f32(pa, pb, dim), ref_->l2sq_f32(pa, pb, dim), 1e-5 * sq + 1e-6) << "dim " << dim;
    const size_t p = dim;
    EXPECT_NEAR(k_->neg_dot_f32(pa, pb, &p), -ref_->dot_f32(pa, pb, dim), 1e-5 * mag + 1e-6);
    EXPECT_NEAR(k_->l2sq_f32_graph(pa, pb, &p), ref_->l2sq_f32(pa, pb, dim), 1e-5 * sq + 1e-6);
  }
}

TEST_P(DistanceTest, Int8IsExact) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> u(-127, 127);
  for (size_t dim : dims()) {
    std::vector<int8_t> a(dim + 3), b(dim + 3);
    for (auto& x : a) x = static_cast<int8_t>(u(rng));
    for (auto& x : b) x = static_cast<int8_t>(u(rng));
    const int8_t* pa = a.data() + 3;
    const int8_t* pb = b.data() + 3;
    EXPECT_EQ(k_->dot_i8(pa, pb, dim), ref_->dot_i8(pa, pb, dim)) << "dim " << dim;
    EXPECT_EQ(k_->l2sq_i8(pa, pb, dim), ref_->l2sq_i8(pa, pb, dim)) << "dim " << dim;
    const size_t p = dim;
    EXPECT_EQ(k_->neg_dot_i8(pa, pb, &p), -static_cast<float>(ref_->dot_i8(pa, pb, dim)));
    EXPECT_EQ(k_->l2sq_i8_graph(pa, pb, &p), static_cast<float>(ref_->l2sq_i8(pa, pb, dim)));
  }
}

TEST_P(DistanceTest, Int8Extremes) {
  // All +-127: the largest products, where maddubs saturation or a wrong sign
  // trick would show.
  for (size_t dim : {1, 31, 64, 65, 128, 1000}) {
    std::vector<int8_t> a(dim, 127), b(dim, -127), c(dim, 127);
    for (size_t i = 0; i < dim; i += 3) a[i] = -127;
    EXPECT_EQ(k_->dot_i8(a.data(), b.data(), dim), ref_->dot_i8(a.data(), b.data(), dim));
    EXPECT_EQ(k_->dot_i8(c.data(), c.data(), dim), 127 * 127 * static_cast<int32_t>(dim));
    EXPECT_EQ(k_->l2sq_i8(c.data(), b.data(), dim), 254 * 254 * static_cast<int32_t>(dim));
  }
}

TEST_P(DistanceTest, ManyMatchesOneToOne) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (size_t dim : {3, 64, 100}) {
    const size_t n = 37;
    std::vector<float> q(dim), rows(n * dim), out(n);
    for (auto& x : q) x = g(rng);
    for (auto& x : rows) x = g(rng);
    k_->dot_f32_many(q.data(), rows.data(), n, dim, out.data());
    for (size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(out[i], k_->dot_f32(q.data(), rows.data() + i * dim, dim));
    k_->l2sq_f32_many(q.data(), rows.data(), n, dim, out.data());
    for (size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(out[i], k_->l2sq_f32(q.data(), rows.data() + i * dim, dim));
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsaLevels, DistanceTest,
                         ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx2, IsaLevel::kAvx512, IsaLevel::kAvx512Vnni),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(DistanceDispatch, BestIsDetected) {
  EXPECT_EQ(best_kernels().level, detected_isa());
  EXPECT_NE(kernels_for(IsaLevel::kScalar), nullptr);
}

}  // namespace
}  // namespace medsearch::vector::kernels
