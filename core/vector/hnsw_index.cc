// The only translation unit that includes hnswlib.
#include <cmath>
#include <fstream>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <cpuid.h>
#include <sys/mman.h>
#include <x86intrin.h>
// hnswlib's headers define non-inline functions and variables (cpuid(),
// hnswlib::L2SqrSIMD16Ext, ...), so two TUs including them cannot be linked
// together. Renaming its namespace and its global functions here keeps
// medsearch linkable into programs that use hnswlib themselves. It is also
// why this file holds all of HnswIndex (search, updates, persistence; ~850
// lines) instead of one file per job: each part reaches into the graph.
// hnswlib.h carries its own CPU probe (cpuid, xgetbv, AVXCapable,
// AVX512Capable), called only by its L2Space/InnerProductSpace, which we do
// not use (KernelSpace below): it is compiled in but never runs. The
// library's one probe is core/internal/cpu.h.
#define hnswlib medsearch_hnswlib
#define cpuid medsearch_hnswlib_cpuid
#define xgetbv medsearch_hnswlib_xgetbv
#define AVXCapable medsearch_hnswlib_AVXCapable
#define AVX512Capable medsearch_hnswlib_AVX512Capable
// hnswlib 0.6.2's searchBaseLayer() prefetches the neighbour after the last
// one, reading 4 bytes at the end of an upper-layer link list, 3 of them past
// the allocation (inside malloc's rounding, so harmless in practice, but
// AddressSanitizer stops there). The prefetches exist only with USE_SSE, and
// hnswlib's own SIMD distances are unused (KernelSpace), so ASan builds drop them.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>
#undef cpuid
#undef xgetbv
#undef AVXCapable
#undef AVX512Capable
#include <roaring/roaring.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <shared_mutex>

#include "core/vector/hnsw_index.h"
#include "core/vector/id_map.h"
#include "core/vector/index_file.h"
#include "core/vector/kernels/distance.h"
#include "core/vector/quantizer.h"
#include "core/vector/rw_lock.h"
#include "core/vector/topk.h"
#include "core/vector/vector_index_inl.h"
#include "core/vector/vector_store.h"

namespace medsearch::vector {

namespace {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;
using internal::Neighbor;

// Our kernels behind hnswlib's SpaceInterface. `param` points to dim_.
class KernelSpace final : public hnswlib::SpaceInterface<float> {
 public:
  KernelSpace(size_t dim, Metric metric, VectorDType dtype, const kernels::DistanceKernels& k) : dim_(dim) {
    const bool l2 = metric == Metric::kL2;
    if (dtype == VectorDType::kFloat32) {
      data_size_ = dim * sizeof(float);
      func_ = l2 ? k.l2sq_f32_graph : k.neg_dot_f32;
    } else {
      data_size_ = dim;
      func_ = l2 ? k.l2sq_i8_graph : k.neg_dot_i8;
    }
  }
  size_t get_data_size() override { return data_size_; }
  hnswlib::DISTFUNC<float> get_dist_func() override { return func_; }
  void* get_dist_func_param() override { return &dim_; }

  size_t dim_;
  size_t data_size_;
  hnswlib::DISTFUNC<float> func_;
};

// Per-thread search scratch, reused across calls and indexes.
struct Scratch {
  std::vector<Neighbor> top, cand;
  std::vector<tableint> fresh;  // one expansion's unvisited neighbours
  std::vector<int8_t> code;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// hnswlib's level-0 link list: a 16-bit count, a byte of flags (bit 0 =
// deleted), a zero byte, then up to maxM0 node ids.
inline uint16_t list_count(const unsigned* ll) { return *reinterpret_cast<const uint16_t*>(ll); }

// hnswlib's insertion locks: one std::mutex (40 bytes) per node slot and
// 65,536 update locks (2.6 MB). Only addPoint() takes them (our search walk
// and markDeletedInternal() never lock), so a graph that is not being
// inserted into does not need them: at 100 dimensions, int8, they are 1/6 of
// the index. Re-creating them is a memset of 40 bytes per slot.
void ensure_insert_locks(Graph& g) {
  if (g.link_list_locks_.size() < g.max_elements_) std::vector<std::mutex>(g.max_elements_).swap(g.link_list_locks_);
  if (g.link_list_update_locks_.size() < Graph::max_update_element_locks) {
    std::vector<std::mutex>(Graph::max_update_element_locks).swap(g.link_list_update_locks_);
  }
}
// Asks for transparent huge pages on the level-0 block (links, vector and
// label of every node: nearly all of the graph). A search touches a few
// hundred random nodes; with 4 KiB pages each is also a TLB miss once the
// block outgrows the TLB's reach (~8 MB). Must run before the pages are
// first touched (hnswlib's constructor and resizeIndex() do not touch the
// new part); a no-op where THP is off. Nodes are filled in order, so the
// resident size grows by at most one 2 MiB page past the last node. Measured on the 30k x 384 PDQ
// embeddings (loaded index, THP "madvise", CPU us/query, median of 2 x 2
// rounds, 4 KiB -> 2 MiB pages): int8 ef 16 30.4 -> 28.0, float32 ef 10
// 42.0 -> 34.0.
void advise_huge_pages(const Graph& g) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(g.data_level0_memory_);
  const uintptr_t lo = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (begin + g.max_elements_ * g.size_data_per_element_) & ~(kHuge - 1);
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
}
void drop_insert_locks(Graph& g) {
  std::vector<std::mutex>().swap(g.link_list_locks_);
  std::vector<std::mutex>().swap(g.link_list_update_locks_);
}

}  // namespace

struct HnswIndex::Impl {
  explicit Impl(const IndexOptions& o)
      : opt(o),
        kern(&kernels::best_kernels()),
        space(o.dim, o.metric, o.dtype, *kern),
        floats(o.dim, VectorStore::Backing::kSpill) {}

  bool int8() const { return opt.dtype == VectorDType::kInt8; }
  bool has_floats() const { return int8() && opt.keep_float32; }
  size_t code_bytes() const { return space.data_size_; }

  float exact_dist(const float* q, tableint node, const Graph& g) const {
    const float* x;
    if (!int8()) {
      x = reinterpret_cast<const float*>(g.getDataByInternalId(node));
    } else {
      x = floats.row(node);  // callers check has_floats()
    }
    return opt.metric == Metric::kL2 ? kern->l2sq_f32(q, x, opt.dim) : -kern->dot_f32(q, x, opt.dim);
  }
  // int8 graph distance -> float distance in the original units.
  float approx_to_exact_scale(float d, float qscale) const {
    const float s = quant.scale();
    return opt.metric == Metric::kL2 ? d * s * s : d * s * qscale;
  }

  // The int8 form of a query, in scratch; *qscale receives its scale.
  const void* prepare_code(const float* q, Scratch& s, float* qscale) const {
    s.code.resize(opt.dim);
    if (opt.metric == Metric::kL2) {
      quant.encode(q, opt.dim, s.code.data());  // L2 needs the data's own scale
      *qscale = quant.scale();
    } else {
      *qscale = internal::Int8Quantizer::encode_own_scale(q, opt.dim, s.code.data());
    }
    return s.code.data();
  }

  template <bool kCheck>
  void walk(const Graph& g, const void* q, size_t ef, const roaring_bitmap_t* filter, Scratch& s) const;
  void search_one(const float* q, const SearchParams& p, size_t ef, bool exact, DocId* ids, float* scores) const;
  void exact_filtered(const float* q, const SearchParams& p, DocId* ids, float* scores) const;

  Status reserve(Graph* g, size_t n);
  Status insert(Graph& g, VectorStore* fl, size_t n, const std::function<const void*(size_t)>& code_of,
                const std::function<const float*(size_t)>& float_of, const DocId* labels,
                std::vector<internal::IdMap::Entry>* entries);
  void write_out(std::vector<Neighbor>& c, const Graph& g, uint32_t k, DocId* ids, float* scores) const;

  IndexOptions opt;
  const kernels::DistanceKernels* kern;
  KernelSpace space;  // outlives graph (the graph points into it)

  // Lock order: write_mu, then mu.
  std::mutex write_mu;            // serialises add / remove / compact
  mutable internal::RwLock mu;    // search shared; mutations of the fields below exclusive
  std::unique_ptr<Graph> graph;   // null while nothing was ever added
  VectorStore floats;             // int8 + keep_float32: float32 rows by node id
  internal::Int8Quantizer quant;
  internal::IdMap ids;            // live doc id -> node
  DocId next_id = 0;
};

// Where the exact scan over the allowed ids beats the filtered graph walk.
// The walk must collect ef allowed nodes, so it expands about ef / p nodes
// (p = allowed / live) and computes up to 2M distances per expansion:
// cost_graph ~ c_g * ef * 2M * live / allowed. The scan costs one merge step
// into the id map plus one float32 distance per allowed id:
// cost_exact ~ c_e * allowed. Equal when allowed^2 = (c_g / c_e) * 2M * ef * live.
// Measured with bench/vector/hnsw_bench.cc BM_FilteredSearch (50k x 100,
// unit vectors, M = 16, ef = 64, float32, uniform random filters):
//   allowed   1.5k   5.1k   15k    (per query, CPU time)
//   graph     2.6ms  680us  197us  -> c_g ~ 33 ns
//   exact     124us  534us  2.9ms  -> c_e ~ 105 ns with a binary search per
//                                     id, ~40-60 ns with the merge walk
// so c_g / c_e ~ 0.6 and the crossover is near 10 % selectivity (~5-7k of
// 50k). Filters correlated with the graph's clusters (cancer type, corpus)
// make the walk cheaper than this uniform case; the scan's cost does not
// depend on correlation, so erring towards the graph above the crossover is
// the safer side.
bool HnswIndex::use_exact_filter(uint64_t allowed, uint64_t live, uint32_t ef, uint32_t M) {
  if (allowed <= 256) return true;
  const double a = static_cast<double>(allowed);
  return a * a < 0.6 * 2.0 * M * static_cast<double>(ef) * static_cast<double>(live);
}

HnswIndex::HnswIndex(const IndexOptions& options) : impl_(std::make_unique<Impl>(options)) {}
HnswIndex::~HnswIndex() = default;

const IndexOptions& HnswIndex::options() const { return impl_->opt; }
size_t HnswIndex::size() const {
  std::shared_lock lock(impl_->mu);
  return impl_->ids.size();
}
bool HnswIndex::contains(DocId id) const {
  std::shared_lock lock(impl_->mu);
  return impl_->ids.contains(id);
}
DocId HnswIndex::next_doc_id() const {
  std::shared_lock lock(impl_->mu);
  return impl_->next_id;
}

// ---------------------------------------------------------------- search

template <bool kCheck>
void HnswIndex::Impl::walk(const Graph& g, const void* q, size_t ef, const roaring_bitmap_t* filter,
                           Scratch& s) const {
  const hnswlib::DISTFUNC<float> dist = space.func_;
  const void* dp = &space.dim_;
  // Prefetch distance for a row's lines. Rows are unaligned (hnswlib puts
  // them after the 4 + 8M bytes of links), so a row of b bytes touches up to
  // b / 64 + 1 lines. Up to kHeadLines lines of every unvisited neighbour are
  // requested before any is scored; longer rows (float32 at high dimension)
  // get the rest kTailAhead neighbours ahead, so the requests in flight do
  // not exceed what the core can track. Measured with one query per call
  // (CPU us/query, median of 3 interleaved rounds, old -> new), the old
  // scheme being hnswlib's (one or two lines of the next neighbour only):
  //   30k x 384 PDQ embeddings, ef = 10:  int8 29.6 -> 24.7, float32 43.7 -> 39.6
  //   GloVe-100 100k subset,   ef = 128: int8 298 -> 255,   float32 323 -> 261
  // The results are unchanged: neighbours are scored in the same order.
  constexpr size_t kHeadLines = 8, kTailAhead = 2;
  const size_t row_lines = code_bytes() / 64 + 1;
  const size_t head_lines = std::min(row_lines, kHeadLines);
  // Greedy descent through the upper levels.
  tableint cur = g.enterpoint_node_;
  float curd = dist(q, g.getDataByInternalId(cur), dp);
  for (int level = g.maxlevel_; level > 0; --level) {
    bool changed = true;
    while (changed) {
      changed = false;
      const unsigned* ll = g.get_linklist(cur, level);
      const unsigned n = list_count(ll);
      const tableint* nb = ll + 1;
      for (unsigned i = 0; i < n; ++i) {
        if (i + 1 < n) prefetch(g.getDataByInternalId(nb[i + 1]));
        const float d = dist(q, g.getDataByInternalId(nb[i]), dp);
        if (d < curd) {
          curd = d;
          cur = nb[i];
          changed = true;
        }
      }
    }
  }
  // Best-first search of level 0 with a candidate list of size ef.
  auto accept = [&](tableint id) {
    if constexpr (!kCheck) {
      return true;
    } else {
      if (g.isMarkedDeleted(id)) return false;
      return filter == nullptr || roaring_bitmap_contains(filter, static_cast<uint32_t>(g.getExternalLabel(id)));
    }
  };
  auto cand_after = [](const Neighbor& a, const Neighbor& b) { return b < a; };  // min-heap
  auto& top = s.top;
  auto& cand = s.cand;
  top.clear();
  cand.clear();
  if (s.fresh.size() < g.maxM0_) s.fresh.resize(g.maxM0_);
  tableint* fresh = s.fresh.data();
  hnswlib::VisitedList* vl = g.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = vl->mass;
  const hnswlib::vl_type tag = vl->curV;
  float lower = std::numeric_limits<float>::infinity();
  if (accept(cur)) {
    top.push_back({curd, cur});
    lower = curd;
  }
  cand.push_back({curd, cur});
  visited[cur] = tag;
  while (!cand.empty()) {
    const Neighbor c = cand.front();
    // Without deletions or a filter every visited node is a result, and the
    // search stops at the first candidate worse than the worst result.
    if (c.dist > lower && (!kCheck || top.size() >= ef)) break;
    std::pop_heap(cand.begin(), cand.end(), cand_after);
    cand.pop_back();
    const unsigned* ll = g.get_linklist0(c.id);
    const unsigned n = list_count(ll);
    const tableint* nb = ll + 1;
    auto consider = [&](tableint id) {
      const float d = dist(q, g.getDataByInternalId(id), dp);
      if (top.size() < ef || d < lower) {
        cand.push_back({d, id});
        std::push_heap(cand.begin(), cand.end(), cand_after);
        prefetch(g.get_linklist0(cand.front().id));
        if (accept(id)) {
          top.push_back({d, id});
          std::push_heap(top.begin(), top.end());
          if (top.size() > ef) {
            std::pop_heap(top.begin(), top.end());
            top.pop_back();
          }
        }
        if (!top.empty()) lower = top.front().dist;
      }
    };
    // First mark the unvisited neighbours and start loading their rows, then
    // score them: the misses overlap instead of costing one round trip each
    // (hnswlib prefetches one line of the next neighbour only).
    unsigned m = 0;
    for (unsigned j = 0; j < n; ++j) {
      const tableint id = nb[j];
      if (visited[id] == tag) continue;
      visited[id] = tag;
      fresh[m++] = id;
      const char* row = g.getDataByInternalId(id);
      for (size_t l = 0; l < head_lines; ++l) prefetch(row + 64 * l);
    }
    for (unsigned j = 0; j < m; ++j) {
      if (head_lines < row_lines && j + kTailAhead < m) {
        const char* row = g.getDataByInternalId(fresh[j + kTailAhead]);
        for (size_t l = head_lines; l < row_lines; ++l) prefetch(row + 64 * l);
      }
      consider(fresh[j]);
    }
  }
  g.visited_list_pool_->releaseVisitedList(vl);
}

void HnswIndex::Impl::write_out(std::vector<Neighbor>& c, const Graph& g, uint32_t k, DocId* out_ids,
                                float* out_scores) const {
  // Ties broken by doc id, so equal scores come back in a stable order.
  std::sort(c.begin(), c.end(), [&](const Neighbor& a, const Neighbor& b) {
    return a.dist < b.dist || (a.dist == b.dist && g.getExternalLabel(a.id) < g.getExternalLabel(b.id));
  });
  for (size_t i = 0; i < c.size() && i < k; ++i) {
    out_ids[i] = static_cast<DocId>(g.getExternalLabel(c[i].id));
    out_scores[i] = internal::score_from_dist(c[i].dist, opt.metric);
  }
}

void HnswIndex::Impl::exact_filtered(const float* q, const SearchParams& p, DocId* out_ids, float* out_scores) const {
  const Graph& g = *graph;
  internal::TopK top(p.k);
  // Without float32 rows (keep_float32 = false) the scan uses int8 distances.
  const bool approx = int8() && !has_floats();
  float qscale = 1.0f;
  const void* gq = approx ? prepare_code(q, scratch(), &qscale) : nullptr;
  struct Ctx {
    const Impl* self;
    const Graph* g;
    const float* q;
    const void* gq;
    float qscale;
    internal::TopK* top;
    size_t pos;
  } ctx{this, &g, q, gq, qscale, &top, 0};
  roaring_iterate(
      p.filter->raw(),
      [](uint32_t id, void* arg) {
        auto* c = static_cast<Ctx*>(arg);
        if (auto node = c->self->ids.find_from(&c->pos, id)) {
          const float d = c->gq ? c->self->approx_to_exact_scale(
                                      c->self->space.func_(c->gq, c->g->getDataByInternalId(*node), &c->self->space.dim_),
                                      c->qscale)
                                : c->self->exact_dist(c->q, *node, *c->g);
          c->top->push(d, *node);
        }
        return true;
      },
      &ctx);
  std::vector<Neighbor> c = top.take_sorted();
  write_out(c, g, p.k, out_ids, out_scores);
}

void HnswIndex::Impl::search_one(const float* q, const SearchParams& p, size_t ef, bool exact, DocId* out_ids,
                                 float* out_scores) const {
  if (exact) return exact_filtered(q, p, out_ids, out_scores);
  const Graph& g = *graph;
  Scratch& s = scratch();
  float qscale = 1.0f;
  const void* gq = int8() ? prepare_code(q, s, &qscale) : q;
  const roaring_bitmap_t* filter = p.filter ? p.filter->raw() : nullptr;
  if (filter || g.num_deleted_ > 0) {
    walk<true>(g, gq, ef, filter, s);
  } else {
    walk<false>(g, gq, ef, nullptr, s);
  }
  std::vector<Neighbor>& c = s.top;
  std::sort_heap(c.begin(), c.end());
  if (int8()) {
    if (has_floats() && p.rescore != 0) {
      // Exact second stage over the best r int8 candidates (never fewer than
      // k). Default r = max(4k, 40): measured on 50k x 100 unit vectors, it
      // loses <= 0.0002 recall@10 against rescoring all ef candidates and
      // saves ~20 % of the query time at ef = 128 (the float32 rows are
      // random reads from a file-backed mapping).
      size_t r = c.size();
      const size_t want = p.rescore > 0 ? static_cast<size_t>(p.rescore) : std::max<size_t>(4 * size_t{p.k}, 40);
      r = std::min(r, std::max<size_t>(want, p.k));
      c.resize(r);
      for (size_t i = 0; i < r; ++i) {
        if (i + 2 < r) prefetch(floats.row(c[i + 2].id));
        c[i].dist = exact_dist(q, c[i].id, g);
      }
    } else {
      for (auto& n : c) n.dist = approx_to_exact_scale(n.dist, qscale);
    }
  }
  write_out(c, g, p.k, out_ids, out_scores);
}

Status HnswIndex::search(MatrixView queries, const SearchParams& params, std::span<DocId> out_ids,
                         std::span<float> out_scores) const {
  Impl& m = *impl_;
  MEDSEARCH_RETURN_IF_ERROR(internal::check_search(queries, m.opt.dim, params, out_ids, out_scores));
  const size_t nq = queries.rows, k = params.k;
  internal::fill_empty(out_ids.first(nq * k), out_scores.first(nq * k));
  std::vector<float> qbuf;
  const float* q = queries.data;
  const size_t qstride = queries.stride ? queries.stride : queries.dim;
  if (m.opt.metric == Metric::kCosine || qstride != m.opt.dim) {
    qbuf = internal::prepare_rows(queries, m.opt.metric);
    q = qbuf.data();
  }
  std::shared_lock lock(m.mu);
  if (!m.graph || m.ids.empty() || nq == 0) return Status::ok();
  const size_t ef = std::max<size_t>(params.ef ? params.ef : kDefaultEf, k);
  bool exact = false;
  if (params.filter) {
    const uint64_t allowed = params.filter->cardinality();
    if (allowed == 0) return Status::ok();
    exact = params.filter_mode == FilterMode::kExact ||
            (params.filter_mode == FilterMode::kAuto && use_exact_filter(allowed, m.ids.size(), static_cast<uint32_t>(ef), m.opt.M));
  }
  if (nq == 1) {
    m.search_one(q, params, ef, exact, out_ids.data(), out_scores.data());
    return Status::ok();
  }
  // Isolated: this thread holds the shared lock and must not run a stolen
  // task that waits for the exclusive one.
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, nq, 1), [&](const tbb::blocked_range<size_t>& r) {
      for (size_t i = r.begin(); i < r.end(); ++i) {
        m.search_one(q + i * m.opt.dim, params, ef, exact, out_ids.data() + i * k, out_scores.data() + i * k);
      }
    });
  });
  return Status::ok();
}

// ---------------------------------------------------------------- updates

Status HnswIndex::Impl::reserve(Graph* g, size_t n) {
  try {
    if (g->max_elements_ < n) {
      g->resizeIndex(std::max(n, g->max_elements_ + g->max_elements_ / 2));
      advise_huge_pages(*g);
    }
  } catch (const std::exception& e) {
    return Status::internal(std::string("cannot grow the graph: ") + e.what());
  }
  return Status::ok();
}

// Inserts n rows into g (which has room). The first row of an empty graph goes
// in alone, then the rest in parallel (hnswlib's addPoint locks per node).
Status HnswIndex::Impl::insert(Graph& g, VectorStore* fl, size_t n, const std::function<const void*(size_t)>& code_of,
                               const std::function<const float*(size_t)>& float_of, const DocId* labels,
                               std::vector<internal::IdMap::Entry>* entries) {
  entries->resize(n);
  auto one = [&](size_t i) {
    const tableint node = g.addPoint(code_of(i), labels[i], -1);
    if (fl) fl->set_row(node, float_of(i));
    (*entries)[i] = {labels[i], node};
  };
  try {
    size_t start = 0;
    if (g.cur_element_count == 0 && n > 0) {
      one(0);
      start = 1;
    }
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(start, n, 16), [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i < r.end(); ++i) one(i);
      });
    });
  } catch (const std::exception& e) {
    return Status::internal(std::string("hnswlib insert failed: ") + e.what());
  }
  // Labels are doc ids and IdMap maps them back; hnswlib's own label map
  // would cost ~40 bytes per vector, and nothing we call reads it.
  std::unordered_map<hnswlib::labeltype, tableint>().swap(g.label_lookup_);
  return Status::ok();
}

Status HnswIndex::add(MatrixView rows, std::span<const DocId> ids) {
  Impl& m = *impl_;
  MEDSEARCH_RETURN_IF_ERROR(internal::check_rows(rows, m.opt.dim, "rows"));
  std::lock_guard write(m.write_mu);
  // m.ids, m.next_id, m.quant and the graph's shape change only under
  // write_mu, which we hold, so reading them here needs no shared lock.
  auto resolved = internal::resolve_ids(ids, rows.rows, m.next_id, [&](DocId id) { return m.ids.contains(id); });
  if (!resolved) return resolved.status();
  const size_t count = m.graph ? m.graph->cur_element_count : 0;
  if (count + rows.rows >= kInvalidDocId) return Status::invalid_argument("index full (2^32 - 1 nodes)");
  if (rows.rows == 0) return Status::ok();
  const std::vector<float> prepared = internal::prepare_rows(rows, m.opt.metric);
  const size_t dim = m.opt.dim;
  std::vector<int8_t> codes;
  if (m.int8()) {
    internal::Int8Quantizer quant = m.quant;
    if (!quant.fitted()) quant.fit(MatrixView{prepared.data(), rows.rows, dim, dim});
    codes.resize(rows.rows * dim);
    tbb::parallel_for(size_t{0}, rows.rows, [&](size_t i) { quant.encode(prepared.data() + i * dim, dim, codes.data() + i * dim); });
    std::unique_lock lock(m.mu);
    m.quant = quant;
  }
  {
    // Room for the whole batch at once: one reallocation, no slack.
    std::unique_lock lock(m.mu);
    if (m.graph) MEDSEARCH_RETURN_IF_ERROR(m.reserve(m.graph.get(), m.graph->cur_element_count + rows.rows));
    if (m.has_floats()) MEDSEARCH_RETURN_IF_ERROR(m.floats.reserve(count + rows.rows));
  }
  for (size_t b = 0; b < rows.rows; b += kAddChunk) {
    const size_t e = std::min(rows.rows, b + kAddChunk);
    std::unique_lock lock(m.mu);
    if (!m.graph) {
      try {
        m.graph = std::make_unique<Graph>(&m.space, rows.rows, m.opt.M, m.opt.ef_construction, m.opt.seed);
        advise_huge_pages(*m.graph);
      } catch (const std::exception& ex) {
        return Status::internal(std::string("cannot allocate the graph: ") + ex.what());
      }
    }
    MEDSEARCH_RETURN_IF_ERROR(m.reserve(m.graph.get(), m.graph->cur_element_count + (e - b)));
    try {
      ensure_insert_locks(*m.graph);
    } catch (const std::exception& ex) {
      return Status::internal(std::string("cannot allocate the insertion locks: ") + ex.what());
    }
    VectorStore* fl = nullptr;
    if (m.has_floats()) {
      MEDSEARCH_RETURN_IF_ERROR(m.floats.resize(m.graph->cur_element_count + (e - b)));
      fl = &m.floats;
    }
    std::vector<internal::IdMap::Entry> entries;
    auto code_of = [&](size_t i) -> const void* {
      return m.int8() ? static_cast<const void*>(codes.data() + (b + i) * dim)
                      : static_cast<const void*>(prepared.data() + (b + i) * dim);
    };
    auto float_of = [&](size_t i) { return prepared.data() + (b + i) * dim; };
    MEDSEARCH_RETURN_IF_ERROR(m.insert(*m.graph, fl, e - b, code_of, float_of, resolved->data() + b, &entries));
    for (const auto& en : entries) m.next_id = std::max<DocId>(m.next_id, en.first + 1);
    m.ids.insert(std::move(entries));
  }
  // Free the insertion locks when this call added at least 1/8 of the nodes:
  // re-creating them for the next add() then costs at most 8 x 40 bytes of
  // memset per row inserted here, nothing next to an insertion (tens of us).
  // An index grown by many small adds keeps them instead of paying O(size)
  // per add. load() and compact() free them too.
  std::unique_lock lock(m.mu);
  if (rows.rows * 8 >= m.graph->cur_element_count) drop_insert_locks(*m.graph);
  return Status::ok();
}

Status HnswIndex::remove(std::span<const DocId> ids) {
  Impl& m = *impl_;
  std::lock_guard write(m.write_mu);
  std::vector<DocId> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i] == sorted[i - 1]) return Status::invalid_argument("id " + std::to_string(sorted[i]) + " given twice");
    if (!m.ids.contains(sorted[i])) return Status::unknown_id("id " + std::to_string(sorted[i]) + " is not in the index");
  }
  std::unique_lock lock(m.mu);
  for (uint32_t node : m.ids.erase(sorted)) m.graph->markDeletedInternal(node);
  return Status::ok();
}

Status HnswIndex::compact() {
  Impl& m = *impl_;
  std::lock_guard write(m.write_mu);
  if (!m.graph || m.graph->num_deleted_ == 0) return Status::ok();
  // Build beside the live graph: searches keep running on the old one (we are
  // the only writer, so reading it without the lock is safe).
  const Graph& old = *m.graph;
  std::vector<tableint> nodes;
  std::vector<DocId> labels;
  for (tableint i = 0; i < old.cur_element_count; ++i) {
    if (old.isMarkedDeleted(i)) continue;
    nodes.push_back(i);
    labels.push_back(static_cast<DocId>(old.getExternalLabel(i)));
  }
  std::unique_ptr<Graph> fresh;
  try {
    fresh = std::make_unique<Graph>(&m.space, std::max<size_t>(nodes.size(), 1), m.opt.M, m.opt.ef_construction,
                                    m.opt.seed);
    advise_huge_pages(*fresh);
  } catch (const std::exception& ex) {
    return Status::internal(std::string("cannot allocate the graph: ") + ex.what());
  }
  VectorStore fl(m.opt.dim, VectorStore::Backing::kSpill);
  if (m.has_floats()) MEDSEARCH_RETURN_IF_ERROR(fl.resize(nodes.size()));
  std::vector<internal::IdMap::Entry> entries;
  MEDSEARCH_RETURN_IF_ERROR(m.insert(
      *fresh, m.has_floats() ? &fl : nullptr, nodes.size(),
      [&](size_t i) -> const void* { return old.getDataByInternalId(nodes[i]); },
      [&](size_t i) { return m.floats.row(nodes[i]); }, labels.data(), &entries));
  internal::IdMap idmap;
  idmap.insert(std::move(entries));
  drop_insert_locks(*fresh);
  std::unique_lock lock(m.mu);
  m.graph = std::move(fresh);
  m.floats = std::move(fl);
  m.ids = std::move(idmap);
  return Status::ok();
}

// ---------------------------------------------------------------- persistence

namespace {
struct GraphHeader {
  int32_t maxlevel;
  uint32_t enterpoint;
  uint64_t size_data_per_element;
  uint64_t size_links_per_element;
  uint64_t offset_data;
  uint64_t label_offset;
};
}  // namespace

// Payload: u64 dim, u8 metric, u8 dtype, u8 keep_float32, u8 0, u32 M,
// u32 ef_construction, u32 seed, f32 int8 scale, u32 next_id, u64 nodes;
// if nodes > 0: GraphHeader, pad 64, level 0 (nodes * size_data_per_element:
// links, vector, label per node, hnswlib's layout), u32[nodes] levels, the
// upper-level link lists back to back; int8 + keep_float32: pad 64,
// f32[nodes * dim] rescoring rows (mapped in place on load).
Status HnswIndex::save(const std::filesystem::path& path) const {
  const Impl& m = *impl_;
  std::shared_lock lock(m.mu);
  auto w = internal::create_index_file(path, IndexKind::kHnsw);
  if (!w) return w.status();
  auto& f = *w;
  const uint8_t flags[4] = {static_cast<uint8_t>(m.opt.metric), static_cast<uint8_t>(m.opt.dtype),
                            static_cast<uint8_t>(m.opt.keep_float32), 0};
  f.put<uint64_t>(m.opt.dim);
  f.write(flags, 4);
  f.put<uint32_t>(m.opt.M);
  f.put<uint32_t>(m.opt.ef_construction);
  f.put<uint32_t>(m.opt.seed);
  f.put<float>(m.quant.scale());
  f.put<uint32_t>(m.next_id);
  const uint64_t nodes = m.graph ? m.graph->cur_element_count : 0;
  f.put<uint64_t>(nodes);
  if (nodes == 0) return internal::finish_index_file(f);
  const Graph& g = *m.graph;
  const GraphHeader h{g.maxlevel_, g.enterpoint_node_, g.size_data_per_element_, g.size_links_per_element_,
                      g.offsetData_, g.label_offset_};
  f.put(h);
  f.align(64);
  f.write(g.data_level0_memory_, nodes * g.size_data_per_element_);
  std::vector<uint32_t> levels(g.element_levels_.begin(), g.element_levels_.begin() + static_cast<ptrdiff_t>(nodes));
  f.write(levels.data(), levels.size() * sizeof(uint32_t));
  for (size_t i = 0; i < nodes; ++i) {
    if (levels[i] > 0) f.write(g.linkLists_[i], g.size_links_per_element_ * levels[i]);
  }
  if (m.has_floats()) {
    f.align(64);
    f.write(m.floats.data(), nodes * m.opt.dim * sizeof(float));
  }
  return internal::finish_index_file(f);
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::load(std::shared_ptr<const internal::MappedFile> file,
                                                   const std::string& name) {
  auto c = internal::payload_reader(*file, name);
  uint64_t dim = 0, nodes = 0;
  uint8_t flags[4];
  uint32_t M = 0, efc = 0, seed = 0, next_id = 0;
  float scale = 0;
  MEDSEARCH_RETURN_IF_ERROR(c.get(&dim));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&flags));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&M));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&efc));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&seed));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&scale));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&next_id));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&nodes));
  IndexOptions o;
  o.kind = IndexKind::kHnsw;
  o.dim = dim;
  o.metric = static_cast<Metric>(flags[0]);
  o.dtype = static_cast<VectorDType>(flags[1]);
  o.keep_float32 = flags[2] != 0;
  o.M = M;
  o.ef_construction = efc;
  o.seed = seed;
  if (flags[0] > 2 || flags[1] > 1 || flags[2] > 1 || !internal::check_options(o).is_ok()) {
    return c.corrupt("bad options");
  }
  if (!std::isfinite(scale) || scale < 0) return c.corrupt("bad int8 scale");
  if (nodes >= kInvalidDocId) return c.corrupt("bad node count");
  auto index = std::make_unique<HnswIndex>(o);
  Impl& m = *index->impl_;
  m.quant.set_scale(scale);
  m.next_id = next_id;
  if (nodes == 0) {
    if (!c.at_end()) return c.corrupt("trailing data");
    return index;
  }
  GraphHeader h{};
  MEDSEARCH_RETURN_IF_ERROR(c.get(&h));
  const size_t maxM = M, maxM0 = 2 * size_t{M};
  const size_t links0 = maxM0 * sizeof(tableint) + sizeof(hnswlib::linklistsizeint);
  const size_t links = maxM * sizeof(tableint) + sizeof(hnswlib::linklistsizeint);
  const size_t data_size = m.space.data_size_;
  if (h.size_data_per_element != links0 + data_size + sizeof(hnswlib::labeltype) ||
      h.size_links_per_element != links || h.offset_data != links0 || h.label_offset != links0 + data_size) {
    return c.corrupt("graph layout does not match the options");
  }
  if (h.enterpoint >= nodes || h.maxlevel < 0 || h.maxlevel > 64) return c.corrupt("bad entry point");
  if (nodes > SIZE_MAX / h.size_data_per_element) return c.corrupt("bad node count");
  const char *level0 = nullptr, *levels_p = nullptr;
  MEDSEARCH_RETURN_IF_ERROR(c.view(nodes * h.size_data_per_element, 64, &level0));
  MEDSEARCH_RETURN_IF_ERROR(c.view(nodes * sizeof(uint32_t), 1, &levels_p));
  std::vector<uint32_t> levels(nodes);
  std::memcpy(levels.data(), levels_p, nodes * sizeof(uint32_t));
  std::unique_ptr<Graph> g;
  try {
    g = std::make_unique<Graph>(&m.space, nodes, M, efc, seed);
    advise_huge_pages(*g);
  } catch (const std::exception& ex) {
    return Status::internal(std::string("cannot allocate the graph: ") + ex.what());
  }
  std::memcpy(g->data_level0_memory_, level0, nodes * h.size_data_per_element);
  uint32_t top_level = 0;
  // Fill every node first so the destructor can free what we allocated even
  // if validation fails half-way.
  g->cur_element_count = nodes;
  for (size_t i = 0; i < nodes; ++i) {
    g->element_levels_[i] = 0;
    g->linkLists_[i] = nullptr;
  }
  for (size_t i = 0; i < nodes; ++i) {
    if (levels[i] > static_cast<uint32_t>(h.maxlevel)) return c.corrupt("node level above the top level");
    top_level = std::max(top_level, levels[i]);
    if (levels[i] == 0) continue;
    const char* p;
    MEDSEARCH_RETURN_IF_ERROR(c.view(links * levels[i], 1, &p));
    g->linkLists_[i] = static_cast<char*>(std::malloc(links * levels[i] + 1));
    if (!g->linkLists_[i]) return Status::internal("out of memory loading the graph");
    std::memcpy(g->linkLists_[i], p, links * levels[i]);
    g->element_levels_[i] = static_cast<int>(levels[i]);
  }
  if (top_level != static_cast<uint32_t>(h.maxlevel) || levels[h.enterpoint] != top_level) {
    return c.corrupt("entry point is not on the top level");
  }
  // Every link must point at a node that has that level.
  std::vector<internal::IdMap::Entry> entries;
  size_t deleted = 0;
  for (size_t i = 0; i < nodes; ++i) {
    const unsigned char* ll0 = reinterpret_cast<const unsigned char*>(g->get_linklist0(static_cast<tableint>(i)));
    if (ll0[3] != 0 || (ll0[2] & ~1u) != 0) return c.corrupt("bad node flags");
    for (uint32_t level = 0; level <= levels[i]; ++level) {
      const unsigned* ll = g->get_linklist_at_level(static_cast<tableint>(i), static_cast<int>(level));
      const unsigned n = list_count(ll);
      if (n > (level == 0 ? maxM0 : maxM)) return c.corrupt("link list too long");
      for (unsigned j = 0; j < n; ++j) {
        const tableint t = ll[1 + j];
        if (t >= nodes || levels[t] < level) return c.corrupt("link to a missing node");
      }
    }
    const auto label = g->getExternalLabel(static_cast<tableint>(i));
    if (label >= kInvalidDocId || label >= next_id) return c.corrupt("bad doc id");
    if (ll0[2] & 1u) {
      ++deleted;
    } else {
      entries.emplace_back(static_cast<DocId>(label), static_cast<uint32_t>(i));
    }
  }
  g->maxlevel_ = h.maxlevel;
  g->enterpoint_node_ = h.enterpoint;
  drop_insert_locks(*g);  // add() re-creates them
  g->num_deleted_ = deleted;
  m.ids.insert(std::move(entries));
  for (size_t i = 1; i < m.ids.entries().size(); ++i) {
    if (m.ids.entries()[i].first == m.ids.entries()[i - 1].first) return c.corrupt("duplicate doc id");
  }
  m.graph = std::move(g);
  if (m.has_floats()) {
    const char* rows;
    if (nodes > SIZE_MAX / (dim * sizeof(float))) return c.corrupt("bad node count");
    MEDSEARCH_RETURN_IF_ERROR(c.view(nodes * dim * sizeof(float), 64, &rows));
    m.floats = VectorStore::mapped(dim, VectorStore::Backing::kSpill, file, reinterpret_cast<const float*>(rows), nodes);
  }
  if (!c.at_end()) return c.corrupt("trailing data");
  return index;
}

size_t HnswIndex::memory_bytes() const {
  const Impl& m = *impl_;
  std::shared_lock lock(m.mu);
  size_t bytes = sizeof(Impl) + m.ids.memory_bytes() + m.floats.heap_bytes();
  if (m.graph) {
    const Graph& g = *m.graph;
    bytes += g.max_elements_ * (g.size_data_per_element_ + sizeof(void*) + sizeof(int));
    bytes += (g.link_list_locks_.size() + g.link_list_update_locks_.size()) * sizeof(std::mutex);
    bytes += g.max_elements_ * sizeof(hnswlib::vl_type);  // one visited list; one more per concurrent searcher
    bytes += g.label_lookup_.bucket_count() * sizeof(void*) + g.label_lookup_.size() * 32;
    for (size_t i = 0; i < g.cur_element_count; ++i) {
      if (g.element_levels_[i] > 0) bytes += g.size_links_per_element_ * g.element_levels_[i] + 1;
    }
  }
  return bytes;
}

size_t HnswIndex::mapped_bytes() const {
  std::shared_lock lock(impl_->mu);
  return impl_->floats.mapped_bytes();
}

}  // namespace medsearch::vector
