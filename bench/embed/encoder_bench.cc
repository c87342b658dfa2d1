// BertEncoder throughput against the machine's Eigen SGEMM rate.
//
//  BM_EigenSgemm/m/n/k      single-threaded C = A W^T at the encoder's GEMM
//                           shapes (the table of the encoder's level, as
//                           cpu_level() chose it); counter GFLOPs = the roofline.
//  BM_Encode/tokens/threads passages of SciFact cut to at most `tokens` tokens
//                           (whole words, so a little under; the counters use
//                           the real counts), about 8,192 tokens per call,
//                           embed() in a task_arena of `threads` threads.
//                           Counters: passages_per_s, tokens_per_s, GFLOPs (from
//                           BertEncoder::flops), roofline_ratio = GFLOPs /
//                           (threads x the best single-thread SGEMM GFLOPs
//                           at the FFN shapes, M = 512..4096), by the wall
//                           clock; and
//                           cpu_GFLOPs / cpu_roofline_ratio per second of the
//                           process's CPU time (robust on a shared machine).
//  BM_SingleText/tokens     one text of that many tokens per call, embed_ids
//                           (no tokenization), the caller's default arena
//                           (up to 48 tokens the GEMMs split their columns
//                           across its threads); GFLOPs by the wall clock.
//  BM_Bf16Gemm/m/n/k        the same shapes through the AMX bfloat16 GEMM of
//                           Precision::kBFloat16 (single-threaded).
//  BM_Load                  BertEncoder::load of the cached model.
//
// BM_Encode, BM_SingleText and BM_QueryLatency take a last argument bf16:
// 0 = float32, 1 = bfloat16 (skipped without AMX-BF16). The roofline stays
// the float32 SGEMM rate, so a bfloat16 ratio above 1 is what lower precision
// buys.
//  BM_QueryLatency          one PubMedQA question (~20 tokens) per call, in an
//                           arena of `threads`; p50_us / p99_us.
//
// bench/embed/reference_speed.py measures sentence-transformers on the same
// texts (same cut, same order) for the ratio.
#include <benchmark/benchmark.h>
#include <simdjson.h>
#include <tbb/task_arena.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <medsearch/encoder.h>

#include "core/embed/kernels/bf16_gemm.h"
#include "core/embed/kernels/dense.h"

namespace medsearch::embed {
namespace {

// The encoder's float32 GEMM (C = A W^T), at the level the encoder runs.
void sgemm(int m, int n, int k, const float* a, const float* w, float* c) {
  kernels::dense_kernels().gemm_nt(size_t(m), size_t(n), size_t(k), a, w, c);
}

constexpr size_t kTokensPerCall = 8192;

// The encoder at a precision, loaded once; nullptr (and a message in *why)
// when this machine cannot run it.
const BertEncoder* encoder_or_null(Precision p, std::string* why = nullptr) {
  static std::unique_ptr<BertEncoder> encoders[2];
  static std::string reasons[2];
  static std::once_flag once[2];
  const int i = static_cast<int>(p);
  std::call_once(once[i], [&] {
    auto r = BertEncoder::load(default_model_dir(), p);
    if (r) {
      encoders[i] = std::move(r).value();
    } else if (p == Precision::kFloat32) {
      std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
      std::exit(1);
    } else {
      reasons[i] = r.status().message();
    }
  });
  if (why != nullptr) *why = reasons[i];
  return encoders[i].get();
}

const BertEncoder& encoder() { return *encoder_or_null(Precision::kFloat32); }

// The benchmarks' last argument: 0 = float32, 1 = bfloat16 (skipped where the
// CPU has no AMX-BF16).
const BertEncoder* encoder_for(benchmark::State& state, int arg) {
  const Precision p = state.range(arg) != 0 ? Precision::kBFloat16 : Precision::kFloat32;
  std::string why;
  const BertEncoder* enc = encoder_or_null(p, &why);
  if (enc == nullptr) state.SkipWithError(why.c_str());
  return enc;
}

std::vector<std::string> read_texts(const std::string& file, size_t limit) {
  std::vector<std::string> out;
  simdjson::dom::parser parser;
  simdjson::dom::document_stream stream;
  simdjson::padded_string json;
  if (simdjson::padded_string::load(file).get(json) || parser.parse_many(json).get(stream)) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    std::exit(1);
  }
  for (auto doc : stream) {
    std::string_view text;
    if (doc["text"].get_string().get(text)) continue;
    out.emplace_back(text);
    if (out.size() == limit) break;
  }
  return out;
}

// The longest whole-word prefix of `text` with at most `max_tokens` tokens
// (with [CLS]/[SEP]), or "" when the whole text has fewer than max_tokens.
// reference_speed.py makes the same cut with Hugging Face tokenizers.
std::string cut_to_tokens(const std::string& text, size_t max_tokens) {
  const WordPieceTokenizer& tok = encoder().tokenizer();
  if (tok.encode(text, 100000).size() < max_tokens) return "";
  std::vector<size_t> ends;  // end offsets of whitespace-separated words
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ' ' && (i + 1 == text.size() || text[i + 1] == ' ')) ends.push_back(i + 1);
  }
  size_t lo = 0, hi = ends.size();  // invariant: prefix of lo words fits
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (tok.encode(std::string_view(text).substr(0, ends[mid - 1]), 100000).size() <= max_tokens) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo == 0 ? "" : text.substr(0, ends[lo - 1]);
}

// SciFact abstracts cut to `tokens`, in corpus order, about kTokensPerCall in all.
const std::vector<std::string>& passages(size_t tokens) {
  static std::map<size_t, std::vector<std::string>> cache;
  auto& out = cache[tokens];
  if (out.empty()) {
    static const auto corpus = read_texts(MEDSEARCH_SHARED_DATA "/scifact/corpus.jsonl", 4000);
    const size_t want = kTokensPerCall / tokens;
    for (const auto& text : corpus) {
      std::string cut = cut_to_tokens(text, tokens);
      if (!cut.empty()) out.push_back(std::move(cut));
      if (out.size() == want) break;
    }
  }
  return out;
}

double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Single-thread SGEMM rate per second of this thread's CPU time, so that a
// busy machine (other processes taking turns on our core) does not lower it.
double sgemm_gflops(int m, int n, int k, double seconds) {
  std::vector<float> a(size_t(m) * k), b(size_t(k) * n), c(size_t(m) * n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  sgemm(m, n, k, a.data(), b.data(), c.data());  // warm-up
  size_t reps = 0;
  const double t0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  double elapsed = 0;
  while (elapsed < seconds) {
    sgemm(m, n, k, a.data(), b.data(), c.data());
    ++reps;
    elapsed = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
  }
  return 2.0 * m * n * k * reps / elapsed / 1e9;
}

// The roofline: the best single-thread SGEMM rate at the encoder's dense
// shapes (FFN in and out at the batch sizes the encoder uses and bigger),
// measured once.
double roofline_gflops() {
  static const double rate = [] {
    double best = 0;
    for (int m : {512, 1024, 4096}) {
      best = std::max(best, sgemm_gflops(m, 1536, 384, 0.5));
      best = std::max(best, sgemm_gflops(m, 384, 1536, 0.5));
    }
    return best;
  }();
  return rate;
}

void BM_EigenSgemm(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)),
            k = static_cast<int>(state.range(2));
  std::vector<float> a(size_t(m) * k, 0.5f), b(size_t(k) * n, 0.25f), c(size_t(m) * n);
  for (auto _ : state) {
    sgemm(m, n, k, a.data(), b.data(), c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EigenSgemm)
    ->Args({4096, 1536, 384})   // FFN in
    ->Args({4096, 384, 1536})   // FFN out
    ->Args({4096, 1152, 384})   // fused QKV
    ->Args({4096, 384, 384})    // attention output
    ->Args({1024, 1536, 384})   // batches of 512-1024 tokens, as the encoder runs them
    ->Args({1024, 384, 1536})
    ->Args({512, 1536, 384})
    ->Args({512, 384, 1536})
    ->Args({512, 1152, 384})
    ->Args({20, 1536, 384})     // a query
    ->Unit(benchmark::kMillisecond);  // single-threaded: rates per CPU second

// The AMX bfloat16 GEMM of Precision::kBFloat16 (C += A W^T, A rounded on
// the way in), single-threaded, at the same shapes.
void BM_Bf16Gemm(benchmark::State& state) {
  if (!kernels::amx_bf16_available()) {
    state.SkipWithError(kernels::amx_bf16_unavailable_reason());
    return;
  }
  const size_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> a(m * k, 0.5f), w(n * k, 0.25f), c(m * n);
  const kernels::Bf16PackedWeights packed(w.data(), n, k);
  std::vector<uint16_t> scratch;
  for (auto _ : state) {
    kernels::bf16_gemm_add(m, a.data(), packed, c.data(), n, scratch);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Bf16Gemm)
    ->Args({512, 1536, 384})
    ->Args({512, 384, 1536})
    ->Args({512, 1152, 384})
    ->Args({512, 384, 384})
    ->Args({20, 1536, 384})
    ->Unit(benchmark::kMicrosecond);

void BM_Encode(benchmark::State& state) {
  const size_t tokens = static_cast<size_t>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const auto& texts = passages(tokens);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  const BertEncoder* found = encoder_for(state, 2);
  if (found == nullptr) return;
  const BertEncoder& enc = *found;
  double flops = 0, total_tokens = 0;
  for (const auto& t : texts) {
    const size_t n = enc.tokenizer().encode(t, enc.config().max_seq_length).size();
    total_tokens += n;
    flops += enc.flops(static_cast<uint32_t>(n));
  }
  const double roofline = roofline_gflops();
  std::vector<float> out(texts.size() * enc.dim());
  tbb::task_arena arena(threads);
  double cpu = 0, wall = 0;
  for (auto _ : state) {
    const double c0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    const auto t0 = std::chrono::steady_clock::now();
    arena.execute([&] {
      if (!enc.embed(views, TextKind::kPassage, out).is_ok()) state.SkipWithError("embed failed");
    });
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu += cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    benchmark::DoNotOptimize(out.data());
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["passages_per_s"] = n * texts.size() / wall;
  state.counters["tokens_per_s"] = n * total_tokens / wall;
  state.counters["GFLOPs"] = n * flops / 1e9 / wall;
  state.counters["roofline_ratio"] = n * flops / 1e9 / wall / (threads * roofline);
  // The same per second of CPU time the process used (all its threads): an
  // efficiency that holds up when other processes share the cores, and
  // comparable with sgemm_GFLOPs (also per CPU second).
  state.counters["cpu_GFLOPs"] = n * flops / 1e9 / cpu;
  state.counters["cpu_roofline_ratio"] = n * flops / 1e9 / cpu / roofline;
  state.counters["sgemm_GFLOPs"] = roofline;
  state.counters["avg_tokens"] = total_tokens / texts.size();
}
BENCHMARK(BM_Encode)
    ->ArgNames({"tokens", "threads", "bf16"})
    ->ArgsProduct({{16, 128, 256}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

void BM_QueryLatency(benchmark::State& state) {
  static const auto queries = read_texts(MEDSEARCH_SHARED_DATA "/pubmedqa/queries.jsonl", 500);
  const BertEncoder* found = encoder_for(state, 0);
  if (found == nullptr) return;
  const BertEncoder& enc = *found;
  tbb::task_arena arena(static_cast<int>(state.range(1)));
  std::vector<float> out(enc.dim());
  std::vector<double> micros;
  double total_tokens = 0;
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view q = queries[i++ % queries.size()];
    const auto t0 = std::chrono::steady_clock::now();
    bool ok = false;
    arena.execute([&] { ok = enc.embed(std::span(&q, 1), TextKind::kQuery, out).is_ok(); });
    if (!ok) state.SkipWithError("embed failed");
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    benchmark::DoNotOptimize(out.data());
    state.PauseTiming();
    total_tokens += enc.tokenizer().encode(q, enc.config().max_seq_length).size();
    state.ResumeTiming();
  }
  std::sort(micros.begin(), micros.end());
  state.counters["p50_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  state.counters["avg_tokens"] = total_tokens / static_cast<double>(state.iterations());
}
// One text of `tokens` tokens per call (no tokenization): the latency of
// a single short input, where the GEMMs have few rows.
void BM_SingleText(benchmark::State& state) {
  const auto tokens = static_cast<size_t>(state.range(0));
  const BertEncoder* found = encoder_for(state, 1);
  if (found == nullptr) return;
  const BertEncoder& enc = *found;
  const std::vector<std::vector<int32_t>> ids = {enc.tokenizer().encode(passages(256)[0], tokens)};
  std::vector<float> out(enc.dim());
  for (auto _ : state) {
    if (!enc.embed_ids(ids, out).is_ok()) state.SkipWithError("embed failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(enc.flops(static_cast<uint32_t>(tokens)) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SingleText)
    ->ArgNames({"tokens", "bf16"})
    ->ArgsProduct({{8, 24, 48, 64, 128}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Load and verify the model (read, checksum, parse, lay out the weights).
void BM_Load(benchmark::State& state) {
  for (auto _ : state) {
    auto r = BertEncoder::load(default_model_dir());
    if (!r) state.SkipWithError(r.status().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

BENCHMARK(BM_QueryLatency)->ArgNames({"bf16", "threads"})->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace medsearch::embed
