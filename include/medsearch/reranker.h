// reranker.h: the learned second stage: scores pool candidates from their
// features (below; computed by core/rank/features.cc) and says how likely the top hits answer the query.
//
// A model is a small JSON file written by tools/train_reranker.py:
//   {"format": "medsearch-reranker", "version": 1, "name": ...,
//    "features": [names, in feature_names() order],
//    "model": {"type": "linear", "mean": [...], "scale": [...], "weights": [...], "bias": b}
//          or {"type": "trees", "trees": [{"feature": [...], "threshold": [...], "left": [...],
//              "right": [...], "value": [...]}, ...], "bias": b,
//              "terms": [{"feature": name, "weight": w}, ...]},
//    "coverage": {"mean": [...], "scale": [...], "weights": [...], "bias": b}, ...}
// Linear: score = bias + sum_i weights[i] * (x[i] - mean[i]) / scale[i].
// Trees (gradient-boosted, e.g. LightGBM lambdarank converted by the tool):
// score = bias + sum of the trees' leaf values + sum of the optional linear
// terms' weight x feature (a prior the trees were boosted from, e.g. the
// standardised cosine: the trees then learn corrections to the dense order). Split node n (0 = root) sends
// x to left[n] when x[feature[n]] <= threshold[n], else to right[n]; a child
// c < 0 is leaf ~c with value leaf_value[~c]; node_value[n] is the model's
// expected score below node n (for contributions). A tree without splits
// has one leaf.
// Coverage: a logistic model over the response features below, calibrated on
// development queries: P(a passage that answers the question is among the top
// kCoverageTop hits).
//
// The model built into the library (data/reranker/) is used unless another is
// loaded. Thread safety: immutable after construction; share freely.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/status.h>

namespace medsearch::rank {

// What the reranker knows about a (query, passage) pair: the features of
// core/rank/features.cc. The names are part of a model file: a model trained
// on another feature set is refused at load.
enum Feature : uint32_t {
  kBm25,            // BM25, body + weighted heading field
  kBm25Rel,         // BM25 / the pool's best BM25
  kBodyIdfNorm,     // body BM25 / the query's summed body idf
  kHeadingIdfNorm,  // heading BM25 / the query's summed heading idf
  kDense,           // cosine of query and passage vectors
  kDenseGap,        // cosine - the pool's best cosine
  kBm25Rank,        // log2(2 + rank in the BM25 list), rank = list size when absent
  kDenseRank,       // log2(2 + rank in the dense list)
  kCoverBody,       // idf-weighted share of the query's terms found in the body
  kCoverHeading,    // ... in the heading path / title
  kCoverAny,        // ... in either
  kLogLength,       // log(1 + body length in terms)
  kFirstPassage,    // 1 for the first passage of its document
  kLogOrdinal,      // log(1 + passage ordinal in its document)
  kDocSupport,      // log(1 + passages of the same document in the pool)
  kDocDenseGap,     // the document's best cosine in the pool - the pool's best
  kRrf,             // kRrfK (60) * reciprocal rank fusion score of the two lists (fusion.h)
  kQueryTerms,      // log(1 + analysed query terms known to the index)
  // Section and audience: what the corpus's structure says.
  kSectionSupport,   // log(1 + passages of the same section (document and heading path) in the pool)
  kSectionDenseGap,  // the section's best cosine in the pool - the pool's best
  kAudienceDense,    // (query . audience direction) x (+1 patient passage, -1 health professional, 0 neither)
  // Dense-led term weighting: a query term counts as much as its share of the
  // dense top kDenseLedDepth passages that contain it, so words the dense side
  // finds off-topic ("stops working", "my dad") do not drive lexical matches.
  kBm25DenseLed,     // BM25 with each query term weighted by its dense support
  kBm25DenseLedRel,  // kBm25DenseLed / the pool's best
  kCoverDenseLed,    // the share of the query's idf x dense-support mass found in the passage
  kHeadingCommonness,  // log(1 + documents with the passage's own heading): "Key Points", "Follow-up care
                       // may be needed." are on dozens of pages, "Treatment of Recurrent Mesothelioma" on one
  kPhraseMatch,        // share of the query's adjacent word pairs found as a phrase in the passage or its headings
  kDenseZ,             // the cosine standardised over the pool: (cosine - mean) / standard deviation
  kNumFeatures
};

std::span<const std::string_view> feature_names();

using FeatureVector = std::array<float, kNumFeatures>;

// One candidate of the pool.
struct Candidate {
  uint32_t passage = 0;
  FeatureVector features{};
  float body = 0;     // BM25 of the body field
  float heading = 0;  // BM25 of the heading field, before its weight
  float dense = 0;    // cosine (0 without vectors)
  float score = 0;    // filled by fusion / the reranker
};

// How many of the top hits the coverage probability speaks for.
inline constexpr uint32_t kCoverageTop = 3;

// What a response's coverage probability is computed from.
enum CoverageFeature : uint32_t {
  kTopScore,         // reranker score of the top passage
  kMargin,           // top score - second score (0 with one hit)
  kTopDense,         // cosine of the top passage
  kTopCoverAny,      // the top passage's query coverage
  kTopBodyIdfNorm,   // the top passage's body BM25 / query idf mass
  kUnknownShare,     // share of the query's analysed tokens the index does not know
  kTopCoverDenseLed, // the top passage's dense-led query coverage (features.h)
  kBestDense,        // the best cosine in the pool
  kNumCoverageFeatures
};
std::span<const std::string_view> coverage_feature_names();
using CoverageVector = std::array<float, kNumCoverageFeatures>;

class Reranker {
 public:
  // Parses a model; names the first problem (wrong format, feature set,
  // lengths, malformed trees).
  static Result<std::shared_ptr<const Reranker>> parse(std::string_view json);
  static Result<std::shared_ptr<const Reranker>> load(const std::filesystem::path& file);
  // The model compiled into the library (data/reranker/reranker-v1.json).
  static std::shared_ptr<const Reranker> builtin();

  float score(const FeatureVector& x) const;
  // score() of many rows: out[i] = score(xs[i]). Trees of at most 64 leaves
  // (LightGBM's default is 31) are scored by QuickScorer (see below), others
  // walked tree by tree over blocks of rows, branch-free. Both find the same
  // leaves and add them in tree order: the same floats.
  void score_batch(std::span<const FeatureVector> xs, std::span<float> out) const;
  // Each feature's part of score(x) (linear: its term; trees: the change of
  // the expected score along the decision path, Saabas' attribution); the
  // parts plus bias() sum to score(x).
  FeatureVector contributions(const FeatureVector& x) const;
  // The expected score the contributions are relative to.
  float bias() const { return base_; }
  // P(one of the top kCoverageTop hits answers), from the response's coverage features.
  float coverage(const CoverageVector& r) const;
  const std::string& name() const { return name_; }

 private:
  struct Tree {
    std::vector<int32_t> feature, left, right;  // per split node
    std::vector<float> threshold;
    std::vector<float> node_value;  // per split node: the expected score below it
    std::vector<float> leaf_value;
  };
  std::string name_;
  bool linear_ = true;
  std::array<float, kNumFeatures> mean_{}, inv_scale_{}, weights_{};
  std::vector<Tree> trees_;
  std::vector<std::pair<uint32_t, float>> terms_;  // trees: linear terms (feature, weight)
  // The trees flattened for score_batch(): leaves are nodes that lead to
  // themselves (threshold +inf), so every walk takes `depth` steps of
  // next[x[feature] > threshold] with no branch.
  struct FlatNode {
    float threshold;
    uint32_t feature;
    uint32_t next[2];  // node indices within the tree
    float value;       // leaves: the leaf value
  };
  struct FlatTree {
    uint32_t first;  // index of its root in flat_nodes_
    uint32_t depth;  // longest root-to-leaf path, in splits
  };
  std::vector<FlatNode> flat_nodes_;
  std::vector<FlatTree> flat_trees_;
  void flatten();
  void walk(std::span<const FeatureVector> xs, std::span<float> out) const;  // the flat trees, bias_ + leaves
  // QuickScorer (Lucchese et al., SIGIR 2015): a tree's exit leaf is the
  // leftmost leaf not in the left subtree of a split the row goes right at
  // (x[feature] > threshold). So: start each tree's mask of leaves (left to
  // right, one bit each) full, and for each feature clear the left subtrees
  // of its splits with threshold < x[feature], found by one scan of its
  // splits in ascending threshold order; the exit leaf is then the lowest bit
  // set. No chain of dependent loads; with trees of at most 16 leaves (the
  // built-in model has 15) score_quick() does 8 rows at once, a 16-bit lane
  // of an SSE2 register each: 100 rows of the built-in model in ~1/5 of the
  // walk's time.
  std::vector<float> quick_threshold_;  // all splits, by feature, then ascending threshold
  std::vector<uint32_t> quick_tree_;    // per split: its tree
  std::vector<uint64_t> quick_left_;    // per split: the leaves of its left subtree
  std::array<uint32_t, kNumFeatures + 1> quick_begin_{};  // feature f's splits: [begin[f], begin[f + 1])
  std::vector<uint32_t> quick_first_leaf_;  // per tree: its leftmost leaf's index in quick_leaf_value_
  std::vector<float> quick_leaf_value_;     // each tree's leaves, left to right
  uint32_t quick_max_leaves_ = 0;           // masks of 16 bits up to 16 leaves, else 64
  bool quick_ = false;                      // every tree has at most 64 leaves (on every path)
  void build_quick();
  void score_quick(std::span<const FeatureVector> xs, std::span<float> out) const;
  float bias_ = 0;
  float base_ = 0;  // bias_ (linear) or bias_ + the trees' root expectations
  std::array<float, kNumCoverageFeatures> cov_mean_{}, cov_inv_scale_{}, cov_weights_{};
  float cov_bias_ = 0;
};

}  // namespace medsearch::rank
