#include "core/vector/id_map.h"

#include <gtest/gtest.h>

#include <random>

namespace medsearch::vector::internal {
namespace {

TEST(IdMap, InsertFindEraseAndForwardSearch) {
  IdMap m;
  std::vector<IdMap::Entry> a, b;
  for (uint32_t i = 0; i < 1000; ++i) (i % 2 ? a : b).emplace_back(i * 3, i);
  m.insert(a);
  m.insert(b);  // interleaved ids: merged
  ASSERT_EQ(m.size(), 1000u);
  for (size_t i = 1; i < m.entries().size(); ++i) ASSERT_LT(m.entries()[i - 1].first, m.entries()[i].first);
  EXPECT_EQ(m.find(300), 100u);
  EXPECT_FALSE(m.find(301));
  size_t pos = 0;
  for (DocId id = 0; id < 3100; ++id) {
    auto got = m.find_from(&pos, id);
    ASSERT_EQ(got.has_value(), id % 3 == 0 && id < 3000) << id;
    if (got) EXPECT_EQ(*got, id / 3);
  }
  pos = 0;
  EXPECT_EQ(m.find_from(&pos, 2997), 999u);  // one long gallop
  EXPECT_FALSE(m.find_from(&pos, 5000));
  const std::vector<DocId> gone = {0, 3, 2997, 7};
  auto slots = m.erase(gone);
  EXPECT_EQ(slots.size(), 3u);
  EXPECT_EQ(m.size(), 997u);
  EXPECT_FALSE(m.contains(3));
}

}  // namespace
}  // namespace medsearch::vector::internal
