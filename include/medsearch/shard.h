// shard.h: one collection split over several indexes (shards) and searched
// scatter-gather, with the answers one Index over the whole collection gives.
//
// As Elasticsearch's dfs_query_then_fetch: the shards' statistics are
// reduced into the collection's once (CollectionStats::merge), every shard
// scores with them, and a coordinator merges the shards' candidates before
// the steps that depend on the whole candidate pool (ranks, fusion,
// normalisation, document and section aggregates, reranking, grouping,
// diversity). Shards and coordinator exchange bytes, so they may live in
// different processes or machines (python/medsearch/distributed.py runs
// them on Ray):
//
//   coordinator                                   shard i (its own Index)
//   stats = CollectionStats::merge({CollectionStats::of(*snapshot_i), ...})
//   Coordinator c(stats, embedder);
//   plan = c.plan(query, options)           ->    ShardSearcher(snapshot_i, stats, order_i).answer(plan)
//   response = c.merge(plan, answers)       <-
//   the hits' passages                      ->    snapshot_i->passage(hit.passage)
//
// Same answers: BM25 scores, idf-based features, heading commonness and the
// audience direction use the collection's statistics; ties break by the
// collection's order of documents (each shard's `order`), as one Index
// breaks them by passage number. With exact (flat) dense search every mode
// gives one Index's passages in its order, with scores equal up to float
// summation order (relative 1e-6); with HNSW the shards' graphs differ from
// one graph over the collection (recall against exact search is measured by
// bench/distributed_bench.py).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/index.h>

namespace medsearch {

// The shard of `shards` a document belongs to: a stable hash (XXH3) of its
// doc_id, so a doc_id routes to one shard whatever its corpus.
uint32_t shard_of(std::string_view doc_id, uint32_t shards);

// What BM25 and the corpus-wide features count over a collection: of one
// index (of()), or of several reduced into one (merge()). Saved as a
// versioned, checksummed file.
struct CollectionStats {
  uint64_t version = 0;  // the coordinator's count of changes; plans and answers carry it
  uint32_t shards = 1;   // indexes merged
  uint64_t documents = 0;
  uint64_t passages = 0;
  uint64_t length_sum[2] = {};  // summed field lengths (body, heading) in analysed terms
  BuildOptions options;         // every shard's (merge() checks they agree)
  uint32_t dim = 0;             // passage vectors (0: none), as every shard's
  std::string model_id;
  // Sorted analysed terms and their document frequency (passages holding
  // them) per field.
  std::vector<std::string> terms;
  std::vector<std::array<uint32_t, 2>> doc_freq;
  // Sorted own (last) headings and the documents that have each.
  std::vector<std::string> headings;
  std::vector<uint32_t> heading_documents;
  // Per audience (health professional, patient): the sum of its passages'
  // vectors and their count (the audience direction of the features).
  std::array<std::vector<double>, 2> audience_sum;
  std::array<uint64_t, 2> audience_count = {};

  static CollectionStats of(const Snapshot& snapshot);
  // The statistics of the shards together (version 0: the caller sets it).
  // InvalidArgument when they do not belong together: different build
  // options, vector models or dimensions, or no parts.
  static Result<CollectionStats> merge(std::span<const CollectionStats> parts);

  // The term's position in `terms`, if any shard holds it.
  std::optional<size_t> find_term(std::string_view term) const;
  // Documents with this own heading in the collection (0 if none).
  uint32_t heading_count(std::string_view heading) const;
  // rank::audience_direction() of the collection's vectors.
  std::vector<float> audience_direction() const;

  std::string serialize() const;
  // kCorrupt naming `name` for bytes that are not statistics of this format.
  static Result<CollectionStats> parse(std::string_view bytes, const std::string& name);
  // Atomic and checksummed; load() refuses a damaged file naming it.
  Status save(const std::filesystem::path& file) const;
  static Result<CollectionStats> load(const std::filesystem::path& file);
};

// One shard's side: a snapshot of its Index, searched with the collection's
// statistics. `order[d]` is document d's position in the collection's order
// (ascending: a shard holds its documents in collection order, as
// Index::add() appends them). Immutable; answer() may run concurrently.
class ShardSearcher {
 public:
  // InvalidArgument when `order` does not have one ascending entry per
  // document, or the statistics are not of a collection this index could
  // belong to (other build options or vectors).
  static Result<std::shared_ptr<const ShardSearcher>> create(uint32_t shard, std::shared_ptr<const Snapshot> snapshot,
                                                             std::shared_ptr<const CollectionStats> stats,
                                                             std::vector<uint64_t> order);
  // The answer to a plan (Coordinator::plan()), as bytes for merge(). Errors:
  // a damaged plan, a plan of another statistics version (kStale), a filter
  // with a malformed bound.
  Result<std::string> answer(std::string_view plan) const;

  uint32_t shard() const { return shard_; }
  const Snapshot& snapshot() const { return *snapshot_; }
  const CollectionStats& stats() const { return *stats_; }

  struct Impl;
  ~ShardSearcher();

 private:
  ShardSearcher() = default;
  uint32_t shard_ = 0;
  std::shared_ptr<const Snapshot> snapshot_;
  std::shared_ptr<const CollectionStats> stats_;
  std::unique_ptr<Impl> impl_;
};

// One hit of a sharded search: its shard and, in hit.passage, its passage
// number in the snapshot that shard answered from (ShardedResponse::generations).
struct ShardedHit {
  uint32_t shard = 0;
  Hit hit;
};

struct ShardedResponse {
  std::vector<ShardedHit> hits;
  SearchMode mode = SearchMode::kBm25;
  float coverage = std::numeric_limits<float>::quiet_NaN();
  uint64_t stats_version = 0;
  std::vector<uint64_t> generations;  // per shard, the generation that answered
};

// The coordinator's side: analyses and embeds a query once, and merges the
// shards' answers into the response one Index would give. Immutable;
// thread-safe.
class Coordinator {
 public:
  Coordinator(std::shared_ptr<const CollectionStats> stats, std::shared_ptr<const embed::Embedder> embedder,
              std::shared_ptr<const rank::Reranker> reranker = nullptr);
  ~Coordinator();

  // The query as every shard needs it (bytes): its analysed terms with the
  // collection's document frequencies, its vector, the options. Errors as
  // Index::search(): an empty query, invalid options, a mode the collection
  // cannot answer (no vectors), no embedder for a query without a vector.
  Result<std::string> plan(std::string_view query, const SearchOptions& options) const;
  // Merges one answer per shard. Errors: a missing, repeated or damaged
  // answer, or one to another plan or statistics version (never a partial
  // top-k); a filter value no shard knows (as Index::search()).
  Result<ShardedResponse> merge(std::string_view plan, std::span<const std::string> answers) const;

  const CollectionStats& stats() const { return *stats_; }
  const std::shared_ptr<const rank::Reranker>& reranker() const { return reranker_; }
  // kAuto as the collection answers it: kRerank with passage vectors, else kBm25.
  SearchMode resolve_mode(SearchMode mode) const;

 private:
  std::shared_ptr<const CollectionStats> stats_;
  std::shared_ptr<const embed::Embedder> embedder_;
  std::shared_ptr<const rank::Reranker> reranker_;
  struct Cache;
  std::unique_ptr<Cache> cache_;  // the analyzer and the audience direction
};

}  // namespace medsearch
