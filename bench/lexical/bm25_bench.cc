// BM25 query latency on the default corpus (NCI PDQ), single thread.
//
// Queries: the MedQuAD consumer questions (first 2,000 in file order) and the
// SciFact claims, against the NCI PDQ passages. Reports p50/p99 per query
// (counters p50_us, p99_us) beside the usual mean time.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <medsearch/corpus.h>
#include <medsearch/eval.h>
#include <medsearch/index.h>

namespace medsearch {
namespace {

const Index& pdq_index() {
  static std::unique_ptr<Index> index = [] {
    auto docs = io::read_corpus(MEDSEARCH_SHARED_DATA "/nci-pdq", "nci-pdq", {}, nullptr);
    if (!docs) {
      std::fprintf(stderr, "%s\n", docs.status().to_string().c_str());
      std::exit(1);
    }
    auto built = Index::build(std::move(*docs), BuildOptions{});
    if (!built) std::exit(1);
    return std::move(built).value();
  }();
  return *index;
}

std::vector<std::string> query_set(const char* name) {
  std::string file = std::string(MEDSEARCH_SHARED_DATA) + "/" + name;
  auto q = eval::read_queries(file);
  if (!q) {
    std::fprintf(stderr, "%s\n", q.status().to_string().c_str());
    std::exit(1);
  }
  std::vector<std::string> out;
  for (const auto& x : *q) {
    out.push_back(x.text);
    if (out.size() == 2000) break;
  }
  return out;
}

void run_queries(benchmark::State& state, const std::vector<std::string>& queries, ResultLevel level) {
  const Index& index = pdq_index();
  SearchOptions o;
  o.k = 10;
  o.level = level;
  o.explain = false;  // ranked passages only, as the peers return them
  std::vector<double> micros;
  size_t i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto hits = index.search(queries[i++ % queries.size()], o);
    benchmark::DoNotOptimize(hits);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  state.counters["qps"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["passages"] = index.num_passages();
}

void BM_Bm25_MedQuAD_Passage(benchmark::State& state) {
  static const auto q = query_set("medquad/queries.jsonl");
  run_queries(state, q, ResultLevel::kPassage);
}
void BM_Bm25_MedQuAD_Document(benchmark::State& state) {
  static const auto q = query_set("medquad/queries.jsonl");
  run_queries(state, q, ResultLevel::kDocument);
}
void BM_Bm25_SciFact_Passage(benchmark::State& state) {
  static const auto q = query_set("scifact/queries.train.jsonl");
  run_queries(state, q, ResultLevel::kPassage);
}
BENCHMARK(BM_Bm25_MedQuAD_Passage)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_Bm25_MedQuAD_Document)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_Bm25_SciFact_Passage)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_Bm25_Build(benchmark::State& state) {
  auto docs = io::read_corpus(MEDSEARCH_SHARED_DATA "/nci-pdq", "nci-pdq", {}, nullptr);
  for (auto _ : state) {
    auto copy = *docs;
    auto built = Index::build(std::move(copy), BuildOptions{});
    benchmark::DoNotOptimize(built);
  }
}
BENCHMARK(BM_Bm25_Build)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace medsearch
