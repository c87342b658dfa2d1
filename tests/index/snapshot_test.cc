// Snapshots (index.h): a response's hits read the passages of the snapshot
// they were found in whatever the index does afterwards, and changes of the
// reranker or the embedder while other threads search publish new snapshots
// that no running search sees half of. Run under ThreadSanitizer by
// tools/sanitize.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <medsearch/index.h>

#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

// What a response says, passage by passage: ids, texts and exact scores.
std::vector<std::string> described(const SearchResponse& r) {
  std::vector<std::string> out;
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const Passage p = r.passage(i);
    char score[64];
    std::snprintf(score, sizeof(score), "%a", static_cast<double>(r.hits[i].score));
    out.push_back(p.passage_id + "=" + score + "[" + p.text + "]");
  }
  return out;
}

std::unique_ptr<Index> build(std::vector<io::Document> docs) {
  auto index = Index::build(std::move(docs), BuildOptions{}, nullptr, std::make_shared<testing::TinyEmbedder>());
  EXPECT_TRUE(index.is_ok()) << index.status().to_string();
  return index ? std::move(index).value() : nullptr;
}

TEST(Snapshot, HitsReadThePassagesTheyWereFoundInAfterAddAndRemove) {
  auto index = build(testing::corpus("a", 30, 1));
  ASSERT_TRUE(index);
  for (SearchMode mode : {SearchMode::kBm25, SearchMode::kDense, SearchMode::kRerank}) {
    SearchOptions o;
    o.mode = mode;
    o.k = 8;
    const std::string q = testing::kQueries[0];
    auto read_now = index->search(q, o);
    auto read_later = index->search(q, o);
    ASSERT_TRUE(read_now.is_ok() && read_later.is_ok());
    ASSERT_FALSE(read_now->hits.empty());
    const std::vector<std::string> before = described(*read_now);
    const uint64_t generation = index->generation();

    // Renumber every passage: drop the first documents, add new ones in front of nothing.
    const auto first = index->snapshot();
    ASSERT_TRUE(index->remove(std::vector<std::string>{first->doc_id(0), first->doc_id(1)}).is_ok());
    ASSERT_TRUE(index->add(testing::corpus("b" + std::to_string(static_cast<int>(mode)), 5, 2)).is_ok());
    ASSERT_EQ(index->generation(), generation + 2);
    EXPECT_NE(index->snapshot()->passage(0).passage_id, first->passage(0).passage_id);

    EXPECT_EQ(read_later->snapshot->generation(), generation);
    EXPECT_EQ(described(*read_later), before) << "mode " << mode_name(mode);
    // The old snapshot still answers as it did; the index answers as its new documents do.
    auto again = read_later->snapshot->search(q, o);
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(described(*again), before);
    EXPECT_EQ(again->generation, generation);
  }
}

// A reranker unlike the built-in one: the BM25 feature alone.
std::shared_ptr<const rank::Reranker> bm25_reranker() {
  std::string names = "[";
  for (size_t i = 0; i < rank::feature_names().size(); ++i) {
    names += (i ? ",\"" : "\"") + std::string(rank::feature_names()[i]) + "\"";
  }
  names += "]";
  std::string mean = "[0", scale = "[1", weights = "[0";
  for (uint32_t i = 1; i < rank::kNumFeatures; ++i) {
    mean += ",0";
    scale += ",1";
    weights += i == rank::kBm25 ? ",1" : ",0";
  }
  const std::string json =
      R"({"format":"medsearch-reranker","version":1,"name":"bm25-only","features":)" + names +
      R"(,"model":{"type":"linear","mean":)" + mean + "],\"scale\":" + scale + "],\"weights\":" + weights +
      R"(],"bias":0},"coverage":{"mean":[0,0,0,0,0,0,0,0],"scale":[1,1,1,1,1,1,1,1],"weights":[1,0,0,0,0,0,0,0],"bias":0}})";
  auto model = rank::Reranker::parse(json);
  EXPECT_TRUE(model.is_ok()) << model.status().to_string();
  return model ? std::move(model).value() : nullptr;
}

TEST(Snapshot, SettingARerankerOrEmbedderWhileOthersSearch) {
  auto index = build(testing::corpus("a", 40, 3));
  ASSERT_TRUE(index);
  const auto other = bm25_reranker();
  ASSERT_TRUE(other);
  ASSERT_NE(other->name(), rank::Reranker::builtin()->name());
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  o.k = 6;
  // The answers under each reranker, by its name.
  std::map<std::string, std::vector<std::vector<std::string>>> expected;
  for (const auto& model : {other, rank::Reranker::builtin()}) {
    index->set_reranker(model);
    for (const auto& q : testing::kQueries) {
      auto r = index->search(q, o);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      expected[model->name()].push_back(described(*r));
    }
  }
  ASSERT_NE(expected[other->name()], expected[rank::Reranker::builtin()->name()]);

  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, mismatches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      for (size_t i = t; !stop.load() || i < 50; ++i) {
        const size_t qi = i % testing::kQueries.size();
        auto r = index->search(testing::kQueries[qi], o);
        ++searches;
        if (!r) {
          ++mismatches;
          continue;
        }
        // Scored by one reranker from start to end: the one its snapshot holds.
        const rank::Reranker& model = r->snapshot->reranker();
        for (const Hit& h : r->hits) {
          if (model.score(h.features) != h.score) ++mismatches;
        }
        if (described(*r) != expected.at(model.name())[qi]) ++mismatches;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    index->set_reranker(i % 2 ? nullptr : other);
    // The same model again: a new snapshot with a new query cache.
    ASSERT_TRUE(index->attach_embedder(std::make_shared<testing::TinyEmbedder>()).is_ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(mismatches.load(), 0) << "of " << searches.load() << " searches";
  EXPECT_EQ(index->snapshot()->reranker().name(), rank::Reranker::builtin()->name());
}

}  // namespace
}  // namespace medsearch
