// Distance kernels at every ISA level this CPU has: ns per distance and GB/s
// of vector data streamed (a query against 2,048 rows; in cache up to
// dim ~256 for float32, memory-bound beyond).
//
//   build/bin/medsearch_bench --benchmark_filter=BM_Kernel
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/vector/kernels/distance.h"

namespace medsearch::vector::kernels {
namespace {

constexpr size_t kRows = 2048;

enum Op { kDotF32, kL2F32, kDotI8, kL2I8 };

void BM_Kernel(benchmark::State& state) {
  const auto level = static_cast<IsaLevel>(state.range(0));
  const Op op = static_cast<Op>(state.range(1));
  const size_t dim = static_cast<size_t>(state.range(2));
  const DistanceKernels* k = kernels_for(level);
  if (!k) {
    state.SkipWithError("ISA level not supported by this CPU");
    return;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<int> u(-127, 127);
  std::vector<float> qf(dim), rf(kRows * dim);
  std::vector<int8_t> qi(dim), ri(kRows * dim);
  for (auto& x : qf) x = g(rng);
  for (auto& x : rf) x = g(rng);
  for (auto& x : qi) x = static_cast<int8_t>(u(rng));
  for (auto& x : ri) x = static_cast<int8_t>(u(rng));
  float acc = 0;
  for (auto _ : state) {
    for (size_t r = 0; r < kRows; ++r) {
      switch (op) {
        case kDotF32: acc += k->dot_f32(qf.data(), rf.data() + r * dim, dim); break;
        case kL2F32: acc += k->l2sq_f32(qf.data(), rf.data() + r * dim, dim); break;
        case kDotI8: acc += static_cast<float>(k->dot_i8(qi.data(), ri.data() + r * dim, dim)); break;
        case kL2I8: acc += static_cast<float>(k->l2sq_i8(qi.data(), ri.data() + r * dim, dim)); break;
      }
    }
    benchmark::DoNotOptimize(acc);
  }
  const size_t elem = (op == kDotF32 || op == kL2F32) ? sizeof(float) : 1;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRows * dim * elem));
  state.counters["ns_per_distance"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kRows), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  static const char* kOps[] = {"dot_f32", "l2sq_f32", "dot_i8", "l2sq_i8"};
  state.SetLabel(std::string(isa_name(level)) + "/" + kOps[op]);
}

void kernel_args(benchmark::internal::Benchmark* b) {
  for (int level = 0; level <= 3; ++level)
    for (int op = 0; op < 4; ++op)
      for (int dim : {64, 100, 384, 768}) b->Args({level, op, dim});
  b->ArgNames({"isa", "op", "dim"});
}
BENCHMARK(BM_Kernel)->Apply(kernel_args);

}  // namespace
}  // namespace medsearch::vector::kernels
