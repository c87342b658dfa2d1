// The encoder's float32 kernels (core/embed/kernels/dense.h) at every level
// this CPU runs, against plain double-precision loops: the same results up
// to float rounding, whichever level the dispatch picks.
#include "core/embed/kernels/dense.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

namespace medsearch::embed::kernels {
namespace {

using internal::CpuLevel;

// 64-byte aligned floats, as the encoder's buffers are.
struct Buffer {
  explicit Buffer(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * 4 + 63) / 64 * 64))), n(n) {}
  ~Buffer() { std::free(p); }
  float* p;
  size_t n;
  float& operator[](size_t i) { return p[i]; }
};

void fill(Buffer& b, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> g(0.0f, scale);
  for (size_t i = 0; i < b.n; ++i) b[i] = g(rng);
}

class DenseKernelsTest : public ::testing::TestWithParam<CpuLevel> {
 protected:
  void SetUp() override {
    k_ = dense_kernels_for(GetParam());
    if (k_ == nullptr) GTEST_SKIP() << "this CPU (or MEDSEARCH_CPU_LEVEL) is below " << internal::cpu_level_name(GetParam());
  }
  const DenseKernels* k_ = nullptr;
};

// |got - want| <= tol (1 + |want|), element by element.
void expect_near(const float* got, const std::vector<double>& want, double tol, const char* what) {
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::abs(got[i] - want[i]) > tol * (1 + std::abs(want[i])) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0u) << what;
}

std::vector<double> gemm_nt_ref(size_t m, size_t n, size_t k, const float* a, const float* w) {
  std::vector<double> c(m * n);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t p = 0; p < k; ++p) s += double(a[i * k + p]) * w[j * k + p];
      c[i * n + j] = s;
    }
  }
  return c;
}

TEST_P(DenseKernelsTest, ReportsItsLevel) {
  EXPECT_EQ(k_->level, GetParam() == CpuLevel::kAmx ? CpuLevel::kV4 : GetParam());
  EXPECT_GT(k_->small_cols, 0u);
  EXPECT_GT(k_->small_depth, 0u);
}

TEST_P(DenseKernelsTest, GemmMatchesDoubleLoops) {
  std::mt19937 rng(3);
  for (auto [m, n, k] : {std::array<size_t, 3>{1, 1, 1}, {7, 13, 5}, {20, 384, 384}, {130, 96, 200}, {513, 48, 384}}) {
    Buffer a(m * k), w(n * k), c(m * n);
    fill(a, rng);
    fill(w, rng);
    const auto want = gemm_nt_ref(m, n, k, a.p, w.p);
    k_->gemm_nt(m, n, k, a.p, w.p, c.p);
    expect_near(c.p, want, 1e-5 * std::sqrt(double(k)), "gemm_nt");
    // Accumulating onto 1 adds 1.
    std::fill(c.p, c.p + m * n, 1.0f);
    k_->gemm_nt_add(m, n, k, a.p, w.p, c.p);
    std::vector<double> plus_one(want);
    for (double& x : plus_one) x += 1;
    expect_near(c.p, plus_one, 1e-5 * std::sqrt(double(k)), "gemm_nt_add");
  }
}

// The in-place kernel for a few rows: any split of the columns gives the same
// bits (the encoder splits them across threads), and untouched columns stay.
TEST_P(DenseKernelsTest, SmallGemmSplitsColumnsExactly) {
  std::mt19937 rng(5);
  const size_t n = 12 * k_->small_cols * 4, k = 24 * k_->small_depth;
  for (size_t m : {1, 2, 3, 4, 5, 17, 48}) {
    Buffer a(m * k), w(n * k), whole(m * n), split(m * n);
    fill(a, rng);
    fill(w, rng);
    std::fill(whole.p, whole.p + m * n, 0.5f);
    std::fill(split.p, split.p + m * n, 0.5f);
    k_->small_gemm_nt_add(m, n, k, a.p, w.p, whole.p, 0, n);
    std::vector<double> want = gemm_nt_ref(m, n, k, a.p, w.p);
    for (double& x : want) x += 0.5;
    expect_near(whole.p, want, 1e-5 * std::sqrt(double(k)), "small_gemm_nt_add");
    const size_t third = n / 3 / k_->small_cols * k_->small_cols;
    k_->small_gemm_nt_add(m, n, k, a.p, w.p, split.p, third, n);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < third; ++j) ASSERT_EQ(split[i * n + j], 0.5f) << "column " << j << " touched";
    }
    k_->small_gemm_nt_add(m, n, k, a.p, w.p, split.p, 0, third);
    EXPECT_EQ(0, std::memcmp(whole.p, split.p, m * n * sizeof(float))) << "m = " << m;
  }
}

TEST_P(DenseKernelsTest, LayerNormGeluAttentionPooling) {
  std::mt19937 rng(9);
  const size_t rows = 11, H = 96, heads = 3, d = H / heads, T = rows;
  Buffer x(rows * H), bias(H), gamma(H), beta(H);
  fill(x, rng, 3.0f);
  fill(bias, rng);
  fill(gamma, rng);
  fill(beta, rng);
  std::vector<double> want(rows * H);
  for (size_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (size_t j = 0; j < H; ++j) mean += double(x[r * H + j]) + bias[j];
    mean /= H;
    for (size_t j = 0; j < H; ++j) var += std::pow(double(x[r * H + j]) + bias[j] - mean, 2);
    var /= H;
    for (size_t j = 0; j < H; ++j) {
      want[r * H + j] = (double(x[r * H + j]) + bias[j] - mean) / std::sqrt(var + 1e-12) * gamma[j] + beta[j];
    }
  }
  k_->add_bias_layer_norm(x.p, rows, H, bias.p, gamma.p, beta.p, 1e-12f);
  expect_near(x.p, want, 2e-5, "add_bias_layer_norm");

  Buffer g(1000);
  fill(g, rng, 3.0f);
  std::vector<double> gelu(g.n);
  for (size_t i = 0; i < g.n; ++i) gelu[i] = 0.5 * g[i] * (1 + std::erf(g[i] / std::sqrt(2.0)));
  k_->gelu(g.p, g.n);
  expect_near(g.p, gelu, 1e-5, "gelu");

  // Attention over [q | k | v] rows with a wider stride than 3H.
  const size_t ld = 3 * H + 5;
  Buffer qkv(T * ld), ctx(T * H), scores(T * T);
  fill(qkv, rng, 0.5f);
  std::vector<double> att(T * H);
  for (size_t h = 0; h < heads; ++h) {
    for (size_t i = 0; i < T; ++i) {
      std::vector<double> s(T);
      double mx = -1e300, sum = 0;
      for (size_t j = 0; j < T; ++j) {
        for (size_t p = 0; p < d; ++p) s[j] += double(qkv[i * ld + h * d + p]) * qkv[j * ld + H + h * d + p];
        mx = std::max(mx, s[j]);
      }
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (size_t p = 0; p < d; ++p) {
        double o = 0;
        for (size_t j = 0; j < T; ++j) o += s[j] / sum * qkv[j * ld + 2 * H + h * d + p];
        att[i * H + h * d + p] = o;
      }
    }
  }
  k_->attention(T, heads, d, qkv.p, ld, ctx.p, H, scores.p);
  expect_near(ctx.p, att, 1e-5, "attention");

  Buffer pooled(H), out(H);
  for (bool cls : {false, true}) {
    for (bool normalize : {false, true}) {
      std::vector<double> p(H);
      for (size_t j = 0; j < H; ++j) {
        if (cls) {
          p[j] = x[j];
        } else {
          for (size_t r = 0; r < rows; ++r) p[j] += x[r * H + j] / double(rows);
        }
      }
      double norm = 0;
      for (double v : p) norm += v * v;
      if (normalize) {
        for (double& v : p) v /= std::sqrt(norm);
      }
      k_->pool(x.p, rows, H, cls, normalize, pooled.p, out.p);
      expect_near(out.p, p, 1e-5, cls ? "pool cls" : "pool mean");
    }
  }
}

TEST(DenseKernels, DispatchFollowsTheCpuLevel) {
  const DenseKernels& k = dense_kernels();
  EXPECT_EQ(&k, dense_kernels_for(internal::cpu_level()));
  EXPECT_EQ(k.level, std::min(internal::cpu_level(), CpuLevel::kV4));
  EXPECT_NE(dense_kernels_for(CpuLevel::kV2), nullptr);  // the baseline runs everywhere
  for (CpuLevel l : internal::kAllCpuLevels) {
    EXPECT_EQ(dense_kernels_for(l) != nullptr, l <= internal::cpu_level()) << internal::cpu_level_name(l);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, DenseKernelsTest,
                         ::testing::Values(CpuLevel::kV2, CpuLevel::kV3, CpuLevel::kV4, CpuLevel::kAmx),
                         [](const auto& info) {
                           std::string name = internal::cpu_level_name(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace medsearch::embed::kernels
