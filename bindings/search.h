// search.h (bindings): what Index.search and the sharded search share: the
// pipeline options, the Hit objects, the options from Python arguments.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <medsearch/index.h>

#include "bindings/status.h"

namespace medsearch::bindings {

namespace py = pybind11;

// The query a hit came from, shared by the hits of one search, for explain().
struct QueryInfo {
  std::string text;
  std::vector<float> vector;  // the caller's query vector, if given
  bool reranked = false;      // scores are the reranker's (features explain them)
};

// Options of the hybrid and rerank pipeline (medsearch.Pipeline in Python).
struct PipelineArgs {
  std::string fusion = "convex";
  std::optional<float> bm25_weight;
  uint32_t candidates = SearchOptions{}.candidates;
  uint32_t rerank_depth = SearchOptions{}.rerank_depth;
  uint32_t max_per_doc = SearchOptions{}.max_per_doc;
  float mmr = SearchOptions{}.mmr;

  void apply(SearchOptions* o) const {
    o->fusion = unwrap(parse_fusion(fusion));
    if (bm25_weight) o->bm25_weight = *bm25_weight;
    // The core reads 0 as "k"; a Pipeline asks for a number of candidates.
    if (candidates < 1) throw py::value_error("candidates must be at least 1");
    o->candidates = candidates;
    o->rerank_depth = rerank_depth;
    o->max_per_doc = max_per_doc;
    o->mmr = mmr;
    o->explain = o->mode == SearchMode::kHybrid || o->mode == SearchMode::kRerank;  // features come free there
  }
};

// A hit holds the snapshot it was found in (so its passage number, text and
// provenance stay valid whatever the index does meanwhile) and materialises
// text and metadata on first access.
struct PyHit {
  std::shared_ptr<const Snapshot> snapshot;
  mutable Hit hit;
  std::shared_ptr<const QueryInfo> query;  // null for Index.passage() and sharded hits
  std::shared_ptr<const rank::Reranker> reranker;  // that scored it (contributions)
  mutable std::shared_ptr<const Passage> materialized;
  mutable bool explained = false;
  const Passage& full() const {
    if (!materialized) materialized = std::make_shared<const Passage>(snapshot->passage(hit.passage));
    return *materialized;
  }
  const Hit& parts() const {
    if (!explained && query && snapshot) {
      const Hit e = snapshot->explain(query->text, hit.passage, query->vector);
      hit.body_score = e.body_score;
      hit.heading_score = e.heading_score;
      hit.dense_score = e.dense_score;
    }
    explained = true;
    return hit;
  }
};

// A medsearch.Results (a list of hits with .coverage and .mode; python/medsearch/_results.py).
py::object results(std::vector<PyHit> hits, float coverage, const char* mode);

// SearchOptions from search()'s arguments; k is clamped to num_passages.
SearchOptions make_options(int64_t k, uint32_t num_passages, const std::optional<py::dict>& filters,
                           const std::string& level);

// Index.build()'s work (bindings/index.cc); `shard` {i, n}: only the
// documents of shard i of n (shard_of()), with their positions in the
// corpora; `threads` > 0: on that many threads (else all).
std::pair<std::shared_ptr<Index>, std::vector<uint64_t>> build_index(
    const py::object& corpora, bool skip_malformed, uint32_t max_tokens, float k1, float b, float heading_weight,
    const std::optional<py::function>& progress, const py::object& encoder,
    std::optional<std::pair<uint32_t, uint32_t>> shard, uint32_t exact_below, uint32_t threads);

}  // namespace medsearch::bindings
