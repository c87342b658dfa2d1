// The query pipeline on the default corpus index (NCI PDQ with passage
// vectors, as tools/main.sh builds it), single thread unless stated:
//   BM_Pipeline/<mode>/threads:<n>  from the query vector to the top 10
//                          (everything but the encoder), one or two threads
//                          searching at once: p50/p90/p99/p999 counters (us);
//   BM_EncodeQuery         the encoder's time for one query text;
//   BM_RerankRepeatedText  from text, queries seen before (the vector comes
//                          from the index's cache: no second encoder run);
//   BM_RerankBatch/<threads>  search_batch throughput (queries per second).
// Queries: 500 MedQuAD consumer questions and the hand-written guideline
// questions, embedded once before timing.
//
//   MEDSEARCH_BENCH_INDEX=DIR build/bin/medsearch_bench --benchmark_filter=Pipeline|Rerank|Encode
#include <benchmark/benchmark.h>

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <medsearch/encoder.h>
#include <medsearch/eval.h>
#include <medsearch/index.h>

namespace medsearch {
namespace {

struct Setup {
  std::unique_ptr<Index> index;
  std::shared_ptr<const embed::BertEncoder> encoder;
  std::vector<std::string> queries;
  std::vector<std::vector<float>> vectors;
};

[[noreturn]] void die(const Status& st) {
  std::fprintf(stderr, "pipeline bench: %s\n", st.to_string().c_str());
  std::exit(1);
}

const Setup& setup() {
  static Setup s = [] {
    Setup s;
    const char* env = std::getenv("MEDSEARCH_BENCH_INDEX");
    const std::string home = std::getenv("HOME") ? std::getenv("HOME") : ".";
    const std::string dir = env ? env : home + "/.cache/medsearch/indexes/nci-pdq";
    auto index = Index::load(dir);
    if (!index) die(Status(index.status().code(), index.status().message() + " (run tools/main.sh first, or set MEDSEARCH_BENCH_INDEX)"));
    if (!(*index)->has_vectors()) die(Status::invalid_argument(dir + " has no passage vectors"));
    auto precision = embed::default_precision();
    if (!precision) die(precision.status());
    auto encoder = embed::BertEncoder::load(embed::default_model_dir(), *precision);
    if (!encoder) die(encoder.status());
    s.encoder = std::move(encoder).value();
    if (Status st = (*index)->attach_embedder(s.encoder); !st) die(st);
    s.index = std::move(index).value();
    auto medquad = eval::read_queries(MEDSEARCH_SHARED_DATA "/medquad/queries.jsonl");
    if (!medquad) die(medquad.status());
    for (size_t i = 0; i < medquad->size() && s.queries.size() < 500; i += 31) s.queries.push_back((*medquad)[i].text);
    std::ifstream pdq(MEDSEARCH_SOURCE_DIR "/data/eval/pdq-questions.jsonl");
    for (std::string line; std::getline(pdq, line);) {
      const size_t a = line.find("\"query\": \"") + 10;
      s.queries.push_back(line.substr(a, line.find('"', a) - a));
    }
    for (const auto& q : s.queries) {
      auto v = s.index->snapshot()->embed_query(q);  // also warms the index's query cache
      if (!v) die(v.status());
      s.vectors.push_back(std::move(v).value());
    }
    return s;
  }();
  return s;
}

// Latency percentiles of this thread's queries (averaged over threads when a
// benchmark runs on several), and, with MEDSEARCH_BENCH_SAMPLES=DIR, every
// latency in DIR/<name>_threads_<n>[.thread<i>].txt for histograms.
void report(benchmark::State& state, std::vector<double>* micros, std::string name) {
  if (micros->empty()) return;
  if (const char* dir = std::getenv("MEDSEARCH_BENCH_SAMPLES")) {
    name += "_threads_" + std::to_string(state.threads());
    if (state.threads() > 1) name += ".thread" + std::to_string(state.thread_index());
    std::ofstream out(std::string(dir) + "/" + name + ".txt");
    for (double us : *micros) out << us << '\n';
  }
  std::sort(micros->begin(), micros->end());
  const size_t n = micros->size();
  auto at = [&](double q) { return (*micros)[std::min(n - 1, static_cast<size_t>(q * n))]; };
  const auto avg = benchmark::Counter::kAvgThreads;
  state.counters["p50_us"] = benchmark::Counter(at(0.5), avg);
  state.counters["p90_us"] = benchmark::Counter(at(0.9), avg);
  state.counters["p99_us"] = benchmark::Counter(at(0.99), avg);
  state.counters["p999_us"] = benchmark::Counter(at(0.999), avg);
  state.counters["qps"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Pipeline(benchmark::State& state) {
  const Setup& s = setup();
  const auto mode = static_cast<SearchMode>(state.range(0));
  SearchOptions o;
  o.k = 10;
  o.mode = mode;
  std::vector<double> micros;
  micros.reserve(1 << 16);
  tbb::task_arena one(1);  // one thread per caller: the two retrievers run one after the other
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;  // threads start at different queries
  one.execute([&] {
    for (auto _ : state) {
      const size_t q = i++ % s.queries.size();
      if (mode != SearchMode::kBm25) o.query_vector = s.vectors[q];
      const auto t0 = std::chrono::steady_clock::now();
      auto r = s.index->search(s.queries[q], o);
      benchmark::DoNotOptimize(r);
      micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
  });
  report(state, &micros, "BM_Pipeline_mode_" + std::to_string(state.range(0)));
}
BENCHMARK(BM_Pipeline)
    ->ArgName("mode")
    ->Arg(static_cast<int>(SearchMode::kBm25))
    ->Arg(static_cast<int>(SearchMode::kDense))
    ->Arg(static_cast<int>(SearchMode::kHybrid))
    ->Arg(static_cast<int>(SearchMode::kRerank))
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0)
    ->Threads(1)
    ->Threads(2)  // both cores busy: each thread's latency while the other also searches
    ->UseRealTime();

void BM_EncodeQuery(benchmark::State& state) {
  const Setup& s = setup();
  std::vector<float> v(s.encoder->dim());
  std::vector<double> micros;
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view text[] = {s.queries[i++ % s.queries.size()]};
    const auto t0 = std::chrono::steady_clock::now();
    if (Status st = s.encoder->embed(text, embed::TextKind::kQuery, v); !st) die(st);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  report(state, &micros, "BM_EncodeQuery");
}
BENCHMARK(BM_EncodeQuery)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_RerankRepeatedText(benchmark::State& state) {
  const Setup& s = setup();
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  std::vector<double> micros;
  tbb::task_arena one(1);
  size_t i = 0;
  one.execute([&] {
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = s.index->search(s.queries[i++ % s.queries.size()], o);
      benchmark::DoNotOptimize(r);
      micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
  });
  report(state, &micros, "BM_RerankRepeatedText");
}
BENCHMARK(BM_RerankRepeatedText)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_RerankBatch(benchmark::State& state) {
  const Setup& s = setup();
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  tbb::task_arena arena(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    arena.execute([&] {
      auto r = s.index->search_batch(s.queries, o);  // vectors from the cache
      benchmark::DoNotOptimize(r);
    });
  }
  state.counters["qps"] = benchmark::Counter(static_cast<double>(state.iterations() * s.queries.size()),
                                             benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RerankBatch)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace
}  // namespace medsearch
