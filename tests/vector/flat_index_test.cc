#include "core/vector/flat_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "tests/vector/test_data.h"

namespace medsearch::vector {
namespace {

using testing::clustered;

std::unique_ptr<VectorIndex> make_flat(size_t dim, Metric metric) {
  IndexOptions o;
  o.dim = dim;
  o.metric = metric;
  o.kind = IndexKind::kFlat;
  auto r = make_vector_index(o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

// Brute force in double precision, the reference for the reference.
std::vector<DocId> naive(const testing::Dataset& d, Metric m, size_t k, const std::vector<DocId>& ids) {
  std::vector<DocId> out(d.nq() * k, kInvalidDocId);
  for (size_t q = 0; q < d.nq(); ++q) {
    std::vector<std::pair<double, DocId>> all;
    for (size_t i = 0; i < d.n(); ++i) {
      double s = 0;
      for (size_t j = 0; j < d.dim; ++j) {
        const double a = d.queries[q * d.dim + j], b = d.base[i * d.dim + j];
        s += m == Metric::kL2 ? (a - b) * (a - b) : -a * b;
      }
      all.emplace_back(s, ids[i]);
    }
    std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(k), all.end());
    for (size_t i = 0; i < k; ++i) out[q * k + i] = all[i].second;
  }
  return out;
}

class FlatMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(FlatMetricTest, MatchesNaiveOnBothPaths) {
  const Metric m = GetParam();
  auto d = clustered(3000, 40, 48, 20, m != Metric::kL2);
  auto index = make_flat(d.dim, m);
  std::vector<DocId> ids(d.n());
  std::iota(ids.begin(), ids.end(), 1000);
  ASSERT_TRUE(index->add(d.base_view(), ids).is_ok());
  const size_t k = 10;
  const auto truth = naive(d, m, k, ids);
  // nq = 40 takes the GEMM path; one at a time takes the SIMD scan.
  std::vector<DocId> got(d.nq() * k), one(d.nq() * k);
  std::vector<float> s(d.nq() * k), s1(d.nq() * k);
  ASSERT_TRUE(index->search(d.query_view(), {.k = k}, got, s).is_ok());
  for (size_t q = 0; q < d.nq(); ++q) {
    MatrixView v{d.queries.data() + q * d.dim, 1, d.dim, d.dim};
    ASSERT_TRUE(index->search(v, {.k = k}, std::span(one).subspan(q * k, k), std::span(s1).subspan(q * k, k)).is_ok());
  }
  EXPECT_GE(testing::recall_at_k(got, truth, d.nq(), k), 0.999);
  EXPECT_GE(testing::recall_at_k(one, truth, d.nq(), k), 0.999);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(s[i], s1[i], 1e-4);
  for (size_t q = 0; q < d.nq(); ++q) {
    for (size_t i = 1; i < k; ++i) {
      if (higher_is_better(m)) {
        EXPECT_GE(s[q * k + i - 1], s[q * k + i]);
      } else {
        EXPECT_LE(s[q * k + i - 1], s[q * k + i]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlatMetricTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2, Metric::kCosine));

TEST(FlatIndex, FilterRemoveCompactSaveLoad) {
  auto d = clustered(2000, 30, 32, 10, true);
  auto index = make_flat(d.dim, Metric::kInnerProduct);
  ASSERT_TRUE(index->add(d.base_view(), {}).is_ok());
  EXPECT_EQ(index->size(), 2000u);
  EXPECT_EQ(index->next_doc_id(), 2000u);
  const size_t k = 5;
  std::vector<DocId> ids(d.nq() * k);
  std::vector<float> sc(d.nq() * k);
  // Selective (walks the ids) and broad (checks per row) filters.
  for (size_t every : {97, 3}) {
    std::vector<DocId> allowed;
    for (DocId i = 0; i < 2000; i += every) allowed.push_back(i);
    IdFilter f(allowed);
    ASSERT_TRUE(index->search(d.query_view(), {.k = k, .filter = &f}, ids, sc).is_ok());
    for (DocId id : ids) EXPECT_TRUE(id != kInvalidDocId && id % every == 0) << id;
  }
  std::vector<DocId> gone(1000);
  std::iota(gone.begin(), gone.end(), 0);
  ASSERT_TRUE(index->remove(gone).is_ok());
  EXPECT_EQ(index->size(), 1000u);
  EXPECT_FALSE(index->remove(gone).is_ok());  // unknown now
  ASSERT_TRUE(index->search(d.query_view(), {.k = k}, ids, sc).is_ok());
  for (DocId id : ids) EXPECT_GE(id, 1000u);
  std::vector<DocId> before = ids;
  ASSERT_TRUE(index->compact().is_ok());
  ASSERT_TRUE(index->search(d.query_view(), {.k = k}, ids, sc).is_ok());
  EXPECT_EQ(ids, before);
  const auto path = std::filesystem::temp_directory_path() / "medsearch_flat_test.msv";
  ASSERT_TRUE(index->save(path).is_ok());
  auto loaded = load_vector_index(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  std::vector<DocId> ids2(ids.size());
  std::vector<float> sc2(sc.size());
  ASSERT_TRUE((*loaded)->search(d.query_view(), {.k = k}, ids2, sc2).is_ok());
  EXPECT_EQ(ids2, ids);
  EXPECT_EQ(sc2, sc);
  EXPECT_GT((*loaded)->mapped_bytes(), 0u);
  // Adding to a loaded (mapped) index copies the rows first.
  std::vector<float> row(d.dim, 0.1f);
  ASSERT_TRUE((*loaded)->add({row.data(), 1, d.dim, d.dim}, {}).is_ok());
  EXPECT_EQ((*loaded)->size(), 1001u);
  std::filesystem::remove(path);
}

TEST(FlatIndex, EdgeCases) {
  auto index = make_flat(4, Metric::kL2);
  float q[4] = {0, 0, 0, 0};
  DocId ids[3];
  float sc[3];
  ASSERT_TRUE(index->search({q, 1, 4, 4}, {.k = 3}, ids, sc).is_ok());  // empty index
  EXPECT_EQ(ids[0], kInvalidDocId);
  EXPECT_TRUE(std::isnan(sc[0]));
  float rows[8] = {1, 0, 0, 0, 0, 2, 0, 0};
  const DocId two[2] = {7, 9};
  ASSERT_TRUE(index->add({rows, 2, 4, 4}, two).is_ok());
  ASSERT_TRUE(index->search({q, 1, 4, 4}, {.k = 3}, ids, sc).is_ok());  // k > size
  EXPECT_EQ(ids[0], 7u);
  EXPECT_EQ(ids[1], 9u);
  EXPECT_EQ(ids[2], kInvalidDocId);
  EXPECT_FLOAT_EQ(sc[0], 1.0f);
  EXPECT_FLOAT_EQ(sc[1], 4.0f);
  EXPECT_FALSE(index->add({rows, 2, 4, 4}, two).is_ok());             // ids present
  EXPECT_FALSE(index->search({q, 1, 3, 3}, {.k = 3}, ids, sc).is_ok());  // wrong dim
  EXPECT_FALSE(index->search({q, 1, 4, 4}, {.k = 0}, ids, sc).is_ok());  // k = 0
  q[2] = std::nanf("");
  EXPECT_EQ(index->search({q, 1, 4, 4}, {.k = 3}, ids, sc).code(), StatusCode::kInvalidArgument);
  rows[0] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(index->add({rows, 1, 4, 4}, {}).is_ok());
  EXPECT_EQ(index->size(), 2u);
  IndexOptions bad;
  bad.dim = 4;
  bad.kind = IndexKind::kFlat;
  bad.dtype = VectorDType::kInt8;
  EXPECT_FALSE(make_vector_index(bad).is_ok());
}

}  // namespace
}  // namespace medsearch::vector
