// IdFilter (core/vector/types.h, a Roaring bitmap): add, add_many, contains,
// cardinality and to_vector checked against a std::set on seeded random ids,
// over the whole DocId range and in the dense runs that Roaring compresses.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <medsearch/vector_types.h>

namespace medsearch::vector {
namespace {

// Every member of `ref` is in `f`, `f` holds nothing else, and the probes
// (members or not) agree with `ref`.
void expect_same(const IdFilter& f, const std::set<DocId>& ref, std::span<const DocId> probes) {
  ASSERT_EQ(f.cardinality(), ref.size());
  const std::vector<DocId> got = f.to_vector();
  ASSERT_EQ(got, std::vector<DocId>(ref.begin(), ref.end()));  // ascending, no repeats
  for (DocId id : ref) ASSERT_TRUE(f.contains(id)) << id;
  for (DocId id : probes) ASSERT_EQ(f.contains(id), ref.count(id) == 1) << id;
}

TEST(IdFilter, EmptyFilterHoldsNothing) {
  const IdFilter f;
  EXPECT_EQ(f.cardinality(), 0u);
  EXPECT_TRUE(f.to_vector().empty());
  EXPECT_FALSE(f.contains(0));
  EXPECT_FALSE(f.contains(kInvalidDocId - 1));
  EXPECT_NE(f.raw(), nullptr);
  const IdFilter g(std::span<const DocId>{});
  EXPECT_EQ(g.cardinality(), 0u);
}

TEST(IdFilter, MatchesASetOnRandomIds) {
  std::mt19937 rng(20240611);
  // Three id ranges: Roaring keeps a container per 2^16 ids, so small ranges
  // give dense containers and the full range sparse ones.
  for (const DocId max_id : {DocId{300}, DocId{200000}, kInvalidDocId - 1}) {
    std::uniform_int_distribution<DocId> pick(0, max_id);
    IdFilter f;
    std::set<DocId> ref;
    std::vector<DocId> probes;
    for (int round = 0; round < 20; ++round) {
      // One by one, then a batch (with repeats and out of order).
      for (int i = 0; i < 50; ++i) {
        const DocId id = pick(rng);
        f.add(id);
        ref.insert(id);
      }
      std::vector<DocId> batch(200);
      for (DocId& id : batch) id = pick(rng);
      batch.push_back(batch.front());
      f.add_many(batch);
      ref.insert(batch.begin(), batch.end());
      for (int i = 0; i < 100; ++i) probes.push_back(pick(rng));
      expect_same(f, ref, probes);
    }
    // The constructor from a span is add_many on an empty filter.
    const std::vector<DocId> all(ref.begin(), ref.end());
    std::vector<DocId> shuffled = all;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    expect_same(IdFilter(shuffled), ref, probes);
  }
}

TEST(IdFilter, EdgesOfTheIdRange) {
  const std::vector<DocId> ids = {0, 1, 65535, 65536, kInvalidDocId - 1};
  const IdFilter f(ids);
  const std::set<DocId> ref(ids.begin(), ids.end());
  const std::vector<DocId> probes = {2, 65534, 65537, kInvalidDocId - 2, 1u << 31};
  expect_same(f, ref, probes);
}

// add_many run-compresses the bitmap; later single adds and lookups still
// see every id, inside and around the runs.
TEST(IdFilter, DenseRunsStayExact) {
  std::vector<DocId> runs;
  for (DocId id = 1000; id < 140000; ++id) runs.push_back(id);   // crosses two container edges
  for (DocId id = 500000; id < 500010; ++id) runs.push_back(id);  // a short run
  IdFilter f(runs);
  std::set<DocId> ref(runs.begin(), runs.end());
  const std::vector<DocId> singles = {999, 140000, 499999, 500010, 70000 /* already in */, 3};
  for (DocId id : singles) {
    f.add(id);
    ref.insert(id);
  }
  const std::vector<DocId> probes = {0, 998, 1000, 65535, 65536, 131071, 131072, 139999, 140001, 500011, 600000};
  expect_same(f, ref, probes);
}

TEST(IdFilter, MovesKeepTheIds) {
  const std::vector<DocId> ids = {3, 1, 4, 1, 5, 9, 2, 6};
  const std::set<DocId> ref(ids.begin(), ids.end());
  IdFilter a(ids);
  IdFilter b(std::move(a));
  expect_same(b, ref, std::vector<DocId>{0, 7, 8});
  // The moved-from filter is still a valid object.
  a.add(42);
  EXPECT_TRUE(a.contains(42));

  IdFilter c(std::vector<DocId>{100, 200});
  c = std::move(b);
  expect_same(c, ref, std::vector<DocId>{100, 200});
  b.add(7);  // valid after being moved from, too
  EXPECT_TRUE(b.contains(7));
  c = IdFilter(std::vector<DocId>{8});
  expect_same(c, {8}, std::vector<DocId>{3, 1});
}

}  // namespace
}  // namespace medsearch::vector
