// Sharded search (include/medsearch/shard.h) against one Index over the same
// documents: the same passages in the same order with the same scores, in
// every mode and level, with filters, and after add() and remove(); and the
// errors that keep a merge from ever returning a partial or mixed answer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <medsearch/shard.h>

#include "core/internal/binary_io.h"
#include "tests/index/tiny_corpus.h"
#include "tests/scratch_dir.h"

namespace medsearch {
namespace {

using testing::TinyEmbedder;

// A collection split over shards by a hash of the doc_id, searched through a
// Coordinator and ShardSearchers in this process.
class Cluster {
 public:
  Cluster(const std::vector<io::Document>& docs, uint32_t shards) : parts_(shards), order_(shards) {
    std::vector<std::vector<io::Document>> split(shards);
    for (const io::Document& d : docs) {
      const uint32_t s = shard_of(d.doc_id);
      split[s].push_back(d);
      order_[s].push_back(next_++);
    }
    for (uint32_t s = 0; s < shards; ++s) {
      auto index = Index::build(std::move(split[s]), BuildOptions{}, nullptr, embedder_);
      EXPECT_TRUE(index.is_ok()) << index.status().to_string();
      parts_[s] = std::move(index).value();
    }
    publish();
  }

  uint32_t shard_of(const std::string& doc_id) const {
    uint64_t h = 1469598103934665603ull;
    for (char c : doc_id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return static_cast<uint32_t>(h % parts_.size());
  }

  void add(const std::vector<io::Document>& docs) {
    std::vector<std::vector<io::Document>> split(parts_.size());
    for (const io::Document& d : docs) {
      const uint32_t s = shard_of(d.doc_id);
      split[s].push_back(d);
      order_[s].push_back(next_++);
    }
    for (size_t s = 0; s < parts_.size(); ++s) {
      if (!split[s].empty()) ASSERT_TRUE(parts_[s]->add(std::move(split[s])).is_ok());
    }
    publish();
  }

  void remove(const std::vector<std::string>& ids) {
    for (size_t s = 0; s < parts_.size(); ++s) {
      std::vector<std::string> mine;
      for (const auto& id : ids) {
        if (shard_of(id) == s) mine.push_back(id);
      }
      if (mine.empty()) continue;
      // The removed documents' positions leave the shard's order with them.
      auto snap = parts_[s]->snapshot();
      std::vector<uint64_t> kept;
      for (uint32_t d = 0; d < snap->num_documents(); ++d) {
        if (std::find(mine.begin(), mine.end(), snap->doc_id(d)) == mine.end()) kept.push_back(order_[s][d]);
      }
      ASSERT_TRUE(parts_[s]->remove(mine).is_ok());
      order_[s] = std::move(kept);
    }
    publish();
  }

  // The statistics of the shards as they are now, one version on.
  void publish() {
    std::vector<CollectionStats> parts;
    for (const auto& p : parts_) parts.push_back(CollectionStats::of(*p->snapshot()));
    auto merged = CollectionStats::merge(parts);
    ASSERT_TRUE(merged.is_ok()) << merged.status().to_string();
    merged->version = ++version_;
    stats_ = std::make_shared<const CollectionStats>(std::move(merged).value());
    searchers_.clear();
    for (uint32_t s = 0; s < parts_.size(); ++s) {
      auto searcher = ShardSearcher::create(s, parts_[s]->snapshot(), stats_, order_[s]);
      ASSERT_TRUE(searcher.is_ok()) << searcher.status().to_string();
      searchers_.push_back(std::move(searcher).value());
    }
    coordinator_ = std::make_unique<Coordinator>(stats_, embedder_);
  }

  Result<ShardedResponse> search(const std::string& query, const SearchOptions& options) const {
    auto plan = coordinator_->plan(query, options);
    if (!plan) return plan.status();
    std::vector<std::string> answers;
    for (const auto& s : searchers_) {
      auto a = s->answer(*plan);
      if (!a) return a.status();
      answers.push_back(std::move(a).value());
    }
    return coordinator_->merge(*plan, answers);
  }

  std::string passage_id(const ShardedHit& h) const { return searchers_[h.shard]->snapshot().passage(h.hit.passage).passage_id; }

  const Coordinator& coordinator() const { return *coordinator_; }
  const ShardSearcher& searcher(size_t s) const { return *searchers_[s]; }
  const CollectionStats& stats() const { return *stats_; }
  std::shared_ptr<const Snapshot> snapshot(size_t s) const { return parts_[s]->snapshot(); }
  const std::vector<uint64_t>& order(size_t s) const { return order_[s]; }

 private:
  std::shared_ptr<const TinyEmbedder> embedder_ = std::make_shared<TinyEmbedder>();
  std::vector<std::unique_ptr<Index>> parts_;
  std::vector<std::vector<uint64_t>> order_;
  uint64_t next_ = 0;
  uint64_t version_ = 0;
  std::shared_ptr<const CollectionStats> stats_;
  std::vector<std::shared_ptr<const ShardSearcher>> searchers_;
  std::unique_ptr<Coordinator> coordinator_;
};

bool close(float a, float b) { return a == b || std::fabs(a - b) <= 1e-6f * std::max(std::fabs(a), std::fabs(b)); }

// The sharded answer equals one index's: passages, order, scores and their parts, features.
void expect_same(const Index& one, const Cluster& cluster, const std::string& query, const SearchOptions& o) {
  SCOPED_TRACE(query + " mode " + mode_name(o.mode) + (o.level == ResultLevel::kDocument ? " doc" : " passage"));
  auto want = one.search(query, o);
  auto got = cluster.search(query, o);
  ASSERT_EQ(want.is_ok(), got.is_ok()) << (want ? got.status().to_string() : want.status().to_string());
  if (!want) {
    EXPECT_EQ(want.status().message(), got.status().message());
    return;
  }
  ASSERT_EQ(want->hits.size(), got->hits.size());
  EXPECT_EQ(want->mode, got->mode);
  EXPECT_TRUE(close(want->coverage, got->coverage) || (std::isnan(want->coverage) && std::isnan(got->coverage)))
      << want->coverage << " vs " << got->coverage;
  for (size_t i = 0; i < want->hits.size(); ++i) {
    const Hit& w = want->hits[i];
    const Hit& g = got->hits[i].hit;
    EXPECT_EQ(want->passage(i).passage_id, cluster.passage_id(got->hits[i])) << "rank " << i;
    EXPECT_TRUE(close(w.score, g.score)) << "rank " << i << ": " << w.score << " vs " << g.score;
    EXPECT_TRUE(close(w.body_score, g.body_score)) << "rank " << i;
    EXPECT_TRUE(close(w.heading_score, g.heading_score)) << "rank " << i;
    EXPECT_TRUE(close(w.dense_score, g.dense_score)) << "rank " << i;
    ASSERT_EQ(w.has_features, g.has_features);
    for (uint32_t f = 0; f < rank::kNumFeatures && w.has_features; ++f) {
      EXPECT_TRUE(close(w.features[f], g.features[f]))
          << "rank " << i << " feature " << rank::feature_names()[f] << ": " << w.features[f] << " vs " << g.features[f];
    }
  }
}

void expect_same_everywhere(const Index& one, const Cluster& cluster) {
  for (const auto& q : testing::kQueries) {
    for (SearchMode mode : {SearchMode::kBm25, SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
      for (ResultLevel level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
        SearchOptions o;
        o.k = 8;
        o.mode = mode;
        o.level = level;
        expect_same(one, cluster, q, o);
        o.filters.corpus = {"guides"};
        expect_same(one, cluster, q, o);
        o.filters = {};
        o.fusion = Fusion::kRrf;
        o.mmr = 0.7f;
        o.max_per_doc = 1;
        o.candidates = 20;
        expect_same(one, cluster, q, o);
      }
    }
  }
}

std::vector<io::Document> without(std::vector<io::Document> docs, const std::vector<std::string>& ids) {
  std::erase_if(docs, [&](const io::Document& d) { return std::find(ids.begin(), ids.end(), d.doc_id) != ids.end(); });
  return docs;
}

TEST(Shard, SameAnswersAsOneIndexInEveryModeAndLevel) {
  const auto docs = testing::corpus("d", 120, 7);
  auto one = Index::build(docs, BuildOptions{}, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(one.is_ok());
  Cluster cluster(docs, 3);
  EXPECT_EQ(cluster.stats().passages, (*one)->num_passages());
  EXPECT_EQ(cluster.stats().documents, (*one)->num_documents());
  expect_same_everywhere(**one, cluster);
}

TEST(Shard, SameAnswersAfterAddAndRemove) {
  const auto docs = testing::corpus("d", 90, 11);
  auto one = Index::build(docs, BuildOptions{}, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(one.is_ok());
  Cluster cluster(docs, 4);
  const auto added = testing::corpus("new", 30, 12);
  ASSERT_TRUE((*one)->add(added).is_ok());
  cluster.add(added);
  expect_same_everywhere(**one, cluster);
  const std::vector<std::string> gone = {"d3", "d10", "d11", "new4", "d57"};
  ASSERT_TRUE((*one)->remove(gone).is_ok());
  cluster.remove(gone);
  EXPECT_EQ(cluster.stats().passages, (*one)->num_passages());
  expect_same_everywhere(**one, cluster);
  // And a fresh index over the remaining documents agrees as well (generations answer as a rebuild).
  auto rebuilt = Index::build(without([&] {
                                auto all = docs;
                                all.insert(all.end(), added.begin(), added.end());
                                return all;
                              }(), gone),
                              BuildOptions{}, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(rebuilt.is_ok());
  expect_same_everywhere(**rebuilt, cluster);
}

TEST(Shard, UnknownFilterValuesAreErrorsOnlyWhenNoShardHasThem) {
  auto docs = testing::corpus("d", 40, 3);
  docs[0].metadata.push_back({"year", {"2011"}});  // one document, so one shard, has it
  auto one = Index::build(docs, BuildOptions{}, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(one.is_ok());
  Cluster cluster(docs, 3);
  SearchOptions o;
  o.mode = SearchMode::kHybrid;
  o.filters.metadata.push_back({"year", {"2011"}, "", ""});
  expect_same(**one, cluster, "mesothelioma", o);
  auto found = cluster.search("mesothelioma pleural", o);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  o.filters.metadata[0].any_of = {"1999"};
  auto missing = cluster.search("mesothelioma", o);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().message(), "no document has year = '1999'");
  o.filters = {};
  o.filters.corpus = {"nowhere"};
  EXPECT_EQ(cluster.search("mesothelioma", o).status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, MergeRefusesMissingRepeatedStaleOrForeignAnswers) {
  const auto docs = testing::corpus("d", 60, 5);
  Cluster cluster(docs, 3);
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  auto plan = cluster.coordinator().plan("lung nivolumab", o);
  ASSERT_TRUE(plan.is_ok());
  std::vector<std::string> answers;
  for (size_t s = 0; s < 3; ++s) answers.push_back(*cluster.searcher(s).answer(*plan));
  EXPECT_TRUE(cluster.coordinator().merge(*plan, answers).is_ok());
  // A missing shard: never a partial top-k.
  std::vector<std::string> two(answers.begin(), answers.begin() + 2);
  EXPECT_EQ(cluster.coordinator().merge(*plan, two).status().code(), StatusCode::kInvalidArgument);
  // One shard answering twice.
  std::vector<std::string> twice = {answers[0], answers[0], answers[1]};
  EXPECT_EQ(cluster.coordinator().merge(*plan, twice).status().code(), StatusCode::kInvalidArgument);
  // An answer to another query.
  auto other = cluster.coordinator().plan("breast tamoxifen", o);
  std::vector<std::string> mixed = {answers[0], answers[1], *cluster.searcher(2).answer(*other)};
  EXPECT_EQ(cluster.coordinator().merge(*plan, mixed).status().code(), StatusCode::kInvalidArgument);
  // A damaged answer or plan.
  std::vector<std::string> damaged = answers;
  damaged[1].resize(damaged[1].size() / 2);
  EXPECT_EQ(cluster.coordinator().merge(*plan, damaged).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(cluster.searcher(0).answer(plan->substr(0, 10)).status().code(), StatusCode::kCorrupt);
  // A shard holding other statistics (a change the plan did not see) refuses the plan.
  auto newer = std::make_shared<CollectionStats>(cluster.stats());
  newer->version += 1;
  auto stale = ShardSearcher::create(0, cluster.snapshot(0), newer, cluster.order(0));
  ASSERT_TRUE(stale.is_ok());
  EXPECT_EQ((*stale)->answer(*plan).status().code(), StatusCode::kStale);
}

TEST(Shard, SearcherChecksItsInputs) {
  const auto docs = testing::corpus("d", 30, 9);
  Cluster cluster(docs, 2);
  auto stats = std::make_shared<const CollectionStats>(cluster.stats());
  std::vector<uint64_t> order = cluster.order(0);
  order.pop_back();
  EXPECT_EQ(ShardSearcher::create(0, cluster.snapshot(0), stats, order).status().code(), StatusCode::kInvalidArgument);
  order = cluster.order(0);
  std::reverse(order.begin(), order.end());
  EXPECT_EQ(ShardSearcher::create(0, cluster.snapshot(0), stats, order).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShardSearcher::create(5, cluster.snapshot(0), stats, cluster.order(0)).status().code(),
            StatusCode::kInvalidArgument);
  // Statistics of indexes built with other options do not belong.
  BuildOptions other;
  other.bm25.k1 = 1.5f;
  auto foreign = Index::build(testing::corpus("x", 10, 1), other);
  ASSERT_TRUE(foreign.is_ok());
  CollectionStats parts[] = {cluster.stats(), CollectionStats::of(*(*foreign)->snapshot())};
  EXPECT_EQ(CollectionStats::merge(parts).status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, StatisticsFileRoundTripsAndRefusesDamage) {
  const auto docs = testing::corpus("d", 30, 4);
  Cluster cluster(docs, 2);
  testing::ScratchDir dir("shard-stats");
  const auto file = dir.path() / "collection.stats";
  ASSERT_TRUE(cluster.stats().save(file).is_ok());
  auto loaded = CollectionStats::load(file);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->serialize(), cluster.stats().serialize());
  EXPECT_EQ(loaded->terms, cluster.stats().terms);
  EXPECT_EQ(loaded->version, cluster.stats().version);
  std::string bytes = testing::read_bytes(file);
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::write_bytes(file, bytes);
  auto damaged = CollectionStats::load(file);
  ASSERT_FALSE(damaged.is_ok());
  EXPECT_EQ(damaged.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(damaged.status().message().find(file.string()), std::string::npos) << damaged.status().message();
  EXPECT_EQ(CollectionStats::load(dir.path() / "absent").status().code(), StatusCode::kNotFound);
}

// fuzz_shard: bytes after the last field (under a valid checksum) were read as statistics
// that serialise to other bytes (seed shard/regress_stats_trailing_bytes).
TEST(Shard, BytesAfterTheStatisticsAreCorrupt) {
  Cluster cluster(testing::corpus("d", 10, 2), 2);
  std::string bytes = cluster.stats().serialize();
  bytes.resize(bytes.size() - 8);  // the checksum
  bytes += "extra";
  const uint64_t sum = internal::xxh3_64(bytes);
  bytes.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
  EXPECT_EQ(CollectionStats::parse(bytes, "x.stats").status().code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace medsearch
