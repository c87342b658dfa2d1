// fuzz_shard: the bytes a sharded search exchanges (include/medsearch/shard.h)
// and the statistics file, as a shard or a coordinator receives them from
// elsewhere: on a tiny 2-shard collection built once per process.
//
// Input: a selector byte, then the bytes.
//   0  collection statistics (CollectionStats::parse); the checksum trailer is
//      recomputed when bit 7 of the selector is clear, so the parser is reached
//   1  a plan, answered by shard 0 (ShardSearcher::answer)
//   2  an answer of shard 0, merged with shard 1's true answer to a true plan
//   3  a plan, merged with the shards' true answers to another plan
// Seeds are the true bytes behind their selector; `fuzz_shard -runs=0` with
// MEDSEARCH_FUZZ_WRITE_SEEDS=<dir> writes them there.
//
// Every call must return a Status or a value that keeps the contract: parsed
// statistics round-trip through serialize(); a merged response has at most
// k hits, each naming a shard (and, from true answers, a passage it holds).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <medsearch/shard.h>

#include "core/internal/binary_io.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/index/tiny_corpus.h"

namespace {

using namespace medsearch;

struct Reference {
  std::vector<std::unique_ptr<Index>> shards;
  std::shared_ptr<const CollectionStats> stats;
  std::vector<std::shared_ptr<const ShardSearcher>> searchers;
  std::unique_ptr<Coordinator> coordinator;
  std::string plan, other_plan;
  std::vector<std::string> answers;
};

const Reference& reference() {
  static const Reference* ref = [] {
    auto* r = new Reference();
    auto embedder = std::make_shared<testing::TinyEmbedder>();
    const auto docs = testing::corpus("d", 24, 3);
    std::vector<io::Document> split[2];
    std::vector<uint64_t> order[2];
    for (size_t i = 0; i < docs.size(); ++i) {
      const uint32_t s = shard_of(docs[i].doc_id, 2);
      split[s].push_back(docs[i]);
      order[s].push_back(i);
    }
    std::vector<CollectionStats> parts;
    for (auto& part : split) {
      r->shards.push_back(std::move(Index::build(std::move(part), BuildOptions{}, nullptr, embedder)).value());
      parts.push_back(CollectionStats::of(*r->shards.back()->snapshot()));
    }
    auto merged = std::move(CollectionStats::merge(parts)).value();
    merged.version = 1;
    r->stats = std::make_shared<const CollectionStats>(std::move(merged));
    for (uint32_t s = 0; s < 2; ++s) {
      r->searchers.push_back(
          std::move(ShardSearcher::create(s, r->shards[s]->snapshot(), r->stats, order[s])).value());
    }
    r->coordinator = std::make_unique<Coordinator>(r->stats, embedder);
    SearchOptions o;
    o.mode = SearchMode::kRerank;
    o.k = 5;
    o.mmr = 0.7f;
    r->plan = std::move(r->coordinator->plan("recurrent mesothelioma chemotherapy", o)).value();
    o.mode = SearchMode::kBm25;
    r->other_plan = std::move(r->coordinator->plan("lung nivolumab", o)).value();
    for (const auto& s : r->searchers) r->answers.push_back(std::move(s->answer(r->plan)).value());
    return r;
  }();
  return *ref;
}

std::string with_checksum(std::string body) {
  const uint64_t sum = internal::xxh3_64(body);
  body.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
  return body;
}

void write_seeds(const char* dir) {
  const Reference& ref = reference();
  const std::string stats = ref.stats->serialize();
  const std::pair<char, std::string> seeds[] = {
      {'\0', stats.substr(0, stats.size() - 8)}, {'\1', ref.plan}, {'\2', ref.answers[0]}, {'\3', ref.other_plan}};
  int n = 0;
  for (const auto& [selector, bytes] : seeds) {
    fuzz::write_bytes(std::filesystem::path(dir) / ("seed-" + std::to_string(n++)), std::string(1, selector) + bytes);
  }
}

// A merge trusts each shard's passage numbers (fetching the passages checks
// them); with true answers they must be the shards' passages.
void check_response(const Reference& ref, const Result<ShardedResponse>& r, uint32_t k, bool true_answers) {
  if (!r) return;
  FUZZ_CHECK(r->hits.size() <= k, "more hits than k");
  for (const ShardedHit& h : r->hits) {
    FUZZ_CHECK(h.shard < 2, "a hit of no shard");
    FUZZ_CHECK(!true_answers || h.hit.passage < ref.searchers[h.shard]->snapshot().num_passages(), "a hit of no passage");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("MEDSEARCH_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  (void)reference();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Reference& ref = reference();
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch ((data[0] & 0x7f) % 4) {
    case 0: {
      const std::string file = (data[0] & 0x80) ? bytes : with_checksum(bytes);
      auto stats = CollectionStats::parse(file, "fuzz.stats");
      if (stats) {
        // What parses serialises to bytes that parse to the same (a bool may be stored as any nonzero byte).
        const std::string again = stats->serialize();
        auto reparsed = CollectionStats::parse(again, "fuzz.stats");
        FUZZ_CHECK(reparsed && reparsed->serialize() == again, "statistics do not round-trip");
        FUZZ_CHECK(again.size() == file.size(), "statistics parsed from more or fewer bytes than they are");
      }
      break;
    }
    case 1:
      (void)ref.searchers[0]->answer(bytes);
      break;
    case 2: {
      const std::string answers[] = {bytes, ref.answers[1]};
      check_response(ref, ref.coordinator->merge(ref.plan, answers), 5, false);
      break;
    }
    case 3:
      check_response(ref, ref.coordinator->merge(bytes, ref.answers), 1u << 24, true);
      break;
  }
  return 0;
}
