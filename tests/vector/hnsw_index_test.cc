#include "core/vector/hnsw_index.h"

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include "tests/vector/test_data.h"

namespace medsearch::vector {
namespace {

using testing::clustered;
using testing::Dataset;

std::unique_ptr<VectorIndex> make(size_t dim, Metric metric, IndexKind kind, VectorDType dtype = VectorDType::kFloat32,
                                  uint32_t efc = 200) {
  IndexOptions o;
  o.dim = dim;
  o.metric = metric;
  o.kind = kind;
  o.dtype = dtype;
  o.ef_construction = efc;
  auto r = make_vector_index(o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

struct Results {
  std::vector<DocId> ids;
  std::vector<float> scores;
};
Results run(const VectorIndex& index, MatrixView q, SearchParams p) {
  Results r{std::vector<DocId>(q.rows * p.k), std::vector<float>(q.rows * p.k)};
  Status st = index.search(q, p, r.ids, r.scores);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return r;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("medsearch_hnsw_test_" + name);
}

// 20k x 64 clustered data, shared by the recall tests.
const Dataset& data(bool normalized) {
  static const Dataset ip = clustered(20000, 200, 64, 100, true, 42);
  static const Dataset l2 = clustered(20000, 200, 64, 100, false, 43);
  return normalized ? ip : l2;
}

struct RecallCase {
  Metric metric;
  VectorDType dtype;
};

class HnswRecallTest : public ::testing::TestWithParam<RecallCase> {};

TEST_P(HnswRecallTest, RecallAgainstFlat) {
  const auto [metric, dtype] = GetParam();
  const Dataset& d = data(metric != Metric::kL2);
  auto flat = make(d.dim, metric, IndexKind::kFlat);
  auto hnsw = make(d.dim, metric, IndexKind::kHnsw, dtype);
  ASSERT_TRUE(flat->add(d.base_view(), {}).is_ok());
  ASSERT_TRUE(hnsw->add(d.base_view(), {}).is_ok());
  const size_t k = 10;
  const Results truth = run(*flat, d.query_view(), {.k = k});
  const Results r100 = run(*hnsw, d.query_view(), {.k = k, .ef = 100});
  const double recall = testing::recall_at_k(r100.ids, truth.ids, d.nq(), k);
  EXPECT_GE(recall, 0.95);
  // Scores are exact float32 (rescored for int8): where ids agree, scores do.
  for (size_t q = 0; q < d.nq(); ++q) {
    std::map<DocId, float> exact;
    for (size_t i = q * k; i < (q + 1) * k; ++i) exact[truth.ids[i]] = truth.scores[i];
    for (size_t i = q * k; i < (q + 1) * k; ++i) {
      if (auto it = exact.find(r100.ids[i]); it != exact.end()) {
        EXPECT_NEAR(r100.scores[i], it->second, 1e-4);
      }
    }
  }
  // ef is per call: a larger ef never hurts much, a tiny one costs recall.
  const Results r10 = run(*hnsw, d.query_view(), {.k = k, .ef = 10});
  const Results r400 = run(*hnsw, d.query_view(), {.k = k, .ef = 400});
  const double rec10 = testing::recall_at_k(r10.ids, truth.ids, d.nq(), k);
  const double rec400 = testing::recall_at_k(r400.ids, truth.ids, d.nq(), k);
  EXPECT_GE(rec400, recall - 0.005);
  EXPECT_GE(rec400, 0.98);
  EXPECT_LE(rec10, rec400);
  RecordProperty("recall_ef10", std::to_string(rec10));
  RecordProperty("recall_ef100", std::to_string(recall));
  RecordProperty("recall_ef400", std::to_string(rec400));
  std::printf("recall@10 ef=10 %.4f  ef=100 %.4f  ef=400 %.4f  memory %.1f B/vector (+%.1f mapped)\n", rec10, recall,
              rec400, double(hnsw->memory_bytes()) / d.n(), double(hnsw->mapped_bytes()) / d.n());
  if (dtype == VectorDType::kInt8) {
    // Without rescoring the ranking is int8-approximate: still decent.
    const Results raw = run(*hnsw, d.query_view(), {.k = k, .ef = 100, .rescore = 0});
    EXPECT_GE(testing::recall_at_k(raw.ids, truth.ids, d.nq(), k), 0.80);
  }
}

INSTANTIATE_TEST_SUITE_P(
    MetricsAndTypes, HnswRecallTest,
    ::testing::Values(RecallCase{Metric::kInnerProduct, VectorDType::kFloat32},
                      RecallCase{Metric::kInnerProduct, VectorDType::kInt8},
                      RecallCase{Metric::kL2, VectorDType::kFloat32}, RecallCase{Metric::kL2, VectorDType::kInt8},
                      RecallCase{Metric::kCosine, VectorDType::kInt8}),
    [](const auto& info) {
      const char* m = info.param.metric == Metric::kL2 ? "L2" : info.param.metric == Metric::kCosine ? "Cosine" : "IP";
      return std::string(m) + (info.param.dtype == VectorDType::kInt8 ? "Int8" : "Float32");
    });

class HnswTypesTest : public ::testing::TestWithParam<VectorDType> {};

TEST_P(HnswTypesTest, SaveLoadGivesIdenticalResultsTwice) {
  auto d = clustered(3000, 50, 32, 30, true, 5);
  auto index = make(d.dim, Metric::kInnerProduct, IndexKind::kHnsw, GetParam(), 100);
  std::vector<DocId> ids(d.n());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<DocId>(3 * i + 1);
  ASSERT_TRUE(index->add(d.base_view(), ids).is_ok());
  std::vector<DocId> gone = {1, 4, 7, 301};
  ASSERT_TRUE(index->remove(gone).is_ok());
  const Results before = run(*index, d.query_view(), {.k = 10, .ef = 50});
  const auto p1 = temp_path("a.msv"), p2 = temp_path("b.msv");
  ASSERT_TRUE(index->save(p1).is_ok());
  auto once = load_vector_index(p1);
  ASSERT_TRUE(once.is_ok()) << once.status().to_string();
  ASSERT_TRUE((*once)->save(p2).is_ok());
  auto twice = load_vector_index(p2);
  ASSERT_TRUE(twice.is_ok()) << twice.status().to_string();
  for (auto* loaded : {once->get(), twice->get()}) {
    const Results after = run(*loaded, d.query_view(), {.k = 10, .ef = 50});
    EXPECT_EQ(after.ids, before.ids);
    EXPECT_EQ(0, std::memcmp(after.scores.data(), before.scores.data(), before.scores.size() * sizeof(float)));
    EXPECT_EQ(loaded->size(), index->size());
    EXPECT_FALSE(loaded->contains(4));
    EXPECT_TRUE(loaded->contains(10));
    EXPECT_EQ(loaded->next_doc_id(), index->next_doc_id());
  }
  // The two files are byte-identical.
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(slurp(p1), slurp(p2));
  // A loaded index keeps working: add, remove, compact.
  auto& l = **twice;
  std::vector<float> extra(d.base.begin(), d.base.begin() + 10 * d.dim);
  ASSERT_TRUE(l.add({extra.data(), 10, d.dim, d.dim}, {}).is_ok());
  ASSERT_TRUE(l.remove(std::vector<DocId>{10}).is_ok());
  ASSERT_TRUE(l.compact().is_ok());
  EXPECT_EQ(l.size(), index->size() + 10 - 1);
  std::filesystem::remove(p1);
  std::filesystem::remove(p2);
}

TEST_P(HnswTypesTest, FiltersNeverReturnDisallowedIds) {
  auto d = clustered(5000, 40, 24, 20, true, 9);
  auto hnsw = make(d.dim, Metric::kInnerProduct, IndexKind::kHnsw, GetParam(), 100);
  auto flat = make(d.dim, Metric::kInnerProduct, IndexKind::kFlat);
  ASSERT_TRUE(hnsw->add(d.base_view(), {}).is_ok());
  ASSERT_TRUE(flat->add(d.base_view(), {}).is_ok());
  std::mt19937 rng(1);
  for (double frac : {0.0005, 0.01, 0.05, 0.2, 0.6}) {
    std::vector<DocId> allowed;
    std::bernoulli_distribution keep(frac);
    for (DocId i = 0; i < 5000; ++i)
      if (keep(rng)) allowed.push_back(i);
    allowed.push_back(999999);  // ids not in the index are harmless
    IdFilter f(allowed);
    const bool exact = HnswIndex::use_exact_filter(allowed.size(), 5000, 64);
    const Results got = run(*hnsw, d.query_view(), {.k = 10, .ef = 64, .filter = &f});
    const Results truth = run(*flat, d.query_view(), {.k = 10, .filter = &f});
    for (DocId id : got.ids) EXPECT_TRUE(id == kInvalidDocId || f.contains(id)) << id;
    const double recall = testing::recall_at_k(got.ids, truth.ids, d.nq(), 10);
    EXPECT_GE(recall, exact ? 0.999 : 0.9) << "fraction " << frac;
    // Fewer allowed vectors than k: the rest are empty slots.
    if (allowed.size() <= 10) {
      EXPECT_EQ(got.ids[9], kInvalidDocId);
    }
  }
  IdFilter none;
  const Results empty = run(*hnsw, d.query_view(), {.k = 3, .filter = &none});
  EXPECT_EQ(empty.ids[0], kInvalidDocId);
}

TEST_P(HnswTypesTest, RemoveAndCompact) {
  auto d = clustered(4000, 30, 16, 20, false, 13);
  auto index = make(d.dim, Metric::kL2, IndexKind::kHnsw, GetParam(), 100);
  ASSERT_TRUE(index->add(d.base_view(), {}).is_ok());
  std::vector<DocId> gone;
  for (DocId i = 0; i < 4000; i += 2) gone.push_back(i);
  ASSERT_TRUE(index->remove(gone).is_ok());
  EXPECT_EQ(index->size(), 2000u);
  const Results r = run(*index, d.query_view(), {.k = 10, .ef = 80});
  for (DocId id : r.ids) EXPECT_EQ(id % 2, 1u);
  const size_t before = index->memory_bytes();
  ASSERT_TRUE(index->compact().is_ok());
  EXPECT_LT(index->memory_bytes(), before);
  const Results c = run(*index, d.query_view(), {.k = 10, .ef = 80});
  EXPECT_GE(testing::recall_at_k(c.ids, r.ids, d.nq(), 10), 0.95);
  for (DocId id : c.ids) EXPECT_EQ(id % 2, 1u);
  EXPECT_EQ(index->remove(std::vector<DocId>{0}).code(), StatusCode::kUnknownId);
  // A removed id can be added again.
  ASSERT_TRUE(index->add({d.base.data(), 1, d.dim, d.dim}, std::vector<DocId>{0}).is_ok());
  EXPECT_TRUE(index->contains(0));
}

// hnswlib's insertion locks (a 40-byte mutex per node) are freed after a
// bulk add and after load, and re-created by the next add, which must still
// insert in parallel correctly; an add of under 1/8 of the index keeps them.
TEST_P(HnswTypesTest, InsertionLocksFreedAndRecreated) {
  auto d = clustered(6000, 50, 32, 30, true, 17);
  auto index = make(d.dim, Metric::kInnerProduct, IndexKind::kHnsw, GetParam(), 100);
  ASSERT_TRUE(index->add({d.base.data(), 3000, d.dim, d.dim}, {}).is_ok());
  const size_t bulk = index->memory_bytes();
  const auto path = temp_path("locks");
  ASSERT_TRUE(index->save(path).is_ok());
  auto loaded = load_vector_index(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  std::filesystem::remove(path);
  auto& idx = **loaded;
  EXPECT_LE(idx.memory_bytes(), bulk);
  // 2,900 rows into 3,000 in parallel: locks back, then freed again.
  tbb::task_arena four(4);
  four.execute([&] { ASSERT_TRUE(idx.add({d.base.data() + 3000 * d.dim, 2900, d.dim, d.dim}, {}).is_ok()); });
  const size_t after_bulk = idx.memory_bytes();
  // 100 rows into 5,900 (< 1/8): the locks stay, ~40 bytes per node slot.
  ASSERT_TRUE(idx.add({d.base.data() + 5900 * d.dim, 100, d.dim, d.dim}, {}).is_ok());
  EXPECT_GE(idx.memory_bytes(), after_bulk + 40 * 5900);
  auto flat = make(d.dim, Metric::kInnerProduct, IndexKind::kFlat);
  ASSERT_TRUE(flat->add(d.base_view(), {}).is_ok());
  const Results truth = run(*flat, d.query_view(), {.k = 10});
  const Results got = run(idx, d.query_view(), {.k = 10, .ef = 100});
  EXPECT_GE(testing::recall_at_k(got.ids, truth.ids, d.nq(), 10), 0.95);
}

INSTANTIATE_TEST_SUITE_P(Types, HnswTypesTest, ::testing::Values(VectorDType::kFloat32, VectorDType::kInt8),
                         [](const auto& info) { return info.param == VectorDType::kInt8 ? "Int8" : "Float32"; });

TEST(HnswIndex, EdgeCases) {
  auto index = make(8, Metric::kInnerProduct, IndexKind::kHnsw, VectorDType::kInt8);
  std::vector<float> q(8, 0.5f);
  const Results empty = run(*index, {q.data(), 1, 8, 8}, {.k = 4});
  EXPECT_EQ(empty.ids[0], kInvalidDocId);
  EXPECT_TRUE(std::isnan(empty.scores[0]));
  std::vector<float> rows = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  ASSERT_TRUE(index->add({rows.data(), 2, 8, 8}, {}).is_ok());
  const Results r = run(*index, {q.data(), 1, 8, 8}, {.k = 4});  // k > size
  EXPECT_NE(r.ids[0], kInvalidDocId);
  EXPECT_NE(r.ids[1], kInvalidDocId);
  EXPECT_EQ(r.ids[2], kInvalidDocId);
  EXPECT_FLOAT_EQ(r.scores[0], 0.5f);
  DocId ids[4];
  float sc[4];
  EXPECT_FALSE(index->search({q.data(), 1, 7, 7}, {.k = 4}, ids, sc).is_ok());
  EXPECT_FALSE(index->search({q.data(), 1, 8, 8}, {.k = 0}, ids, sc).is_ok());
  EXPECT_FALSE(index->search({q.data(), 1, 8, 8}, {.k = 5}, ids, sc).is_ok());  // spans too small
  q[3] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(index->search({q.data(), 1, 8, 8}, {.k = 4}, ids, sc).is_ok());
  EXPECT_FALSE(index->add({rows.data(), 2, 8, 8}, std::vector<DocId>{5, 5}).is_ok());
  EXPECT_FALSE(index->add({rows.data(), 1, 8, 8}, std::vector<DocId>{kInvalidDocId}).is_ok());
  EXPECT_FALSE(index->add({rows.data(), 1, 8, 8}, std::vector<DocId>{0}).is_ok());  // present
  EXPECT_EQ(index->size(), 2u);
  IndexOptions bad;
  bad.dim = 0;
  EXPECT_FALSE(make_vector_index(bad).is_ok());
}

TEST(HnswIndex, EmptySaveLoad) {
  auto index = make(8, Metric::kL2, IndexKind::kHnsw);
  const auto p = temp_path("empty.msv");
  ASSERT_TRUE(index->save(p).is_ok());
  auto loaded = load_vector_index(p);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ((*loaded)->size(), 0u);
  std::filesystem::remove(p);
}

TEST(HnswIndex, CorruptAndTruncatedFilesAreRefused) {
  auto d = clustered(500, 1, 16, 5, true, 3);
  auto index = make(d.dim, Metric::kInnerProduct, IndexKind::kHnsw, VectorDType::kInt8, 50);
  ASSERT_TRUE(index->add(d.base_view(), {}).is_ok());
  const auto p = temp_path("corrupt.msv");
  ASSERT_TRUE(index->save(p).is_ok());
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  for (size_t pos : {size_t{20}, bytes.size() / 2, bytes.size() - 20}) {
    std::string b = bytes;
    b[pos] ^= 0x40;
    write(b);
    EXPECT_EQ(load_vector_index(p).status().code(), StatusCode::kCorrupt) << "flip at " << pos;
  }
  for (size_t len : {size_t{0}, size_t{10}, bytes.size() / 3, bytes.size() - 1}) {
    write(bytes.substr(0, len));
    EXPECT_EQ(load_vector_index(p).status().code(), StatusCode::kCorrupt) << "truncated to " << len;
  }
  {
    std::string b = bytes;
    b[8] = 99;  // version
    write(b);
    auto r = load_vector_index(p);
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(r.status().message().find("version"), std::string::npos);
  }
  std::filesystem::remove(p);
  EXPECT_EQ(load_vector_index(p).status().code(), StatusCode::kNotFound);
  // A failed save leaves no temp file and the old file intact.
  EXPECT_FALSE(index->save("/nonexistent-dir/x.msv").is_ok());
}

// Concurrent search + add + remove (run under ThreadSanitizer too). Each
// add() runs in a one-thread arena: hnswlib 0.6.2's parallel insertion has
// two benign races of its own (see hnsw_index.h); this test checks ours.
TEST(HnswIndex, ConcurrentSearchAndAdd) {
  for (VectorDType dtype : {VectorDType::kFloat32, VectorDType::kInt8}) {
    auto d = clustered(3000, 20, 16, 10, true, 21);
    auto index = make(d.dim, Metric::kInnerProduct, IndexKind::kHnsw, dtype, 40);
    const size_t first = 1000;
    ASSERT_TRUE(index->add({d.base.data(), first, d.dim, d.dim}, {}).is_ok());
    std::atomic<bool> done{false};
    std::atomic<size_t> searches{0};
    auto searcher = [&](uint32_t ef) {
      IdFilter odd;
      for (DocId i = 1; i < 3000; i += 2) odd.add(i);
      while (!done.load()) {
        const bool filtered = searches.load() % 3 == 0;
        const Results r = run(*index, d.query_view(), {.k = 5, .ef = ef, .filter = filtered ? &odd : nullptr});
        for (DocId id : r.ids) {
          EXPECT_TRUE(id == kInvalidDocId || id < 3000);
          if (filtered) {
            EXPECT_TRUE(id == kInvalidDocId || id % 2 == 1);
          }
        }
        searches.fetch_add(1);
      }
    };
    std::thread s1(searcher, 16), s2(searcher, 64);
    tbb::task_arena one(1);
    for (size_t b = first; b < d.n(); b += 250) {
      one.execute([&] { ASSERT_TRUE(index->add({d.base.data() + b * d.dim, 250, d.dim, d.dim}, {}).is_ok()); });
      if (b == 2000) {
        std::vector<DocId> gone = {0, 2, 4};
        ASSERT_TRUE(index->remove(gone).is_ok());
      }
    }
    one.execute([&] { ASSERT_TRUE(index->compact().is_ok()); });
    done = true;
    s1.join();
    s2.join();
    EXPECT_GT(searches.load(), 0u);
    EXPECT_EQ(index->size(), 3000u - 3);
  }
}

}  // namespace
}  // namespace medsearch::vector
