// Seeded, structured test data for the vector tests and benchmarks: points
// around random cluster centres ("not completely random but still
// challenging", as faiss's get_dataset_2 puts it).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <medsearch/vector_types.h>

namespace medsearch::vector::testing {

struct Dataset {
  size_t dim = 0;
  std::vector<float> base, queries;
  size_t n() const { return base.size() / dim; }
  size_t nq() const { return queries.size() / dim; }
  MatrixView base_view() const { return {base.data(), n(), dim, dim}; }
  MatrixView query_view() const { return {queries.data(), nq(), dim, dim}; }
};

// n independent standard normal floats (seeded).
inline std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(n);
  for (float& v : out) v = normal(rng);
  return out;
}

// n base rows and nq query rows from `clusters` Gaussian clusters.
// normalize: unit rows (for inner product / cosine).
inline Dataset clustered(size_t n, size_t nq, size_t dim, size_t clusters, bool normalize, uint32_t seed = 1234) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<size_t> pick(0, clusters - 1);
  std::vector<float> centres(clusters * dim);
  for (auto& c : centres) c = g(rng);
  auto fill = [&](std::vector<float>& out, size_t rows) {
    out.resize(rows * dim);
    for (size_t i = 0; i < rows; ++i) {
      const float* c = centres.data() + pick(rng) * dim;
      float* r = out.data() + i * dim;
      double norm = 0;
      for (size_t j = 0; j < dim; ++j) {
        r[j] = c[j] + 0.6f * g(rng);
        norm += double{r[j]} * r[j];
      }
      if (normalize) {
        const float inv = static_cast<float>(1.0 / std::sqrt(norm));
        for (size_t j = 0; j < dim; ++j) r[j] *= inv;
      }
    }
  };
  Dataset d;
  d.dim = dim;
  fill(d.base, n);
  fill(d.queries, nq);
  return d;
}

// |approx ∩ truth| / |truth| over all queries (ids compared as sets; empty
// truth slots do not count). 1.0 when the truth is empty.
inline double recall_at_k(const std::vector<DocId>& approx, const std::vector<DocId>& truth, size_t nq, size_t k) {
  size_t hit = 0, total = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::set<DocId> t(truth.begin() + q * k, truth.begin() + (q + 1) * k);
    t.erase(kInvalidDocId);
    total += t.size();
    for (size_t i = 0; i < k; ++i) hit += t.count(approx[q * k + i]);
  }
  return total ? static_cast<double>(hit) / static_cast<double>(total) : 1.0;
}

}  // namespace medsearch::vector::testing
