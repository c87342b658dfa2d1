#include "core/lexical/bm25_index.h"

#include "core/internal/binary_io.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/parallel_for.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>

namespace medsearch::lexical {
namespace {

uint64_t term_hash(std::string_view term) { return XXH3_64bits(term.data(), term.size()); }

// A passage's field as (term hash, tf), sorted by hash.
using TermCounts = std::vector<std::pair<uint64_t, uint16_t>>;

void count_terms(std::vector<uint64_t>& hashes, TermCounts* out) {
  std::sort(hashes.begin(), hashes.end());
  out->clear();
  for (size_t i = 0; i < hashes.size();) {
    size_t j = i;
    while (j < hashes.size() && hashes[j] == hashes[i]) ++j;
    out->emplace_back(hashes[i], static_cast<uint16_t>(std::min<size_t>(j - i, 65535)));
    i = j;
  }
}

// A query term as search() reads it: its postings in each field, with their
// impacts (the index's own or computed under a collection's statistics) and
// the largest of them.
struct SearchTerm {
  uint32_t term_id;
  float weight;
  const uint32_t* passages[kNumFields];
  const float* impacts[kNumFields];
  uint32_t count[kNumFields];
  float max_impact[kNumFields];
  size_t postings() const { return size_t{count[kBody]} + count[kHeading]; }
};

// Per-thread scratch for search(): reused across queries, reset through the
// touched lists so a query costs O(postings), not O(passages).
struct Scratch {
  std::vector<float> acc;
  std::vector<uint32_t> touched;
  std::vector<uint32_t> group_best;  // passage number + 1 of the group's best; 0 = none
  std::vector<uint32_t> groups_touched;
  std::vector<ScoredPassage> candidates;
  std::vector<SearchTerm> essential, common;
  std::vector<float> bests;  // scratch for the pruning threshold
  std::vector<float> impacts;  // impacts under a collection's statistics
};

inline bool better(const ScoredPassage& a, const ScoredPassage& b) {
  return a.score > b.score || (a.score == b.score && a.passage < b.passage);
}

}  // namespace

Result<Bm25Index> Bm25Index::build(const text::Analyzer& analyzer, uint32_t num_passages,
                           const std::function<std::string_view(uint32_t, Field)>& field_text,
                           const Bm25Params& params) {
  Bm25Index index;
  index.params_ = params;
  index.num_passages_ = num_passages;

  // 1. Analyse every passage in parallel into hashed term counts; each thread
  //    remembers the strings behind the hashes it saw.
  std::vector<TermCounts> counts[kNumFields];
  for (auto& c : counts) c.resize(num_passages);
  for (auto& f : index.fields_) f.lengths.assign(num_passages, 0);
  tbb::enumerable_thread_specific<std::unordered_map<uint64_t, std::string>> local_terms;
  std::atomic<bool> collision{false};
  tbb::parallel_for(tbb::blocked_range<uint32_t>(0, num_passages, 64),
                    [&](const tbb::blocked_range<uint32_t>& range) {
    auto& seen = local_terms.local();
    std::vector<text::Token> tokens;
    std::vector<uint64_t> hashes;
    for (uint32_t p = range.begin(); p < range.end(); ++p) {
      for (int f = 0; f < kNumFields; ++f) {
        tokens.clear();
        analyzer.analyze(field_text(p, static_cast<Field>(f)), &tokens);
        hashes.clear();
        for (const auto& t : tokens) {
          const uint64_t h = term_hash(t.term);
          hashes.push_back(h);
          auto [it, inserted] = seen.try_emplace(h, t.term);
          if (!inserted && it->second != t.term) collision = true;
        }
        index.fields_[f].lengths[p] = static_cast<uint32_t>(tokens.size());
        count_terms(hashes, &counts[f][p]);
      }
    }
  });

  // 2. Vocabulary: sorted term strings, so ids do not depend on scheduling.
  std::unordered_map<uint64_t, std::string> all_terms;
  for (auto& seen : local_terms) {
    for (auto& [h, term] : seen) {
      auto [it, inserted] = all_terms.try_emplace(h, std::move(term));
      if (!inserted && it->second != term) collision = true;
    }
  }
  index.terms_.reserve(all_terms.size());
  for (auto& [h, term] : all_terms) index.terms_.push_back(term);
  std::sort(index.terms_.begin(), index.terms_.end());
  std::unordered_map<uint64_t, uint32_t> id_of_hash;
  id_of_hash.reserve(index.terms_.size());
  for (uint32_t id = 0; id < index.terms_.size(); ++id) {
    id_of_hash.emplace(term_hash(index.terms_[id]), id);
  }
  // A 64-bit hash collision between two distinct terms would merge their
  // postings; with ~10^6 terms its probability is ~10^-8, and we check it.
  if (collision) {
    return Status::internal("bm25: 64-bit term hash collision; please report this corpus");
  }

  // 3. Postings per field by counting sort; passages ascend within a term.
  const size_t num_terms = index.terms_.size();
  for (int f = 0; f < kNumFields; ++f) {
    FieldPostings& fp = index.fields_[f];
    fp.offsets.assign(num_terms + 1, 0);
    for (const auto& tc : counts[f]) {
      for (const auto& [h, tf] : tc) ++fp.offsets[id_of_hash[h] + 1];
    }
    for (size_t t = 0; t < num_terms; ++t) fp.offsets[t + 1] += fp.offsets[t];
    fp.passages.resize(fp.offsets[num_terms]);
    fp.tfs.resize(fp.offsets[num_terms]);
    std::vector<uint32_t> cursor(fp.offsets.begin(), fp.offsets.end() - 1);
    for (uint32_t p = 0; p < num_passages; ++p) {
      for (const auto& [h, tf] : counts[f][p]) {
        const uint32_t at = cursor[id_of_hash[h]]++;
        fp.passages[at] = p;
        fp.tfs[at] = tf;
      }
    }
    counts[f].clear();
    counts[f].shrink_to_fit();
  }
  index.index_vocabulary();
  index.compute_impacts();
  return index;
}

Bm25Index Bm25Index::merge(const Bm25Index& base, std::span<const uint8_t> keep, const Bm25Index& added) {
  Bm25Index out;
  out.params_ = base.params_;
  // Base passage -> its number in the result (kept ones only).
  std::vector<uint32_t> renumber(base.num_passages_);
  uint32_t kept = 0;
  for (uint32_t p = 0; p < base.num_passages_; ++p) renumber[p] = keep[p] ? kept++ : UINT32_MAX;
  out.num_passages_ = kept + added.num_passages_;
  for (int f = 0; f < kNumFields; ++f) {
    auto& lengths = out.fields_[f].lengths;
    lengths.reserve(out.num_passages_);
    for (uint32_t p = 0; p < base.num_passages_; ++p) {
      if (keep[p]) lengths.push_back(base.fields_[f].lengths[p]);
    }
    lengths.insert(lengths.end(), added.fields_[f].lengths.begin(), added.fields_[f].lengths.end());
  }
  // Walk both sorted vocabularies together; a term's postings are base's kept
  // ones (renumbered, still ascending) and then added's (shifted past them).
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<std::pair<uint32_t, uint32_t>> sources;  // (base term, added term) per merged term
  for (size_t i = 0, j = 0; i < base.terms_.size() || j < added.terms_.size();) {
    const int c = i == base.terms_.size()    ? 1
                  : j == added.terms_.size() ? -1
                                             : base.terms_[i].compare(added.terms_[j]);
    if (c < 0) {
      sources.emplace_back(static_cast<uint32_t>(i++), kNone);
    } else if (c > 0) {
      sources.emplace_back(kNone, static_cast<uint32_t>(j++));
    } else {
      sources.emplace_back(static_cast<uint32_t>(i++), static_cast<uint32_t>(j++));
    }
  }
  for (int f = 0; f < kNumFields; ++f) out.fields_[f].offsets.push_back(0);
  for (const auto& [bt, at] : sources) {
    size_t appended = 0;
    for (int f = 0; f < kNumFields; ++f) {
      FieldPostings& to = out.fields_[f];
      if (bt != kNone) {
        const FieldPostings& from = base.fields_[f];
        for (uint32_t i = from.offsets[bt]; i < from.offsets[bt + 1]; ++i) {
          if (renumber[from.passages[i]] == UINT32_MAX) continue;
          to.passages.push_back(renumber[from.passages[i]]);
          to.tfs.push_back(from.tfs[i]);
        }
      }
      if (at != kNone) {
        const FieldPostings& from = added.fields_[f];
        for (uint32_t i = from.offsets[at]; i < from.offsets[at + 1]; ++i) {
          to.passages.push_back(kept + from.passages[i]);
          to.tfs.push_back(from.tfs[i]);
        }
      }
      appended += to.passages.size() - to.offsets.back();
    }
    if (appended == 0) continue;  // only removed passages had it
    out.terms_.push_back(bt != kNone ? base.terms_[bt] : added.terms_[at]);
    for (int f = 0; f < kNumFields; ++f) {
      out.fields_[f].offsets.push_back(static_cast<uint32_t>(out.fields_[f].passages.size()));
    }
  }
  out.index_vocabulary();
  out.compute_impacts();
  return out;
}

void Bm25Index::index_vocabulary() {
  term_ids_.clear();
  term_ids_.reserve(terms_.size());
  for (uint32_t id = 0; id < terms_.size(); ++id) term_ids_.emplace(terms_[id], id);
}

namespace {

// Lucene's length normaliser of a field: k1 * (1 - b + b * len / avg).
inline float length_norm(const Bm25Params& params, uint32_t length, double avg) {
  return static_cast<float>(params.k1 * (1.0 - params.b + params.b * length / avg));
}

// The average field length: length_sum / passages (1 for no passages).
inline double average_length(uint64_t passages, uint64_t length_sum) {
  return passages ? std::max(static_cast<double>(length_sum) / static_cast<double>(passages), 1e-9) : 1.0;
}

// A term's weight in a field: idf, times the field's weight for headings.
inline float term_weight(const Bm25Params& params, Field field, double passages, double doc_freq) {
  const double weight = field == kHeading ? params.heading_weight : 1.0;
  return static_cast<float>(weight * std::log(1.0 + (passages - doc_freq + 0.5) / (doc_freq + 0.5)));
}

}  // namespace

float lucene_idf(double passages, double doc_freq) {
  return static_cast<float>(std::log(1.0 + (passages - doc_freq + 0.5) / (doc_freq + 0.5)));
}

void Bm25Index::compute_impacts() {
  const double n = num_passages_;
  for (int f = 0; f < kNumFields; ++f) {
    FieldPostings& fp = fields_[f];
    uint64_t total = 0;
    for (uint32_t len : fp.lengths) total += len;
    const double avg = average_length(num_passages_, total);
    std::vector<float> norm(num_passages_);
    for (uint32_t p = 0; p < num_passages_; ++p) norm[p] = length_norm(params_, fp.lengths[p], avg);
    fp.impacts.resize(fp.passages.size());
    fp.max_impact.assign(terms_.size(), 0.0f);
    const size_t num_terms = terms_.size();
    tbb::parallel_for(tbb::blocked_range<size_t>(0, num_terms, 1024),
                      [&](const tbb::blocked_range<size_t>& range) {
      for (size_t t = range.begin(); t < range.end(); ++t) {
        const uint32_t lo = fp.offsets[t], hi = fp.offsets[t + 1];
        const float w = term_weight(params_, static_cast<Field>(f), n, hi - lo);
        for (uint32_t i = lo; i < hi; ++i) {
          const float tf = fp.tfs[i];
          fp.impacts[i] = w * tf / (tf + norm[fp.passages[i]]);
          fp.max_impact[t] = std::max(fp.max_impact[t], fp.impacts[i]);
        }
      }
    });
  }
}

float Bm25Index::impacts_with(uint32_t term_id, Field field, const ScoringStats& stats, size_t t, float* out) const {
  const FieldPostings& fp = fields_[field];
  const double avg = average_length(stats.passages, stats.length_sum[field]);
  const float w = term_weight(params_, field, static_cast<double>(stats.passages), stats.doc_freq[t][field]);
  float best = 0.0f;
  for (uint32_t i = fp.offsets[term_id], j = 0; i < fp.offsets[term_id + 1]; ++i, ++j) {
    const float tf = fp.tfs[i];
    out[j] = w * tf / (tf + length_norm(params_, fp.lengths[fp.passages[i]], avg));
    best = std::max(best, out[j]);
  }
  return best;
}

std::vector<QueryTerm> Bm25Index::resolve(std::span<const text::Token> tokens) const {
  std::vector<QueryTerm> out;
  for (const auto& t : tokens) {
    auto it = term_ids_.find(t.term);
    if (it == term_ids_.end()) continue;
    auto same = std::find_if(out.begin(), out.end(), [&](const QueryTerm& q) { return q.term_id == it->second; });
    if (same != out.end()) {
      same->weight += 1.0f;
    } else {
      out.push_back({it->second, 1.0f});
    }
  }
  // Accumulate in term-id order so float sums are reproducible for any query word order.
  std::sort(out.begin(), out.end(), [](const QueryTerm& a, const QueryTerm& b) { return a.term_id < b.term_id; });
  return out;
}

namespace {

// Keeps the k best candidates seen so far; the heap's front, the worst of
// them, is the bar a new one must clear. `better` orders candidates totally
// (ties by passage), so the k kept do not depend on the heap's layout.
class TopK {
 public:
  explicit TopK(size_t k, std::vector<ScoredPassage>* storage) : k_(k), heap_(*storage) { heap_.clear(); }
  void push(ScoredPassage c) {
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), Better{});  // `better` makes a min-heap of the best
    } else if (better(c, heap_.front())) {
      replace_worst(c);
    }
  }
  std::vector<ScoredPassage> sorted() {
    std::sort(heap_.begin(), heap_.end(), Better{});
    return heap_;
  }

 private:
  // `better` as a type, not a function pointer, so the heap algorithms inline it.
  struct Better {
    bool operator()(const ScoredPassage& a, const ScoredPassage& b) const { return better(a, b); }
  };
  // Puts c in the front's place and sifts it down: one pass from the root,
  // where pop_heap + push_heap take two.
  void replace_worst(ScoredPassage c) {
    const size_t n = heap_.size();
    size_t i = 0;
    for (size_t child = 1; child < n; child = 2 * i + 1) {
      if (child + 1 < n && better(heap_[child], heap_[child + 1])) ++child;  // the worse child
      if (!better(c, heap_[child])) break;
      heap_[i] = heap_[child];
      i = child;
    }
    heap_[i] = c;
  }
  size_t k_;
  std::vector<ScoredPassage>& heap_;
};

}  // namespace

std::vector<ScoredPassage> Bm25Index::search(std::span<const QueryTerm> terms, const Options& options,
                                             const ScoringStats* stats) const {
  thread_local Scratch s;
  if (s.acc.size() < num_passages_) s.acc.assign(num_passages_, 0.0f);
  const bool grouped = !options.group_of.empty();
  const bool filtered = grouped && !options.group_allowed.empty();
  const bool one_per_group = options.one_per_group && grouped;
  TopK top(options.k, &s.candidates);
  if (options.k == 0 || terms.empty()) return {};

  // Each term's postings and impacts: the index's own, or computed here under
  // the collection's statistics (one pass over the term's postings).
  auto& essential = s.essential;
  auto& common = s.common;
  essential.clear();
  common.clear();
  if (stats) {
    size_t total = 0;
    for (const auto& q : terms) {
      for (const auto& fp : fields_) total += fp.offsets[q.term_id + 1] - fp.offsets[q.term_id];
    }
    if (s.impacts.size() < total) s.impacts.resize(total);
  }
  size_t used = 0;
  for (size_t t = 0; t < terms.size(); ++t) {
    const QueryTerm& q = terms[t];
    SearchTerm st{};
    st.term_id = q.term_id;
    st.weight = q.weight;
    for (int f = 0; f < kNumFields; ++f) {
      const FieldPostings& fp = fields_[f];
      const uint32_t lo = fp.offsets[q.term_id];
      st.passages[f] = fp.passages.data() + lo;
      st.count[f] = fp.offsets[q.term_id + 1] - lo;
      if (stats) {
        float* out = s.impacts.data() + used;
        st.max_impact[f] = impacts_with(q.term_id, static_cast<Field>(f), *stats, t, out);
        st.impacts[f] = out;
        used += st.count[f];
      } else {
        st.impacts[f] = fp.impacts.data() + lo;
        st.max_impact[f] = fp.max_impact[q.term_id];
      }
    }
    // Common terms (in more than 1/8 of the passages) are candidates for pruning.
    (st.postings() * 8 >= num_passages_ ? common : essential).push_back(st);
  }

  // Two strategies, chosen per query by the number of postings it touches:
  //  - dense: scatter-add without bookkeeping, then one sequential scan of the
  //    accumulator (zeroing it as it goes). Wins when the query's postings
  //    cover a good part of the corpus (common words), as the scan is
  //    branch-light and prefetch-friendly.
  //  - sparse: also record each passage the first time it is touched, and
  //    visit only those. Wins for rare-term queries on large corpora.
  if (essential.empty()) {  // nothing to prune against
    essential.swap(common);
  }
  auto bound_of = [&](const SearchTerm& q) {
    return q.weight * (q.max_impact[kBody] + (params_.heading_weight > 0 ? q.max_impact[kHeading] : 0.0f));
  };
  // Largest bound first, so the terms left for pruning are the weakest.
  std::sort(common.begin(), common.end(), [&](const SearchTerm& a, const SearchTerm& b) {
    const float ba = bound_of(a), bb = bound_of(b);
    return ba > bb || (ba == bb && a.term_id < b.term_id);
  });
  size_t postings = 0;
  for (const auto& q : essential) postings += q.postings();
  // With common terms to prune, the sparse strategy keeps the list of candidates.
  const bool dense = common.empty() && postings * 8 >= num_passages_;
  s.touched.clear();
  for (const auto& q : essential) {
    for (int f = 0; f < kNumFields; ++f) {
      // A zero-weight field adds nothing, and would defeat the "0 = untouched" test.
      if (f == kHeading && params_.heading_weight <= 0.0f) continue;
      const uint32_t* ps = q.passages[f];
      const float* im = q.impacts[f];
      const uint32_t n = q.count[f];
      float* acc = s.acc.data();
      const float w = q.weight;
      if (dense) {
        for (uint32_t i = 0; i < n; ++i) acc[ps[i]] += w * im[i];
      } else {
        for (uint32_t i = 0; i < n; ++i) {
          float& a = acc[ps[i]];
          if (a == 0.0f) s.touched.push_back(ps[i]);
          a += w * im[i];
        }
      }
    }
  }

  float* acc = s.acc.data();
  if (dense) {
    // Passages of a group are contiguous (the index numbers them document by
    // document), so the best of each group falls out of the same scan.
    ScoredPassage group_best{0, 0.0f};
    uint32_t current_group = UINT32_MAX;
    for (uint32_t p = 0; p < num_passages_; ++p) {
      const float score = acc[p];
      if (score == 0.0f) continue;
      acc[p] = 0.0f;
      if (filtered && !options.group_allowed[options.group_of[p]]) continue;
      if (!one_per_group) {
        top.push({p, score});
        continue;
      }
      const uint32_t g = options.group_of[p];
      if (g != current_group) {
        if (current_group != UINT32_MAX) top.push(group_best);
        current_group = g;
        group_best = {p, score};
      } else if (score > group_best.score) {
        group_best = {p, score};
      }
    }
    if (one_per_group && current_group != UINT32_MAX) top.push(group_best);
    return top.sorted();
  }

  // MaxScore. theta, the k-th best score so far, only grows as terms are added.
  // The common terms whose bounds add up to less than theta cannot lift an
  // untouched passage into the top k: for them only candidates within that
  // sum of theta are completed, by binary search in the postings.
  // Calls visit(p) for the best allowed touched passage of each group (ties:
  // the smaller passage), leaving group_best clear again.
  auto for_each_group_best = [&](auto&& visit) {
    if (s.group_best.size() < options.num_groups) s.group_best.assign(options.num_groups, 0);
    s.groups_touched.clear();
    for (uint32_t p : s.touched) {
      const uint32_t g = options.group_of[p];
      if (filtered && !options.group_allowed[g]) continue;
      uint32_t& best = s.group_best[g];
      if (best == 0) s.groups_touched.push_back(g);
      if (best == 0 || better({p, acc[p]}, {best - 1, acc[best - 1]})) best = p + 1;
    }
    for (uint32_t g : s.groups_touched) {
      visit(s.group_best[g] - 1);
      s.group_best[g] = 0;
    }
  };
  auto kth_best = [&]() -> float {  // theta over allowed passages (distinct groups); 0 if fewer than k
    auto& bests = s.bests;
    bests.clear();
    if (one_per_group) {
      for_each_group_best([&](uint32_t p) { bests.push_back(acc[p]); });
    } else {
      for (uint32_t p : s.touched) {
        if (filtered && !options.group_allowed[options.group_of[p]]) continue;
        bests.push_back(acc[p]);
      }
    }
    if (bests.size() < options.k) return 0.0f;
    std::nth_element(bests.begin(), bests.begin() + (options.k - 1), bests.end(), std::greater<float>());
    return bests[options.k - 1];
  };
  auto accumulate_full = [&](const SearchTerm& q) {
    for (int f = 0; f < kNumFields; ++f) {
      if (f == kHeading && params_.heading_weight <= 0.0f) continue;
      for (uint32_t i = 0; i < q.count[f]; ++i) {
        float& a = acc[q.passages[f][i]];
        if (a == 0.0f) s.touched.push_back(q.passages[f][i]);
        a += q.weight * q.impacts[f][i];
      }
    }
  };
  if (!common.empty()) {
    const float theta = kth_best();
    // Prune the longest suffix of (weakest) common terms whose bounds sum below theta.
    size_t first_pruned = common.size();
    float suffix = 0.0f;
    while (first_pruned > 0 && suffix + bound_of(common[first_pruned - 1]) < theta) {
      suffix += bound_of(common[--first_pruned]);
    }
    for (size_t i = 0; i < first_pruned; ++i) accumulate_full(common[i]);
    if (first_pruned < common.size()) {
      // Complete the live candidates: by binary search when they are few, else
      // by one pass over the postings that skips untouched passages.
      size_t live = 0;
      for (uint32_t p : s.touched) live += acc[p] + suffix >= theta;
      size_t scan_cost = 0, search_cost = 0;
      for (size_t i = first_pruned; i < common.size(); ++i) {
        const size_t n = common[i].postings();
        scan_cost += n;
        search_cost += live * 2 * (4 + std::bit_width(n));
      }
      for (size_t i = first_pruned; i < common.size(); ++i) {
        const SearchTerm& q = common[i];
        for (int f = 0; f < kNumFields; ++f) {
          if (f == kHeading && params_.heading_weight <= 0.0f) continue;
          const uint32_t* ps = q.passages[f];
          const float* im = q.impacts[f];
          const uint32_t n = q.count[f];
          if (search_cost < scan_cost) {
            for (uint32_t p : s.touched) {
              if (acc[p] + suffix < theta) continue;  // cannot reach the top k
              const uint32_t* it = std::lower_bound(ps, ps + n, p);
              if (it != ps + n && *it == p) acc[p] += q.weight * im[it - ps];
            }
          } else {
            // Untouched passages stay below theta whatever they would get here.
            for (uint32_t i2 = 0; i2 < n; ++i2) {
              float& a = acc[ps[i2]];
              if (a != 0.0f) a += q.weight * im[i2];
            }
          }
        }
      }
    }
  }

  if (one_per_group) {
    for_each_group_best([&](uint32_t p) { top.push({p, acc[p]}); });
  } else {
    for (uint32_t p : s.touched) {
      if (filtered && !options.group_allowed[options.group_of[p]]) continue;
      top.push({p, acc[p]});
    }
  }
  for (uint32_t p : s.touched) acc[p] = 0.0f;
  return top.sorted();
}

float Bm25Index::field_score(std::span<const QueryTerm> terms, uint32_t passage, Field field,
                             const ScoringStats* stats) const {
  const FieldPostings& fp = fields_[field];
  const float weight = field == kHeading ? params_.heading_weight : 1.0f;
  float total = 0.0f;
  for (size_t t = 0; t < terms.size(); ++t) {
    const QueryTerm& q = terms[t];
    auto begin = fp.passages.begin() + fp.offsets[q.term_id];
    auto end = fp.passages.begin() + fp.offsets[q.term_id + 1];
    auto it = std::lower_bound(begin, end, passage);
    if (it == end || *it != passage) continue;
    const size_t i = it - fp.passages.begin();
    float impact = fp.impacts[i];
    if (stats) {
      const double avg = average_length(stats->passages, stats->length_sum[field]);
      const float w = term_weight(params_, field, static_cast<double>(stats->passages), stats->doc_freq[t][field]);
      const float tf = fp.tfs[i];
      impact = w * tf / (tf + length_norm(params_, fp.lengths[passage], avg));
    }
    total += q.weight * impact;
  }
  return weight > 0 ? total / weight : 0.0f;
}

void Bm25Index::term_scores_sorted(std::span<const QueryTerm> terms, std::span<const uint32_t> passages, Field field,
                                   std::span<float> out, const ScoringStats* stats) const {
  const FieldPostings& fp = fields_[field];
  const float weight = field == kHeading ? params_.heading_weight : 1.0f;
  const float inv = weight > 0 ? 1.0f / weight : 0.0f;
  const size_t nt = terms.size();
  std::vector<float> computed;  // the term's impacts under `stats`
  for (size_t t = 0; t < nt; ++t) {
    const uint32_t* base = fp.passages.data();
    const size_t first = fp.offsets[terms[t].term_id];
    const size_t end = fp.offsets[terms[t].term_id + 1];
    // The term's impacts, from its first posting.
    const float* impacts = fp.impacts.data() + first;
    if (stats) {
      computed.resize(end - first);
      impacts_with(terms[t].term_id, field, *stats, t, computed.data());
      impacts = computed.data();
    }
    size_t pos = first;
    for (size_t i = 0; i < passages.size(); ++i) {
      const uint32_t want = passages[i];
      // Gallop from the last position, then binary search the bracket.
      size_t step = 1, lo = pos;
      while (lo + step < end && base[lo + step] < want) {
        lo += step;
        step *= 2;
      }
      pos = std::lower_bound(base + lo, base + std::min(lo + step + 1, end), want) - base;
      out[i * nt + t] = pos < end && base[pos] == want ? impacts[pos - first] * inv : 0.0f;
    }
  }
}

float Bm25Index::idf(uint32_t term_id, Field field) const {
  const double df = doc_freq(term_id, field);
  return static_cast<float>(std::log(1.0 + (num_passages_ - df + 0.5) / (df + 0.5)));
}

float Bm25Index::score(std::span<const QueryTerm> terms, uint32_t passage) const {
  // Same summation order as search(): term by term, body then heading.
  float total = 0.0f;
  for (const auto& q : terms) {
    for (int f = 0; f < kNumFields; ++f) {
      const FieldPostings& fp = fields_[f];
      auto begin = fp.passages.begin() + fp.offsets[q.term_id];
      auto end = fp.passages.begin() + fp.offsets[q.term_id + 1];
      auto it = std::lower_bound(begin, end, passage);
      if (it != end && *it == passage) total += q.weight * fp.impacts[it - fp.passages.begin()];
    }
  }
  return total;
}

size_t Bm25Index::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& t : terms_) bytes += sizeof(std::string) + t.capacity();
  bytes += term_ids_.size() * (sizeof(std::string_view) + sizeof(uint32_t) + 2 * sizeof(void*));
  for (const auto& fp : fields_) {
    bytes += fp.offsets.capacity() * 4 + fp.passages.capacity() * 4 + fp.tfs.capacity() * 2 +
             fp.impacts.capacity() * 4 + fp.lengths.capacity() * 4;
  }
  return bytes;
}

void Bm25Index::serialize(internal::BinaryWriter* out) const {
  out->put<float>(params_.k1);
  out->put<float>(params_.b);
  out->put<float>(params_.heading_weight);
  out->put<uint32_t>(num_passages_);
  out->put_strings(terms_);
  for (const auto& fp : fields_) {
    out->put_vector(fp.offsets);
    out->put_vector(fp.passages);
    out->put_vector(fp.tfs);
    out->put_vector(fp.lengths);
  }
}

Result<Bm25Index> Bm25Index::deserialize(internal::BinaryReader* in) {
  Bm25Index index;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&index.params_.k1));
  MEDSEARCH_RETURN_IF_ERROR(in->get(&index.params_.b));
  MEDSEARCH_RETURN_IF_ERROR(in->get(&index.params_.heading_weight));
  MEDSEARCH_RETURN_IF_ERROR(in->get(&index.num_passages_));
  MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&index.terms_));
  for (auto& fp : index.fields_) {
    MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&fp.offsets));
    MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&fp.passages));
    MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&fp.tfs));
    MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&fp.lengths));
    // Structural checks: a corrupt file must never index out of bounds.
    if (fp.offsets.size() != index.terms_.size() + 1 || fp.offsets.front() != 0 ||
        fp.offsets.back() != fp.passages.size() || fp.tfs.size() != fp.passages.size() ||
        fp.lengths.size() != index.num_passages_) {
      return in->corrupt("inconsistent postings sizes");
    }
    for (size_t t = 0; t + 1 < fp.offsets.size(); ++t) {
      if (fp.offsets[t] > fp.offsets[t + 1]) return in->corrupt("postings offsets not ascending");
    }
    for (uint32_t p : fp.passages) {
      if (p >= index.num_passages_) return in->corrupt("posting names an unknown passage");
    }
  }
  if (!(index.params_.k1 >= 0) || !(index.params_.b >= 0 && index.params_.b <= 1)) {
    return in->corrupt("invalid BM25 parameters");
  }
  index.index_vocabulary();
  index.compute_impacts();
  return index;
}

}  // namespace medsearch::lexical
