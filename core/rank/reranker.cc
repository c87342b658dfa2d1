#include <medsearch/reranker.h>

#include <simdjson.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <fstream>
#include <sstream>

namespace medsearch::rank {

extern const char kBuiltinRerankerJson[];  // generated from data/reranker/ by CMake

std::span<const std::string_view> coverage_feature_names() {
  static constexpr std::string_view kNames[kNumCoverageFeatures] = {
      "top_score", "margin", "top_dense", "top_cover_any", "top_body_idf_norm", "unknown_share",
      "top_cover_dense_led", "best_dense"};
  return kNames;
}

namespace {

Status bad(std::string_view what) { return Status::invalid_argument("reranker model: " + std::string(what)); }

template <typename T>
Status read_array(simdjson::dom::object obj, std::string_view key, std::vector<T>* out) {
  simdjson::dom::array arr;
  if (obj[key].get_array().get(arr)) return bad("missing array '" + std::string(key) + "'");
  out->clear();
  for (auto v : arr) {
    if constexpr (std::is_integral_v<T>) {
      int64_t x;
      if (v.get_int64().get(x)) return bad("'" + std::string(key) + "' must hold integers");
      out->push_back(static_cast<T>(x));
    } else {
      double x;
      if (v.get_double().get(x) || !std::isfinite(x)) return bad("'" + std::string(key) + "' must hold finite numbers");
      out->push_back(static_cast<T>(x));
    }
  }
  return Status::ok();
}

template <size_t N>
Status read_fixed(simdjson::dom::object obj, std::string_view key, std::array<float, N>* out) {
  std::vector<float> v;
  MEDSEARCH_RETURN_IF_ERROR(read_array(obj, key, &v));
  if (v.size() != N) {
    return bad("'" + std::string(key) + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(N));
  }
  std::copy(v.begin(), v.end(), out->begin());
  return Status::ok();
}

Status read_number(simdjson::dom::object obj, std::string_view key, float* out) {
  double x;
  if (obj[key].get_double().get(x) || !std::isfinite(x)) return bad("missing number '" + std::string(key) + "'");
  *out = static_cast<float>(x);
  return Status::ok();
}

// 1 / scale, refusing zero or negative scales.
template <size_t N>
Status invert(std::array<float, N>* scale) {
  for (float& s : *scale) {
    if (!(s > 0)) return bad("scales must be positive");
    s = 1.0f / s;
  }
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<const Reranker>> Reranker::parse(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(simdjson::padded_string(json)).get(root)) {
    return bad(std::string("not valid JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::object top;
  if (root.get_object().get(top)) return bad("top level must be an object");
  std::string_view format;
  int64_t version = 0;
  if (top["format"].get_string().get(format) || format != "medsearch-reranker") return bad("format is not medsearch-reranker");
  if (top["version"].get_int64().get(version) || version != 1) return bad("unsupported version (expected 1)");
  auto model = std::make_shared<Reranker>();
  std::string_view name = "unnamed";
  if (top["name"].get_string().get(name)) name = "unnamed";
  model->name_ = std::string(name);

  simdjson::dom::array names;
  if (top["features"].get_array().get(names)) return bad("missing 'features'");
  {
    size_t i = 0;
    const auto expected = feature_names();
    for (auto n : names) {
      std::string_view s;
      if (n.get_string().get(s) || i >= expected.size() || s != expected[i]) {
        return bad("feature " + std::to_string(i) + " is not '" +
                   std::string(i < expected.size() ? expected[i] : "(none)") + "': trained on another feature set");
      }
      ++i;
    }
    if (i != expected.size()) return bad("has " + std::to_string(i) + " features, this build computes " + std::to_string(expected.size()));
  }

  simdjson::dom::object m;
  if (top["model"].get_object().get(m)) return bad("missing 'model'");
  std::string_view type;
  if (m["type"].get_string().get(type)) return bad("model has no 'type'");
  MEDSEARCH_RETURN_IF_ERROR(read_number(m, "bias", &model->bias_));
  if (type == "linear") {
    model->linear_ = true;
    MEDSEARCH_RETURN_IF_ERROR(read_fixed(m, "mean", &model->mean_));
    MEDSEARCH_RETURN_IF_ERROR(read_fixed(m, "scale", &model->inv_scale_));
    MEDSEARCH_RETURN_IF_ERROR(read_fixed(m, "weights", &model->weights_));
    MEDSEARCH_RETURN_IF_ERROR(invert(&model->inv_scale_));
  } else if (type == "trees") {
    model->linear_ = false;
    simdjson::dom::array trees;
    if (m["trees"].get_array().get(trees)) return bad("missing 'trees'");
    for (auto t : trees) {
      simdjson::dom::object obj;
      if (t.get_object().get(obj)) return bad("a tree must be an object");
      Tree tree;
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "feature", &tree.feature));
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "threshold", &tree.threshold));
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "left", &tree.left));
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "right", &tree.right));
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "node_value", &tree.node_value));
      MEDSEARCH_RETURN_IF_ERROR(read_array(obj, "leaf_value", &tree.leaf_value));
      const size_t nodes = tree.feature.size();
      if (tree.threshold.size() != nodes || tree.left.size() != nodes || tree.right.size() != nodes ||
          tree.node_value.size() != nodes) {
        return bad("tree " + std::to_string(model->trees_.size()) + ": split arrays differ in length");
      }
      if (tree.leaf_value.size() != nodes + 1) return bad("a tree with n splits must have n + 1 leaves");
      for (size_t n = 0; n < nodes; ++n) {
        if (tree.feature[n] < 0 || tree.feature[n] >= static_cast<int32_t>(kNumFeatures)) return bad("split on an unknown feature");
        for (int32_t c : {tree.left[n], tree.right[n]}) {
          // Children point forward (no cycles): split nodes after n, or leaves.
          if (c >= 0 ? (c <= static_cast<int32_t>(n) || c >= static_cast<int32_t>(nodes))
                     : (~c >= static_cast<int32_t>(tree.leaf_value.size()))) {
            return bad("tree " + std::to_string(model->trees_.size()) + ": child index out of range");
          }
        }
      }
      model->trees_.push_back(std::move(tree));
    }
    simdjson::dom::array terms;
    if (!m["terms"].get_array().get(terms)) {
      const auto known = feature_names();
      for (auto t : terms) {
        simdjson::dom::object obj;
        std::string_view feature;
        float weight = 0;
        if (t.get_object().get(obj) || obj["feature"].get_string().get(feature)) {
          return bad("a term must be an object with a 'feature' name");
        }
        MEDSEARCH_RETURN_IF_ERROR(read_number(obj, "weight", &weight));
        const auto it = std::find(known.begin(), known.end(), feature);
        if (it == known.end()) {
          std::string what = "term on an unknown feature '";
          what.append(feature).append("'");
          return bad(what);
        }
        model->terms_.emplace_back(static_cast<uint32_t>(it - known.begin()), weight);
      }
    }
  } else {
    return bad("unknown model type '" + std::string(type) + "'");
  }

  if (!model->linear_) {
    model->flatten();
    model->build_quick();
  }
  model->base_ = model->bias_;
  for (const Tree& t : model->trees_) model->base_ += t.feature.empty() ? t.leaf_value[0] : t.node_value[0];

  simdjson::dom::object cov;
  if (top["coverage"].get_object().get(cov)) return bad("missing 'coverage'");
  MEDSEARCH_RETURN_IF_ERROR(read_fixed(cov, "mean", &model->cov_mean_));
  MEDSEARCH_RETURN_IF_ERROR(read_fixed(cov, "scale", &model->cov_inv_scale_));
  MEDSEARCH_RETURN_IF_ERROR(read_fixed(cov, "weights", &model->cov_weights_));
  MEDSEARCH_RETURN_IF_ERROR(read_number(cov, "bias", &model->cov_bias_));
  MEDSEARCH_RETURN_IF_ERROR(invert(&model->cov_inv_scale_));
  return std::shared_ptr<const Reranker>(std::move(model));
}

Result<std::shared_ptr<const Reranker>> Reranker::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::io_error("cannot open reranker model " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto model = parse(buffer.str());
  if (!model) return Status(model.status().code(), file.string() + ": " + model.status().message());
  return model;
}

std::shared_ptr<const Reranker> Reranker::builtin() {
  static const std::shared_ptr<const Reranker> model = [] {
    auto parsed = parse(kBuiltinRerankerJson);
    // The file is checked by a unit test and at build time; reaching this is a build defect.
    if (!parsed) std::abort();
    return std::move(parsed).value();
  }();
  return model;
}

void Reranker::flatten() {
  for (const Tree& t : trees_) {
    const uint32_t first = static_cast<uint32_t>(flat_nodes_.size());
    const uint32_t splits = static_cast<uint32_t>(t.feature.size());
    // Split n stays node n; leaf l becomes node splits + l.
    auto node_of = [&](int32_t child) { return child >= 0 ? static_cast<uint32_t>(child) : splits + ~child; };
    for (uint32_t n = 0; n < splits; ++n) {
      flat_nodes_.push_back({t.threshold[n], static_cast<uint32_t>(t.feature[n]), {node_of(t.left[n]), node_of(t.right[n])}, 0.0f});
    }
    for (uint32_t l = 0; l < t.leaf_value.size(); ++l) {
      const uint32_t self = splits + l;
      flat_nodes_.push_back({std::numeric_limits<float>::infinity(), 0, {self, self}, t.leaf_value[l]});
    }
    // Depth: children point forward, so one pass in node order suffices.
    std::vector<uint32_t> depth(splits + t.leaf_value.size(), 0);
    uint32_t max_depth = 0;
    for (uint32_t n = 0; n < splits; ++n) {
      for (uint32_t c : {node_of(t.left[n]), node_of(t.right[n])}) {
        depth[c] = depth[n] + 1;
        max_depth = std::max(max_depth, depth[c]);
      }
    }
    flat_trees_.push_back({first, max_depth});
  }
}

void Reranker::build_quick() {
  constexpr uint32_t kMaxLeaves = 64;  // one bit each in a 64-bit mask
  struct Split {
    uint32_t feature;
    float threshold;
    uint32_t tree;
    uint64_t left;
  };
  std::vector<Split> splits;
  std::vector<float> leaves;
  std::vector<uint32_t> first_leaf;
  uint32_t max_leaves = 1;
  for (uint32_t t = 0; t < trees_.size(); ++t) {
    const Tree& tree = trees_[t];
    first_leaf.push_back(static_cast<uint32_t>(leaves.size()));
    uint32_t count = 0;  // leaves numbered so far, left to right
    // Numbers the leaves below `child` in order and records each split's
    // left subtree; false when the tree has too many leaves (counted per
    // path: a node reached twice is numbered twice, as the walk sees it).
    auto number = [&](auto&& self, int32_t child, uint32_t depth) -> bool {
      if (child < 0) {
        if (count == kMaxLeaves) return false;
        leaves.push_back(tree.leaf_value[~child]);
        ++count;
        return true;
      }
      if (depth == kMaxLeaves) return false;  // a path of 64 splits has more than 64 leaves
      const uint32_t first = count;
      if (!self(self, tree.left[child], depth + 1)) return false;
      const uint32_t left = count - first;
      if (left == kMaxLeaves) return false;  // and the right subtree has more
      splits.push_back({static_cast<uint32_t>(tree.feature[child]), tree.threshold[child], t,
                        ((uint64_t{1} << left) - 1) << first});
      return self(self, tree.right[child], depth + 1);
    };
    if (!number(number, tree.feature.empty() ? -1 : 0, 0)) return;  // quick_ stays false: walk
    max_leaves = std::max(max_leaves, count);
  }
  std::stable_sort(splits.begin(), splits.end(), [](const Split& a, const Split& b) {
    return a.feature < b.feature || (a.feature == b.feature && a.threshold < b.threshold);
  });
  quick_begin_.fill(0);
  for (const Split& split : splits) {
    quick_threshold_.push_back(split.threshold);
    quick_tree_.push_back(split.tree);
    quick_left_.push_back(split.left);
    ++quick_begin_[split.feature + 1];
  }
  for (uint32_t f = 0; f < kNumFeatures; ++f) quick_begin_[f + 1] += quick_begin_[f];
  quick_first_leaf_ = std::move(first_leaf);
  quick_leaf_value_ = std::move(leaves);
  quick_max_leaves_ = max_leaves;
  quick_ = true;
}

namespace {

#if defined(__SSE2__)
// QuickScorer over 8 rows at once when every tree has at most 16 leaves: one
// 16-bit lane of a 128-bit register per row (V-QuickScorer, Lucchese et al.,
// 2016). A feature's splits are scanned until the threshold reaches every
// row's value; a split clears its left subtree in the lanes of the rows that
// go right.
void score_blocks16(std::span<const FeatureVector> xs, std::span<const uint32_t> begin, const float* thresholds,
                    const uint32_t* trees, const uint64_t* left, std::span<const uint32_t> first_leaf,
                    const float* leaf_value, float bias, std::span<float> out) {
  constexpr size_t kBlock = 8;
  struct Lanes {  // a tree's leaf mask, one 16-bit lane per row (a struct: vector<__m128i> drops its attributes)
    __m128i v;
  };
  std::vector<Lanes> keep(first_leaf.size());
  alignas(16) float column[kBlock];
  alignas(16) uint16_t lanes[kBlock];
  for (size_t r = 0; r < xs.size(); r += kBlock) {
    const size_t rows = std::min(kBlock, xs.size() - r);
    std::fill(keep.begin(), keep.end(), Lanes{_mm_set1_epi32(-1)});
    for (uint32_t f = 0; f < kNumFeatures; ++f) {
      if (begin[f] == begin[f + 1]) continue;
      // A missing row is NaN, which is > no threshold (NaN goes left in the walk too).
      for (size_t j = 0; j < kBlock; ++j) column[j] = j < rows ? xs[r + j][f] : std::numeric_limits<float>::quiet_NaN();
      const __m128 lo = _mm_load_ps(column), hi = _mm_load_ps(column + 4);
      for (uint32_t i = begin[f]; i < begin[f + 1]; ++i) {
        const __m128 t = _mm_set1_ps(thresholds[i]);
        const __m128i right = _mm_packs_epi32(_mm_castps_si128(_mm_cmpgt_ps(lo, t)), _mm_castps_si128(_mm_cmpgt_ps(hi, t)));
        if (_mm_movemask_epi8(right) == 0) break;  // thresholds ascend: no row goes right at the rest
        __m128i& k = keep[trees[i]].v;
        k = _mm_andnot_si128(_mm_and_si128(right, _mm_set1_epi16(static_cast<int16_t>(left[i]))), k);
      }
    }
    // Leaf values added in tree order, as the walk adds them.
    float sum[kBlock];
    std::fill(sum, sum + kBlock, bias);
    for (size_t t = 0; t < keep.size(); ++t) {
      _mm_store_si128(reinterpret_cast<__m128i*>(lanes), keep[t].v);
      const float* values = leaf_value + first_leaf[t];
      for (size_t j = 0; j < kBlock; ++j) sum[j] += values[std::countr_zero(lanes[j])];
    }
    for (size_t j = 0; j < rows; ++j) out[r + j] = sum[j];
  }
}
#endif

}  // namespace

void Reranker::score_quick(std::span<const FeatureVector> xs, std::span<float> out) const {
#if defined(__SSE2__)
  if (quick_max_leaves_ <= 16) {
    score_blocks16(xs, quick_begin_, quick_threshold_.data(), quick_tree_.data(), quick_left_.data(),
                   quick_first_leaf_, quick_leaf_value_.data(), bias_, out);
    return;
  }
#endif
  std::vector<uint64_t> keep(trees_.size());
  for (size_t r = 0; r < xs.size(); ++r) {
    const FeatureVector& x = xs[r];
    std::fill(keep.begin(), keep.end(), ~uint64_t{0});
    for (uint32_t f = 0; f < kNumFeatures; ++f) {
      const float v = x[f];  // NaN is > no threshold: left everywhere, as in the walk
      for (uint32_t i = quick_begin_[f], end = quick_begin_[f + 1]; i < end && v > quick_threshold_[i]; ++i) {
        keep[quick_tree_[i]] &= ~quick_left_[i];
      }
    }
    // Leaf values added in tree order, as the walk adds them.
    float s = bias_;
    for (size_t t = 0; t < keep.size(); ++t) s += quick_leaf_value_[quick_first_leaf_[t] + std::countr_zero(keep[t])];
    out[r] = s;
  }
}

float Reranker::score(const FeatureVector& x) const {
  float s = 0;
  score_batch(std::span<const FeatureVector>(&x, 1), std::span<float>(&s, 1));
  return s;
}

void Reranker::score_batch(std::span<const FeatureVector> xs, std::span<float> out) const {
  if (linear_) {
    for (size_t r = 0; r < xs.size(); ++r) {
      float s = bias_;
      for (uint32_t i = 0; i < kNumFeatures; ++i) s += weights_[i] * (xs[r][i] - mean_[i]) * inv_scale_[i];
      out[r] = s;
    }
    return;
  }
  if (quick_) {
    score_quick(xs, out);
  } else {
    walk(xs, out);
  }
  for (const auto& [feature, weight] : terms_) {
    for (size_t r = 0; r < xs.size(); ++r) out[r] += weight * xs[r][feature];
  }
}

void Reranker::walk(std::span<const FeatureVector> xs, std::span<float> out) const {
  std::fill(out.begin(), out.end(), bias_);
  constexpr size_t kLanes = 8;  // independent walks in flight
  for (const FlatTree& t : flat_trees_) {
    const FlatNode* nodes = flat_nodes_.data() + t.first;
    for (size_t r = 0; r < xs.size(); r += kLanes) {
      const size_t lanes = std::min(kLanes, xs.size() - r);
      uint32_t n[kLanes] = {};
      for (uint32_t d = 0; d < t.depth; ++d) {
        for (size_t j = 0; j < lanes; ++j) {
          const FlatNode& node = nodes[n[j]];
          n[j] = node.next[xs[r + j][node.feature] > node.threshold];
        }
      }
      for (size_t j = 0; j < lanes; ++j) out[r + j] += nodes[n[j]].value;
    }
  }
}

FeatureVector Reranker::contributions(const FeatureVector& x) const {
  FeatureVector out{};
  if (linear_) {
    for (uint32_t i = 0; i < kNumFeatures; ++i) out[i] = weights_[i] * (x[i] - mean_[i]) * inv_scale_[i];
    return out;
  }
  for (const Tree& t : trees_) {
    int32_t n = t.feature.empty() ? -1 : 0;
    while (n >= 0) {
      const int32_t next = x[t.feature[n]] <= t.threshold[n] ? t.left[n] : t.right[n];
      const float below = next >= 0 ? t.node_value[next] : t.leaf_value[~next];
      out[t.feature[n]] += below - t.node_value[n];
      n = next;
    }
  }
  for (const auto& [feature, weight] : terms_) out[feature] += weight * x[feature];
  return out;
}

float Reranker::coverage(const CoverageVector& r) const {
  float z = cov_bias_;
  for (uint32_t i = 0; i < kNumCoverageFeatures; ++i) z += cov_weights_[i] * (r[i] - cov_mean_[i]) * cov_inv_scale_[i];
  return 1.0f / (1.0f + std::exp(-z));
}

}  // namespace medsearch::rank
