// Single-query latency of FlatIndex and HnswIndex (float32 / int8) with
// recall@10 against exact search, and filtered search on both paths.
//
//   build/bin/medsearch_bench --benchmark_filter='BM_(Flat|Hnsw|Filtered)'
//
// Data: seeded clustered Gaussian, MEDSEARCH_BENCH_N rows (default 50,000) of
// MEDSEARCH_BENCH_DIM (default 100) unit vectors, 1,000 held-out queries,
// inner product, M = 16, ef_construction = 200. Single thread per query
// (benchmark's own thread). Counters: recall (recall@10 over the 1,000
// queries at that ef), qps, bytes_per_vector (heap; the int8 float32 rescoring
// rows are file-backed and reported as mapped_bytes_per_vector), build_s.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>

#include <medsearch/vector_index.h>

#include "core/vector/hnsw_index.h"
#include "tests/vector/test_data.h"

namespace medsearch::vector {
namespace {

constexpr size_t kK = 10;

size_t env_or(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

const testing::Dataset& dataset() {
  static const testing::Dataset d =
      testing::clustered(env_or("MEDSEARCH_BENCH_N", 50000), 1000, env_or("MEDSEARCH_BENCH_DIM", 100), 200, true, 7);
  return d;
}

struct Built {
  std::unique_ptr<VectorIndex> index;
  double build_s = 0;
};

// kind 0 = flat, 1 = hnsw float32, 2 = hnsw int8.
const Built& built(int kind) {
  static std::map<int, Built> cache;
  auto it = cache.find(kind);
  if (it != cache.end()) return it->second;
  IndexOptions o;
  o.dim = dataset().dim;
  o.kind = kind == 0 ? IndexKind::kFlat : IndexKind::kHnsw;
  o.dtype = kind == 2 ? VectorDType::kInt8 : VectorDType::kFloat32;
  Built b;
  b.index = std::move(make_vector_index(o).value());
  const auto t0 = std::chrono::steady_clock::now();
  if (!b.index->add(dataset().base_view(), {}).is_ok()) std::abort();
  b.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return cache.emplace(kind, std::move(b)).first->second;
}

const std::vector<DocId>& truth() {
  static const std::vector<DocId> t = [] {
    std::vector<DocId> ids(dataset().nq() * kK);
    std::vector<float> sc(ids.size());
    if (!built(0).index->search(dataset().query_view(), {.k = kK}, ids, sc).is_ok()) std::abort();
    return ids;
  }();
  return t;
}

void run_queries(benchmark::State& state, const VectorIndex& index, SearchParams p, const IdFilter* filter = nullptr) {
  const auto& d = dataset();
  p.filter = filter;
  std::vector<DocId> ids(d.nq() * p.k);
  std::vector<float> sc(ids.size());
  size_t q = 0;
  for (auto _ : state) {
    MatrixView one{d.queries.data() + q * d.dim, 1, d.dim, d.dim};
    Status st = index.search(one, p, std::span(ids).subspan(q * p.k, p.k), std::span(sc).subspan(q * p.k, p.k));
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(ids.data());
    q = (q + 1) % d.nq();
  }
  // Recall over every query, outside the timed loop.
  if (!index.search(d.query_view(), p, ids, sc).is_ok()) std::abort();
  if (!filter) state.counters["recall"] = testing::recall_at_k(ids, truth(), d.nq(), kK);
  state.counters["qps"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes_per_vector"] = static_cast<double>(index.memory_bytes()) / static_cast<double>(d.n());
  state.counters["mapped_bytes_per_vector"] = static_cast<double>(index.mapped_bytes()) / static_cast<double>(d.n());
}

void BM_FlatSingleQuery(benchmark::State& state) {
  const auto& b = built(0);
  run_queries(state, *b.index, {.k = kK});
}
BENCHMARK(BM_FlatSingleQuery)->Unit(benchmark::kMicrosecond);

void BM_HnswSingleQuery(benchmark::State& state) {
  truth();
  const auto& b = built(static_cast<int>(state.range(0)));
  run_queries(state, *b.index, {.k = kK, .ef = static_cast<uint32_t>(state.range(1))});
  state.counters["build_s"] = b.build_s;
  state.SetLabel(state.range(0) == 2 ? "int8+rescore" : "float32");
}
BENCHMARK(BM_HnswSingleQuery)
    ->ArgsProduct({{1, 2}, {10, 16, 32, 64, 128, 256}})
    ->ArgNames({"type", "ef"})
    ->Unit(benchmark::kMicrosecond);

// Filtered search on each path, by selectivity (allowed ids per 10,000),
// float32 HNSW, ef = 64; ids drawn uniformly (not correlated with clusters).
void BM_FilteredSearch(benchmark::State& state) {
  const auto& b = built(static_cast<int>(state.range(2)));
  const auto& d = dataset();
  std::mt19937 rng(5);
  std::bernoulli_distribution keep(static_cast<double>(state.range(0)) / 10000.0);
  IdFilter f;
  for (DocId i = 0; i < d.n(); ++i)
    if (keep(rng)) f.add(i);
  const auto mode = state.range(1) == 0 ? FilterMode::kGraph : FilterMode::kExact;
  run_queries(state, *b.index, {.k = kK, .ef = 64, .filter_mode = mode}, &f);
  state.counters["allowed"] = static_cast<double>(f.cardinality());
  state.counters["auto_picks_exact"] = HnswIndex::use_exact_filter(f.cardinality(), d.n(), 64);
  state.SetLabel(mode == FilterMode::kGraph ? "graph" : "exact");
}
BENCHMARK(BM_FilteredSearch)
    ->ArgsProduct({{10, 30, 100, 300, 1000, 3000}, {0, 1}, {1}})
    ->ArgNames({"per10k", "exact", "type"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace medsearch::vector
