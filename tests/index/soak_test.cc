// Bounded-time soak (issue "hardening"): searches from several threads while
// another thread adds, removes and compacts (VectorIndex, flat and HNSW); the
// Index facade searched in every mode from several threads, unchanged and
// while a writer adds and removes documents; every answer is checked, and
// memory must stay flat.
//
// MEDSEARCH_SOAK_SECONDS (default 20) is the time of the four tests together:
// flat 20 %, HNSW 30 %, Index 20 %, changing Index 30 %. Each spends its first
// tenth warming up before resident memory is sampled (/proc/self/statm).
//
// How a concurrent answer is checked. Ids [0, kStable) are added first and
// never removed; the writer adds fresh ids (never reused) from the same
// distribution and removes some of them, publishing after each remove() a
// sequence number. An answer is right for some state the index went through
// during the search if:
//   - every id was added (below the writer's last announced id) and is not
//     one whose remove() returned before the search started;
//   - every score is the exact inner product of the query and that id's
//     vector, scores descend and ids are distinct, and filters hold;
//   - no stable id (allowed by the filter) that scores above the last
//     returned one is missing: stable ids are in every state, so the exact
//     top k of any state holds all of them that beat its k-th.
// The flat index is exact, so every answer must pass. HNSW passes the last
// check when the walk sees the whole graph (ef above the node count, which
// the writer keeps below 2,000 by compacting); smaller ef values are checked
// for the rest and their recall is printed.
//
// Threads are std::threads; the writer runs in a one-thread arena. Under
// ThreadSanitizer, tests/sanitizer_env_test.cc keeps oneTBB on the calling
// thread, so nothing here relies on TBB workers.
#include <gtest/gtest.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <medsearch/index.h>
#include <medsearch/vector_index.h>

#include "tests/index/tiny_corpus.h"
#include "tests/vector/test_data.h"

namespace medsearch {
namespace {

using Clock = std::chrono::steady_clock;

double soak_seconds(double share) {
  const char* s = std::getenv("MEDSEARCH_SOAK_SECONDS");
  const double total = s && std::atof(s) > 0 ? std::atof(s) : 20.0;
  return total * share;
}

// Resident set size in MB.
double rss_mb() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1 << 20);
}

constexpr double kMaxGrowthMb = 64;

// Lets a test's threads run for `seconds` from `start`: the first tenth is
// warm-up, after which resident memory is sampled (and `at_warm` runs), then
// again at the end. Returns {MB after warm-up, MB at the end}.
template <typename F>
std::pair<double, double> run_soak(Clock::time_point start, double seconds, F&& at_warm) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds * 0.1));
  const double rss_start = rss_mb();
  at_warm();
  std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(seconds)));
  return {rss_start, rss_mb()};
}

// AddressSanitizer holds freed memory in quarantine (256 MB by default) and
// ThreadSanitizer maps shadow for every new address, so resident memory
// grows under them whatever the code does: there it is printed, not checked.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kCheckMemory = false;
#else
constexpr bool kCheckMemory = true;
#endif

// The first few failure messages of a soak, from any thread.
class Failures {
 public:
  void add(const std::string& what) {
    std::lock_guard lock(mu_);
    if (++count_ <= 10) first_.push_back(what);
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string report() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& f : first_) out += f + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::vector<std::string> first_;
};

// ---------------------------------------------------------------- VectorIndex

namespace vx = medsearch::vector;

constexpr size_t kDim = 32;
constexpr vx::DocId kStable = 600;      // ids [0, kStable): added first, never removed
constexpr size_t kPool = 4096;          // writer's vectors: id i uses pool row i % kPool
constexpr size_t kBatch = 50;           // rows per add() and per remove()
constexpr size_t kLiveMutable = 600;    // the writer removes when more of its ids are live
constexpr size_t kCompactAfter = 600;   // removed ids between compactions
constexpr size_t kRing = 1u << 18;      // removal records kept (see VectorSoak::removed)
constexpr uint32_t kK = 10;
constexpr uint32_t kWholeGraphEf = 2048;  // > kStable + kLiveMutable + kCompactAfter + kBatch

struct VectorSoak {
  explicit VectorSoak(vx::IndexKind kind) : kind(kind), removed(kRing) {
    // One cloud: the writer's rows come from the same clusters as the stable ones.
    auto data = vx::testing::clustered(kStable + kPool, 64, kDim, 20, true, 11);
    stable.assign(data.base.begin(), data.base.begin() + kStable * kDim);
    pool.assign(data.base.begin() + kStable * kDim, data.base.end());
    queries = std::move(data.queries);
    nq = queries.size() / kDim;
    stable_scores.resize(nq * kStable);
    for (size_t q = 0; q < nq; ++q) {
      for (vx::DocId s = 0; s < kStable; ++s) stable_scores[q * kStable + s] = dot(&queries[q * kDim], row(s));
    }
    for (vx::DocId id = 0; id < (1u << 24); id += 2) even.add(id);
    for (vx::DocId id = 0; id < kStable; id += 3) few.add(id);
    vx::IndexOptions o;
    o.dim = kDim;
    o.kind = kind;
    o.metric = vx::Metric::kInnerProduct;
    o.ef_construction = 64;
    index = std::move(vx::make_vector_index(o)).value();
    EXPECT_TRUE(index->add({stable.data(), kStable, kDim, kDim}, {}).is_ok());
    issued = kStable;
  }

  const float* row(vx::DocId id) const {
    return id < kStable ? &stable[size_t{id} * kDim] : &pool[(id % kPool) * kDim];
  }
  static double dot(const float* a, const float* b) {
    double s = 0;
    for (size_t j = 0; j < kDim; ++j) s += double{a[j]} * b[j];
    return s;
  }

  // The writer: add, remove, compact until `stop`. Each round removes the
  // kBatch / 2 oldest of its live ids and kBatch / 2 others at random, so
  // its live ids stay within the last ~2,000 it added.
  void write(const std::atomic<bool>& stop) {
    std::mt19937 rng(5);
    std::vector<vx::DocId> live;  // ascending
    std::vector<float> rows(kBatch * kDim);
    size_t removed_since_compact = 0;
    vx::DocId next = kStable;
    tbb::task_arena one(1);
    while (!stop.load() && next < (1u << 24) - kBatch) {
      std::vector<vx::DocId> ids(kBatch);
      for (size_t i = 0; i < kBatch; ++i) {
        ids[i] = next + static_cast<vx::DocId>(i);
        std::copy(row(ids[i]), row(ids[i]) + kDim, rows.begin() + i * kDim);
      }
      next += kBatch;
      issued.store(next);  // before add(): searches may see part of it
      Status st;
      one.execute([&] { st = index->add({rows.data(), kBatch, kDim, kDim}, ids); });
      if (!st.is_ok()) failures.add("add: " + st.to_string());
      adds += kBatch;
      live.insert(live.end(), ids.begin(), ids.end());
      if (live.size() > kLiveMutable) {
        std::shuffle(live.begin() + kBatch / 2, live.end(), rng);
        std::vector<vx::DocId> gone(live.begin(), live.begin() + kBatch);
        live.erase(live.begin(), live.begin() + kBatch);
        std::sort(live.begin(), live.end());
        if (Status r = index->remove(gone); !r.is_ok()) failures.add("remove: " + r.to_string());
        // Published only after remove() returned: a search that starts after
        // seen `seq` = s must not return `gone`.
        const uint64_t s = seq.load() + 1;
        for (vx::DocId id : gone) removed[id % kRing].store(s << 32 | id);
        oldest_live.store(live.empty() ? next : live.front());
        seq.store(s);
        removes += kBatch;
        removed_since_compact += kBatch;
      }
      if (removed_since_compact >= kCompactAfter) {
        one.execute([&] { st = index->compact(); });
        if (!st.is_ok()) failures.add("compact: " + st.to_string());
        removed_since_compact = 0;
        ++compactions;
      }
      // The flat index takes a batch in ~0.1 ms: pace it, or it would run out
      // of ids (2^24, the filters' range) in long soaks and starve searches.
      if (kind == vx::IndexKind::kFlat) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }

  // A searcher: random queries, batch sizes, ef and filters until `stop`.
  void search(const std::atomic<bool>& stop, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<float> qs(8 * kDim);
    std::vector<size_t> which(8);
    std::vector<vx::DocId> ids(8 * kK);
    std::vector<float> scores(8 * kK);
    while (!stop.load()) {
      // 8: the flat index's GEMM path; HNSW walks each query alone anyway.
      const size_t n = rng() % 2 ? 1 : (kind == vx::IndexKind::kFlat ? 8 : 2);
      for (size_t i = 0; i < n; ++i) {
        which[i] = rng() % nq;
        std::copy(&queries[which[i] * kDim], &queries[(which[i] + 1) * kDim], qs.begin() + i * kDim);
      }
      vx::SearchParams p;
      p.k = kK;
      const bool whole = kind == vx::IndexKind::kFlat || rng() % 3 == 0;
      p.ef = whole ? kWholeGraphEf : (rng() % 2 ? 16 : 64);
      // even: HNSW walks the graph, flat scans; few: HNSW scans the allowed
      // ids (or walks, forced), flat visits them.
      switch (rng() % 4) {
        case 0: p.filter = &even; break;
        case 1: p.filter = &few; break;
        case 2: p.filter = &few; p.filter_mode = vx::FilterMode::kGraph; break;
        default: break;
      }
      const uint64_t started = seq.load();
      const vx::DocId oldest = oldest_live.load();
      const Status st = index->search({qs.data(), n, kDim, kDim}, p, ids, scores);
      const vx::DocId added = issued.load();
      if (!st.is_ok()) {
        failures.add("search: " + st.to_string());
        continue;
      }
      for (size_t i = 0; i < n; ++i) {
        check(which[i], p, whole, started, oldest, added, &ids[i * kK], &scores[i * kK]);
      }
      searches += n;
    }
  }

  // `started`, `oldest`: seq and oldest_live before the search; `added`:
  // issued after it.
  void check(size_t q, const vx::SearchParams& p, bool whole, uint64_t started, vx::DocId oldest, vx::DocId added,
             const vx::DocId* ids, const float* scores) {
    const float* query = &queries[q * kDim];
    auto fail = [&](const std::string& what) {
      failures.add("query " + std::to_string(q) + " ef " + std::to_string(p.ef) + (p.filter ? " filtered" : "") +
                   ": " + what);
    };
    size_t filled = 0;
    std::vector<bool> returned(kStable, false);
    for (size_t i = 0; i < kK; ++i) {
      const vx::DocId id = ids[i];
      if (id == vx::kInvalidDocId) continue;
      if (filled++ != i) return fail("an empty slot before a hit");
      if (id >= added) return fail("id " + std::to_string(id) + " was never added");
      if (id >= kStable) {
        const uint64_t record = removed[id % kRing].load();
        bool gone = id < oldest;  // all the writer's ids below it were removed
        if (static_cast<vx::DocId>(record) == id) {
          gone = gone || (record >> 32) <= started;
        } else if (record != 0 && static_cast<vx::DocId>(record) > id) {
          ++unverified;  // the record was reused during a (very slow) search
        }
        if (gone) return fail("id " + std::to_string(id) + " was removed before the search");
      }
      if (p.filter && !p.filter->contains(id)) return fail("id " + std::to_string(id) + " is not allowed");
      const double exact = dot(query, row(id));
      if (std::abs(scores[i] - exact) > 1e-4) {
        return fail("id " + std::to_string(id) + " scored " + std::to_string(scores[i]) + ", exactly " +
                    std::to_string(exact));
      }
      if (i > 0 && scores[i] > scores[i - 1]) return fail("scores not descending");
      for (size_t j = 0; j < i; ++j) {
        if (ids[j] == id) return fail("id " + std::to_string(id) + " twice");
      }
      if (id < kStable) returned[id] = true;
    }
    // Stable ids that beat the k-th hit must all be there.
    const double kth = filled == kK ? scores[kK - 1] : -1e30;
    size_t should = 0, found = 0;
    for (vx::DocId s = 0; s < kStable; ++s) {
      if (p.filter && !p.filter->contains(s)) continue;
      if (stable_scores[q * kStable + s] > kth + 1e-4) {
        ++should;
        found += returned[s];
      }
    }
    if (whole) {
      if (found != should) {
        fail("missing " + std::to_string(should - found) + " stable ids that beat the k-th hit (" +
             std::to_string(kth) + ")");
      }
    } else {
      stable_should += should;
      stable_found += found;
    }
  }

  vx::IndexKind kind;
  std::unique_ptr<vx::VectorIndex> index;
  std::vector<float> stable, pool, queries;
  size_t nq = 0;
  std::vector<double> stable_scores;  // query x stable id
  vx::IdFilter even, few;  // even ids below 2^24; every third stable id
  std::atomic<vx::DocId> issued{0};
  std::atomic<uint64_t> seq{0};
  std::atomic<vx::DocId> oldest_live{kStable};
  // Removed id i: removed[i % kRing] = seq << 32 | i, seq published after its
  // remove() returned. The writer's live ids span fewer than kRing ids, so a
  // record is overwritten only long after its id is below oldest_live.
  std::vector<std::atomic<uint64_t>> removed;
  std::atomic<size_t> searches{0}, adds{0}, removes{0}, compactions{0}, stable_should{0}, stable_found{0},
      unverified{0};
  Failures failures;
};

void run_vector_soak(vx::IndexKind kind, double seconds, const char* label) {
  VectorSoak soak(kind);
  std::atomic<bool> stop{false}, stop_searchers{false};
  std::thread writer([&] { soak.write(stop); });
  std::vector<std::thread> searchers;
  for (uint32_t t = 0; t < 3; ++t) searchers.emplace_back([&, t] { soak.search(stop_searchers, 100 + t); });
  const auto start = Clock::now();
  size_t searches_start = 0;
  const auto [rss_start, rss_end] = run_soak(start, seconds, [&] { searches_start = soak.searches.load(); });
  // On a loaded machine (sanitizers, two cores shared with other builds) the
  // writer may not have reached its first remove() yet: give it up to four
  // more periods, so the soak always covers removal.
  while (soak.removes.load() == 0 && Clock::now() - start < std::chrono::duration<double>(5 * seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  writer.join();
  stop_searchers = true;
  for (auto& t : searchers) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double recall = soak.stable_should ? double(soak.stable_found) / double(soak.stable_should) : 1.0;
  std::printf(
      "[ soak     ] %s: %.1f s, %zu searches (%zu after warm-up), %zu adds, %zu removes, %zu compactions, %zu live; "
      "small-ef stable recall %.4f; %zu hits unverifiable; RSS %.1f -> %.1f MB (%+.1f)\n",
      label, elapsed, soak.searches.load(), soak.searches.load() - searches_start, soak.adds.load(),
      soak.removes.load(), soak.compactions.load(), soak.index->size(), recall, soak.unverified.load(), rss_start,
      rss_end,
      rss_end - rss_start);
  EXPECT_EQ(soak.failures.count(), 0u) << soak.failures.report();
  EXPECT_GT(soak.searches.load(), 0u);
  EXPECT_GT(soak.removes.load(), 0u);
  if (kCheckMemory) {
    EXPECT_LT(rss_end - rss_start, kMaxGrowthMb);
  }
  if (kind == vx::IndexKind::kHnsw) {
    EXPECT_GT(recall, 0.9);
  }
  // Quiet again: the index holds exactly the stable ids and the writer's live ones.
  EXPECT_EQ(soak.index->size(), kStable + (soak.adds.load() - soak.removes.load()));
}

TEST(Soak, FlatIndexSearchWhileAddRemoveCompact) {
  run_vector_soak(vx::IndexKind::kFlat, soak_seconds(0.20), "flat index");
}

TEST(Soak, HnswIndexSearchWhileAddRemoveCompact) {
  run_vector_soak(vx::IndexKind::kHnsw, soak_seconds(0.30), "HNSW index");
}

// ---------------------------------------------------------------- Index

// Every mode and level from several threads (and batches, and a thread that
// churns the query-vector cache with new texts) equals the single-threaded
// answer computed first.
TEST(Soak, IndexSearchesInEveryModeFromManyThreads) {
  using testing::answer;
  const double seconds = soak_seconds(0.20);
  BuildOptions options;
  options.exact_below = 0;  // the dense side is an HNSW graph
  auto built = Index::build(testing::corpus("s", 150, 21), options, nullptr, std::make_shared<testing::TinyEmbedder>());
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  const Index& index = **built;

  struct Case {
    std::string query;
    SearchMode mode;
    ResultLevel level;
    std::string expected;
  };
  std::vector<Case> cases;
  std::vector<std::string> queries = testing::kQueries;
  queries.insert(queries.end(), {"radiation surgery", "platinum dose toxicity", "biopsy staging pleural"});
  for (const auto& q : queries) {
    for (SearchMode mode : testing::modes_of(index)) {
      for (ResultLevel level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
        cases.push_back({q, mode, level, answer(index, q, mode, level)});
        ASSERT_EQ(cases.back().expected.find(" error "), std::string::npos) << cases.back().expected;
      }
    }
  }

  Failures failures;
  std::atomic<bool> stop{false};
  std::atomic<size_t> searches{0}, batches{0}, churned{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(40 + t);
      while (!stop.load()) {
        const Case& c = cases[rng() % cases.size()];
        if (std::string got = answer(index, c.query, c.mode, c.level); got != c.expected) {
          failures.add("got      " + got + "\nexpected " + c.expected);
        }
        ++searches;
      }
    });
  }
  // search_batch in one mode at a time, compared query by query.
  threads.emplace_back([&] {
    std::mt19937 rng(50);
    while (!stop.load()) {
      const SearchMode mode = testing::modes_of(index)[rng() % 4];
      SearchOptions o;
      o.k = 8;
      o.mode = mode;
      auto batch = index.search_batch(queries, o);
      if (!batch) {
        failures.add("search_batch: " + batch.status().to_string());
        continue;
      }
      for (size_t i = 0; i < queries.size(); ++i) {
        const std::string expected = answer(index, queries[i], mode, ResultLevel::kPassage);
        std::string got = queries[i] + " mode " + std::to_string(static_cast<int>(mode)) + " level 0:";
        const SearchResponse& response = (*batch)[i];
        for (size_t r = 0; r < response.hits.size(); ++r) {
          const Passage p = response.passage(r);
          char score[64];
          std::snprintf(score, sizeof(score), "%a", static_cast<double>(response.hits[r].score));
          got += " " + p.passage_id + "=" + score + "[" + p.text + "]";
        }
        if (got != expected) failures.add("search_batch got " + got + "\nexpected " + expected);
      }
      ++batches;
    }
  });
  // New texts push the cached query vectors out (the cache holds 4,096).
  threads.emplace_back([&] {
    SearchOptions o;
    o.mode = SearchMode::kDense;
    for (size_t i = 0; !stop.load(); ++i) {
      auto r = index.search("lung trial " + std::to_string(i), o);
      if (!r) failures.add("churn: " + r.status().to_string());
      ++churned;
    }
  });

  const auto start = Clock::now();
  const auto [rss_start, rss_end] = run_soak(start, seconds, [] {});
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "[ soak     ] Index, %zu cases: %.1f s, %zu checked searches, %zu search_batch calls of %zu, %zu cache-churning "
      "searches; RSS %.1f -> %.1f MB (%+.1f)\n",
      cases.size(), elapsed, searches.load(), batches.load(), queries.size(), churned.load(), rss_start, rss_end,
      rss_end - rss_start);
  EXPECT_EQ(failures.count(), 0u) << failures.report();
  EXPECT_GT(searches.load(), 0u);
  if (kCheckMemory) {
    EXPECT_LT(rss_end - rss_start, kMaxGrowthMb);
  }
}

// Searches in every mode and level (some filtered) from several threads
// while a writer adds and removes documents (index.h, "Changing the
// documents"). The writer keeps, for each generation it publishes, the list of
// its documents in index order; a generation must answer exactly as
// Index::build() over that list. Each search reports the generation it read
// (SearchResponse::generation), and the test compares its hits (passage
// numbers, scores, coverage, or the error) with those of a reference index
// built from the generation's documents (built once per generation checked,
// a few kept). The dense side is exact (flat), so scores must agree bit for
// bit; where a filter makes the flat index take its selective path in one of
// the two indexes (the changing one also holds rows not yet reclaimed) the
// float sums may differ in the last bits, and scores are compared within 1e-5
// with the order free among near-ties (counted and printed).
TEST(Soak, IndexSearchesInEveryModeWhileDocumentsChange) {
  const double seconds = soak_seconds(0.30);
  // The writer draws from 40 stable-looking documents and 120 more, so
  // documents come back (same doc_id) after being removed.
  std::vector<io::Document> pool = testing::corpus("s", 40, 21);
  for (auto& d : testing::corpus("w", 120, 22)) pool.push_back(std::move(d));
  std::vector<uint32_t> order(40);
  for (uint32_t i = 0; i < 40; ++i) order[i] = i;
  auto docs_of = [&](const std::vector<uint32_t>& o) {
    std::vector<io::Document> out;
    for (uint32_t i : o) out.push_back(pool[i]);
    return out;
  };
  auto built = Index::build(docs_of(order), BuildOptions{}, nullptr, std::make_shared<testing::TinyEmbedder>());
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  Index& index = **built;
  ASSERT_EQ(index.generation(), 1u);

  // generation -> its documents (pool numbers, index order); written by the
  // writer before it publishes the generation.
  std::mutex mu;
  std::unordered_map<uint64_t, std::vector<uint32_t>> generations{{1, order}};
  std::map<uint64_t, std::shared_ptr<const Index>> references;  // a few, newest kept
  std::atomic<size_t> reference_builds{0};
  auto reference = [&](uint64_t generation) -> std::shared_ptr<const Index> {
    std::vector<uint32_t> o;
    {
      std::lock_guard lock(mu);
      if (auto it = references.find(generation); it != references.end()) return it->second;
      auto g = generations.find(generation);
      if (g == generations.end()) return nullptr;
      o = g->second;
    }
    auto ref = Index::build(docs_of(o), BuildOptions{}, nullptr, std::make_shared<testing::TinyEmbedder>());
    if (!ref) return nullptr;
    ++reference_builds;
    std::shared_ptr<const Index> shared = std::move(ref).value();
    std::lock_guard lock(mu);
    references.emplace(generation, shared);
    while (references.size() > 6) references.erase(references.begin());
    return shared;
  };

  Failures failures;
  std::atomic<bool> stop{false};
  std::atomic<size_t> searches{0}, exact{0}, near{0}, errors{0}, adds{0}, removes{0}, changes{0};
  std::atomic<uint64_t> oldest_seen{UINT64_MAX}, newest_seen{0};

  std::thread writer([&] {
    std::mt19937 rng(60);
    tbb::task_arena one(1);
    std::vector<uint8_t> live(pool.size(), 0);
    for (uint32_t i : order) live[i] = 1;
    uint64_t generation = 1;
    while (!stop.load()) {
      std::vector<uint32_t> next = order;
      Status st;
      const size_t n = 1 + rng() % 3;
      if (order.size() < 30 || (order.size() < 90 && rng() % 2)) {
        std::vector<io::Document> batch;
        std::vector<uint32_t> picked;
        while (picked.size() < n) {
          const uint32_t i = static_cast<uint32_t>(rng() % pool.size());
          if (live[i] || std::find(picked.begin(), picked.end(), i) != picked.end()) continue;
          picked.push_back(i);
          batch.push_back(pool[i]);
        }
        next.insert(next.end(), picked.begin(), picked.end());
        {
          std::lock_guard lock(mu);
          generations[generation + 1] = next;
        }
        one.execute([&] { st = index.add(std::move(batch)); });
        for (uint32_t i : picked) live[i] = 1;
        adds += n;
      } else {
        std::vector<std::string> gone;
        for (size_t j = 0; j < n; ++j) {
          const size_t at = rng() % next.size();
          gone.push_back(pool[next[at]].doc_id);
          live[next[at]] = 0;
          next.erase(next.begin() + at);
        }
        {
          std::lock_guard lock(mu);
          generations[generation + 1] = next;
        }
        one.execute([&] { st = index.remove(gone); });
        removes += n;
      }
      if (!st.is_ok()) {
        failures.add("writer: " + st.to_string());
        break;
      }
      order = std::move(next);
      ++generation;
      ++changes;
      // Paced, so searches meet each generation more than once.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  const std::vector<std::string> queries = {"recurrent mesothelioma chemotherapy", "lung nivolumab survival",
                                            "breast tamoxifen dose", "melanoma ipilimumab toxicity trial",
                                            "radiation surgery", "pleural asbestos staging biopsy"};
  std::vector<std::thread> searchers;
  for (uint32_t t = 0; t < 3; ++t) {
    searchers.emplace_back([&, t] {
      std::mt19937 rng(70 + t);
      while (!stop.load()) {
        SearchOptions o;
        o.k = 8;
        o.mode = static_cast<SearchMode>(rng() % 4);
        o.level = rng() % 2 ? ResultLevel::kDocument : ResultLevel::kPassage;
        if (rng() % 3 == 0) o.filters.corpus = {rng() % 2 ? "papers" : "guides"};
        const std::string& q = queries[rng() % queries.size()];
        auto got = index.search(q, o);
        ++searches;
        const uint64_t g = got ? got->generation : 0;
        if (!got) {
          // Only "unknown corpus" is expected (a corpus can empty out); it
          // names no generation, so it is checked against the current one's.
          ++errors;
          if (got.status().message().find("unknown corpus filter") == std::string::npos) {
            failures.add(q + ": " + got.status().to_string());
          }
          continue;
        }
        uint64_t seen = oldest_seen.load();
        while (g < seen && !oldest_seen.compare_exchange_weak(seen, g)) {
        }
        seen = newest_seen.load();
        while (g > seen && !newest_seen.compare_exchange_weak(seen, g)) {
        }
        auto ref = reference(g);
        if (!ref) {
          failures.add("no documents recorded for generation " + std::to_string(g));
          continue;
        }
        auto want = ref->search(q, o);
        auto describe = [&](const SearchResponse& r) {
          std::string s = "generation " + std::to_string(g) + " " + q + " mode " +
                          std::to_string(static_cast<int>(o.mode)) + " level " +
                          std::to_string(static_cast<int>(o.level)) + (o.filters.corpus.empty() ? "" : " filtered") +
                          ":";
          for (const auto& h : r.hits) {
            char score[64];
            std::snprintf(score, sizeof(score), "%a", static_cast<double>(h.score));
            s += " " + r.snapshot->passage(h.passage).passage_id + "=" + score;
          }
          char coverage[64];
          std::snprintf(coverage, sizeof(coverage), " coverage %a", static_cast<double>(r.coverage));
          return s + coverage;
        };
        if (!want) {
          failures.add("generation " + std::to_string(g) + " " + q + ": the reference fails with " +
                       want.status().to_string());
          continue;
        }
        const std::string a = describe(*got), b = describe(*want);
        if (a == b) {
          ++exact;
          continue;
        }
        // Near: same length, each rank's score within 1e-5, same passages.
        bool close = got->hits.size() == want->hits.size() &&
                     (std::isnan(got->coverage) == std::isnan(want->coverage)) &&
                     (std::isnan(got->coverage) || std::abs(got->coverage - want->coverage) <= 1e-4f);
        std::vector<uint32_t> pa, pb;
        for (size_t i = 0; close && i < got->hits.size(); ++i) {
          close = std::abs(got->hits[i].score - want->hits[i].score) <= 1e-5f * std::max(1.0f, std::abs(want->hits[i].score));
          pa.push_back(got->hits[i].passage);
          pb.push_back(want->hits[i].passage);
        }
        std::sort(pa.begin(), pa.end());
        std::sort(pb.begin(), pb.end());
        if (close && pa == pb) {
          ++near;
        } else {
          failures.add("got      " + a + "\nexpected " + b);
        }
      }
    });
  }

  const auto start = Clock::now();
  const auto [rss_start, rss_end] = run_soak(start, seconds, [] {});
  stop = true;
  writer.join();
  for (auto& t : searchers) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "[ soak     ] changing Index: %.1f s, %zu checked searches (%zu exact, %zu within 1e-5, %zu unknown-corpus "
      "errors) over generations %llu..%llu, %zu changes (%zu documents added, %zu removed), %zu reference builds, "
      "%u documents at the end; RSS %.1f -> %.1f MB (%+.1f)\n",
      elapsed, searches.load(), exact.load(), near.load(), errors.load(),
      static_cast<unsigned long long>(oldest_seen.load() == UINT64_MAX ? 0 : oldest_seen.load()),
      static_cast<unsigned long long>(newest_seen.load()), changes.load(), adds.load(), removes.load(),
      reference_builds.load(), index.num_documents(), rss_start, rss_end, rss_end - rss_start);
  EXPECT_EQ(failures.count(), 0u) << failures.report();
  EXPECT_GT(searches.load(), 0u);
  EXPECT_GT(adds.load(), 0u);
  EXPECT_GT(removes.load(), 0u);
  EXPECT_GT(newest_seen.load(), 1u);
  if (kCheckMemory) {
    EXPECT_LT(rss_end - rss_start, kMaxGrowthMb);
  }
  // Quiet again: the last generation answers as a rebuild over its documents.
  auto last = reference(index.generation());
  ASSERT_TRUE(last);
  EXPECT_EQ(testing::answers(index), testing::answers(*last));
}

}  // namespace
}  // namespace medsearch
