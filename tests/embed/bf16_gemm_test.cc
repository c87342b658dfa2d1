// The AMX bfloat16 kernels (core/embed/kernels/bf16_gemm.h) against double
// precision references computed on the same bfloat16-rounded operands: the
// GEMM at row counts around its 16- and 32-row blocks, with a wider C than
// the product (ldc > n) and guard rows that must stay untouched; attention at
// text lengths around its 16- and 32-token tiles.
#include "core/embed/kernels/bf16_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "tests/vector/test_data.h"

namespace medsearch::embed::kernels {
namespace {

float bits_to_float(uint32_t u) {
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

using vector::testing::gaussian;

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(to_bf16(bits_to_float(0x3f808000u)), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up, to even.
  EXPECT_EQ(to_bf16(bits_to_float(0x3f818000u)), 0x3f82);
  EXPECT_EQ(to_bf16(bits_to_float(0x3f808001u)), 0x3f81);  // just above half: up
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(bits_to_float(0x7f800001u)))));  // a NaN that rounding would make inf
  EXPECT_EQ(from_bf16(to_bf16(0.15625f)), 0.15625f);  // exactly representable
}

TEST(Bf16PackedWeights, Shapes) {
  EXPECT_TRUE(Bf16PackedWeights::supports(32, 32));
  EXPECT_TRUE(Bf16PackedWeights::supports(1152, 384));
  EXPECT_FALSE(Bf16PackedWeights::supports(16, 32));
  EXPECT_FALSE(Bf16PackedWeights::supports(32, 48));
  EXPECT_FALSE(Bf16PackedWeights::supports(0, 32));
}

class Bf16GemmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!amx_bf16_available()) GTEST_SKIP() << amx_bf16_unavailable_reason();
  }
};

TEST_F(Bf16GemmTest, MatchesReferenceOnRoundedOperands) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr size_t kGuard = 2, kPad = 8;  // guard rows after m; extra columns (ldc = n + kPad)
  std::vector<uint16_t> scratch;
  for (size_t k : {32u, 96u, 384u}) {
    for (size_t n : {32u, 64u, 128u}) {
      std::vector<float> w(n * k);
      for (float& v : w) v = normal(rng);
      const Bf16PackedWeights packed(w.data(), n, k);
      ASSERT_EQ(packed.rows(), n);
      ASSERT_EQ(packed.cols(), k);
      for (size_t m : {1u, 2u, 15u, 16u, 17u, 31u, 32u, 33u, 48u, 63u, 100u}) {
        const size_t ldc = n + kPad;
        std::vector<float> a(m * k), c((m + kGuard) * ldc);
        for (float& v : a) v = normal(rng);
        for (float& v : c) v = normal(rng);  // the product is added onto this
        const std::vector<float> c0 = c;
        bf16_gemm_add(m, a.data(), packed, c.data(), ldc, scratch);
        double worst = 0;
        for (size_t i = 0; i < m + kGuard; ++i) {
          for (size_t j = 0; j < ldc; ++j) {
            const float got = c[i * ldc + j];
            if (i >= m || j >= n) {  // outside the product: untouched
              ASSERT_EQ(got, c0[i * ldc + j]) << "m=" << m << " n=" << n << " k=" << k << " at " << i << "," << j;
              continue;
            }
            double want = c0[i * ldc + j], scale = std::fabs(want);
            for (size_t p = 0; p < k; ++p) {
              const double term = double(from_bf16(to_bf16(a[i * k + p]))) * from_bf16(to_bf16(w[j * k + p]));
              want += term;
              scale += std::fabs(term);
            }
            // float32 accumulation of exact bf16 x bf16 products.
            worst = std::max(worst, std::fabs(got - want) / scale);
          }
        }
        EXPECT_LT(worst, 1e-5) << "m=" << m << " n=" << n << " k=" << k;
      }
    }
  }
}

TEST_F(Bf16GemmTest, SameRowSameResultWhateverTheBatch) {
  // A row's result depends only on that row: what lets the encoder's batched
  // and one-by-one results agree exactly.
  constexpr size_t n = 64, k = 128, m = 37;
  const std::vector<float> w = gaussian(n * k, 11), a = gaussian(m * k, 12);
  const Bf16PackedWeights packed(w.data(), n, k);
  std::vector<uint16_t> scratch;
  std::vector<float> all(m * n, 0.0f);
  bf16_gemm_add(m, a.data(), packed, all.data(), n, scratch);
  for (size_t i = 0; i < m; ++i) {
    std::vector<float> one(n, 0.0f);
    bf16_gemm_add(1, a.data() + i * k, packed, one.data(), n, scratch);
    ASSERT_EQ(0, std::memcmp(one.data(), all.data() + i * n, n * sizeof(float))) << "row " << i;
  }
}

TEST_F(Bf16GemmTest, ColumnRangesComposeToTheWholeProduct) {
  // The encoder splits a query's columns across threads.
  constexpr size_t n = 160, k = 64, m = 21;
  const std::vector<float> w = gaussian(n * k, 5), a = gaussian(m * k, 6);
  const Bf16PackedWeights packed(w.data(), n, k);
  std::vector<uint16_t> scratch;
  std::vector<float> whole(m * n, 1.0f), parts(m * n, 1.0f);
  bf16_gemm_add(m, a.data(), packed, whole.data(), n, scratch);
  const uint16_t* a16 = bf16_round_rows(m, k, a.data(), scratch);
  bf16_gemm_add_rounded(m, a16, packed, 64, 160, parts.data(), n);
  for (size_t i = 0; i < m; ++i) {  // columns outside the range are untouched
    for (size_t j = 0; j < 64; ++j) ASSERT_EQ(parts[i * n + j], 1.0f);
  }
  bf16_gemm_add_rounded(m, a16, packed, 0, 32, parts.data(), n);
  bf16_gemm_add_rounded(m, a16, packed, 32, 64, parts.data(), n);
  bf16_gemm_add_rounded(m, a16, packed, 64, 64, parts.data(), n);  // empty range: nothing
  EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)));
}

TEST_F(Bf16GemmTest, AttentionMatchesReference) {
  // Reference: softmax(q k^T) v in double on the bfloat16-rounded q, k, v,
  // per head; the kernel also rounds the probabilities to bfloat16, so a
  // context value may be off by about 2^-8 of the largest |v|.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr size_t heads = 3, d = 32, H = heads * d, ld = 3 * H + 32, ldc = H + 8;
  AttentionScratch scratch;
  for (size_t T : {1u, 2u, 5u, 16u, 17u, 31u, 33u, 100u}) {
    // 16 readable rows past T, as the encoder's padded copy has.
    std::vector<uint16_t> qkv16((T + 16) * ld, 0);
    for (size_t i = 0; i < T; ++i) {
      for (size_t j = 0; j < 3 * H; ++j) qkv16[i * ld + j] = to_bf16(normal(rng) * (j < H ? 0.5f : 1.0f));
    }
    std::vector<float> ctx((T + 1) * ldc, -7.0f);  // one guard row; columns past H are guards too
    bf16_attention(T, heads, d, qkv16.data(), ld, ctx.data(), ldc, scratch);
    double worst = 0;
    for (size_t h = 0; h < heads; ++h) {
      for (size_t i = 0; i < T; ++i) {
        std::vector<double> p(T);
        double mx = -1e300, sum = 0;
        for (size_t j = 0; j < T; ++j) {
          double dot = 0;
          for (size_t e = 0; e < d; ++e) {
            dot += double(from_bf16(qkv16[i * ld + h * d + e])) * from_bf16(qkv16[j * ld + H + h * d + e]);
          }
          p[j] = dot;
          mx = std::max(mx, dot);
        }
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (size_t e = 0; e < d; ++e) {
          double want = 0;
          for (size_t j = 0; j < T; ++j) want += p[j] / sum * from_bf16(qkv16[j * ld + 2 * H + h * d + e]);
          worst = std::max(worst, std::fabs(want - ctx[i * ldc + h * d + e]));
        }
      }
    }
    EXPECT_LT(worst, 0.02) << "T=" << T;  // |v| < ~4.5 here
    for (size_t i = 0; i <= T; ++i) {
      for (size_t j = (i < T ? H : 0); j < ldc; ++j) ASSERT_EQ(ctx[i * ldc + j], -7.0f) << "T=" << T << " guard " << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace medsearch::embed::kernels
