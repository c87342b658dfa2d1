#include "core/vector/flat_index.h"

#include <roaring/roaring.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>

#include "core/embed/kernels/dense.h"
#include "core/vector/index_file.h"
#include "core/vector/kernels/distance.h"
#include "core/vector/vector_index_inl.h"

namespace medsearch::vector {

using internal::TopK;

namespace {
constexpr size_t kScanBlock = 16384;  // rows per parallel task for one query
constexpr size_t kQueryBlock = 64;    // GEMM tile: queries
constexpr size_t kRowBlock = 2048;    // GEMM tile: rows (64 x 2048 floats = 512 KiB of scores)
}  // namespace

FlatIndex::FlatIndex(const IndexOptions& options)
    : opt_(options), rows_(options.dim, VectorStore::Backing::kHeap) {}

size_t FlatIndex::size() const {
  std::shared_lock lock(mu_);
  return live_;
}
bool FlatIndex::contains(DocId id) const {
  std::shared_lock lock(mu_);
  return ids_.contains(id);
}
DocId FlatIndex::next_doc_id() const {
  std::shared_lock lock(mu_);
  return next_id_;
}

Status FlatIndex::add(MatrixView rows, std::span<const DocId> ids) {
  MEDSEARCH_RETURN_IF_ERROR(internal::check_rows(rows, opt_.dim, "rows"));
  std::lock_guard write(write_mu_);
  // ids_ and next_id_ change only under write_mu_, which we hold.
  auto resolved = internal::resolve_ids(ids, rows.rows, next_id_, [&](DocId id) { return ids_.contains(id); });
  if (!resolved) return resolved.status();
  if (slot_ids_.size() + rows.rows >= kInvalidDocId) return Status::invalid_argument("index full (2^32 - 1 slots)");
  const std::vector<float> prepared = internal::prepare_rows(rows, opt_.metric);
  const auto& kern = kernels::best_kernels();
  for (size_t b = 0; b < rows.rows; b += kAddChunk) {
    const size_t e = std::min(rows.rows, b + kAddChunk);
    std::unique_lock lock(mu_);
    const size_t base = rows_.size();
    MEDSEARCH_RETURN_IF_ERROR(rows_.resize(base + (e - b)));
    std::vector<internal::IdMap::Entry> entries;
    entries.reserve(e - b);
    for (size_t i = b; i < e; ++i) {
      const float* r = prepared.data() + i * opt_.dim;
      const uint32_t slot = static_cast<uint32_t>(base + (i - b));
      rows_.set_row(slot, r);
      if (opt_.metric == Metric::kL2) sq_norms_.push_back(kern.dot_f32(r, r, opt_.dim));
      slot_ids_.push_back((*resolved)[i]);
      deleted_.push_back(0);
      entries.emplace_back((*resolved)[i], slot);
      next_id_ = std::max<DocId>(next_id_, (*resolved)[i] + 1);
    }
    ids_.insert(std::move(entries));
    live_ += e - b;
  }
  return Status::ok();
}

float FlatIndex::exact_dist(const float* q, uint32_t slot) const {
  const auto& kern = kernels::best_kernels();
  return opt_.metric == Metric::kL2 ? kern.l2sq_f32(q, rows_.row(slot), opt_.dim)
                                    : -kern.dot_f32(q, rows_.row(slot), opt_.dim);
}

void FlatIndex::scan(const float* q, size_t begin, size_t end, const IdFilter* filter, TopK& top) const {
  const auto& kern = kernels::best_kernels();
  float buf[256];
  for (size_t b = begin; b < end; b += 256) {
    const size_t n = std::min<size_t>(256, end - b);
    if (opt_.metric == Metric::kL2) {
      kern.l2sq_f32_many(q, rows_.row(b), n, opt_.dim, buf);
    } else {
      kern.dot_f32_many(q, rows_.row(b), n, opt_.dim, buf);
      for (size_t i = 0; i < n; ++i) buf[i] = -buf[i];
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t slot = b + i;
      if (buf[i] > top.threshold() || deleted_[slot]) continue;
      if (filter && !roaring_bitmap_contains(filter->raw(), slot_ids_[slot])) continue;
      top.push(buf[i], static_cast<uint32_t>(slot));
    }
  }
}

void FlatIndex::finish(const float* q, TopK& top, uint32_t k, DocId* ids, float* scores) const {
  std::vector<internal::Neighbor> c = top.take_sorted();
  for (auto& n : c) n.dist = exact_dist(q, n.id);  // same scores whatever the path
  std::sort(c.begin(), c.end(), [&](const auto& a, const auto& b) {
    return a.dist < b.dist || (a.dist == b.dist && slot_ids_[a.id] < slot_ids_[b.id]);
  });
  for (size_t i = 0; i < c.size() && i < k; ++i) {
    ids[i] = slot_ids_[c[i].id];
    scores[i] = internal::score_from_dist(c[i].dist, opt_.metric);
  }
}

void FlatIndex::search_one(const float* q, const SearchParams& p, DocId* out_ids, float* out_scores) const {
  TopK top(p.k);
  const size_t n = rows_.size();
  if (p.filter && p.filter->cardinality() * kFilterScanRatio < n) {
    // Selective filter: visit the allowed ids only.
    struct Ctx {
      const FlatIndex* self;
      const float* q;
      TopK* top;
      size_t pos;
    } ctx{this, q, &top, 0};
    roaring_iterate(
        p.filter->raw(),
        [](uint32_t id, void* arg) {
          auto* c = static_cast<Ctx*>(arg);
          if (auto slot = c->self->ids_.find_from(&c->pos, id)) c->top->push(c->self->exact_dist(c->q, *slot), *slot);
          return true;
        },
        &ctx);
  } else if (n <= 2 * kScanBlock) {
    scan(q, 0, n, p.filter, top);
  } else {
    tbb::combinable<TopK> tops([&] { return TopK(p.k); });
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, kScanBlock), [&](const tbb::blocked_range<size_t>& r) {
      scan(q, r.begin(), r.end(), p.filter, tops.local());
    });
    tops.combine_each([&](const TopK& t) { top.merge(t); });
  }
  finish(q, top, p.k, out_ids, out_scores);
}

void FlatIndex::search_gemm(const float* q, size_t nq, const SearchParams& p, DocId* out_ids,
                            float* out_scores) const {
  const size_t n = rows_.size(), dim = opt_.dim;
  const auto gemm_nt = embed::kernels::dense_kernels().gemm_nt;
  tbb::parallel_for(tbb::blocked_range<size_t>(0, nq, kQueryBlock), [&](const tbb::blocked_range<size_t>& qr) {
    const size_t nqb = qr.size();
    std::vector<float> buf(nqb * kRowBlock);
    std::vector<TopK> tops(nqb, TopK(p.k));
    for (size_t r0 = 0; r0 < n; r0 += kRowBlock) {
      const size_t nr = std::min(kRowBlock, n - r0);
      gemm_nt(nqb, nr, dim, q + qr.begin() * dim, rows_.row(r0), buf.data());  // buf = Q R^T
      for (size_t i = 0; i < nqb; ++i) {
        const float* s = buf.data() + i * nr;
        TopK& top = tops[i];
        for (size_t j = 0; j < nr; ++j) {
          // L2: |q|^2 is the same for every row, so it can wait for finish().
          const float d = opt_.metric == Metric::kL2 ? sq_norms_[r0 + j] - 2.0f * s[j] : -s[j];
          if (d < top.threshold() && !deleted_[r0 + j]) top.push(d, static_cast<uint32_t>(r0 + j));
        }
      }
    }
    for (size_t i = 0; i < nqb; ++i) {
      const size_t qi = qr.begin() + i;
      finish(q + qi * dim, tops[i], p.k, out_ids + qi * p.k, out_scores + qi * p.k);
    }
  });
}

Status FlatIndex::search(MatrixView queries, const SearchParams& params, std::span<DocId> out_ids,
                         std::span<float> out_scores) const {
  MEDSEARCH_RETURN_IF_ERROR(internal::check_search(queries, opt_.dim, params, out_ids, out_scores));
  const size_t nq = queries.rows, k = params.k;
  internal::fill_empty(out_ids.first(nq * k), out_scores.first(nq * k));
  const std::vector<float> q = internal::prepare_rows(queries, opt_.metric);
  std::shared_lock lock(mu_);
  if (live_ == 0 || nq == 0) return Status::ok();
  if (params.filter && params.filter->cardinality() == 0) return Status::ok();
  // Isolation: while we hold the lock this thread must not pick up an
  // unrelated task that could wait for the exclusive lock.
  tbb::this_task_arena::isolate([&] {
    if (!params.filter && nq >= kGemmMinQueries) {
      search_gemm(q.data(), nq, params, out_ids.data(), out_scores.data());
    } else if (nq == 1) {
      search_one(q.data(), params, out_ids.data(), out_scores.data());
    } else {
      tbb::parallel_for(size_t{0}, nq, [&](size_t i) {
        search_one(q.data() + i * opt_.dim, params, out_ids.data() + i * k, out_scores.data() + i * k);
      });
    }
  });
  return Status::ok();
}

Status FlatIndex::remove(std::span<const DocId> ids) {
  std::lock_guard write(write_mu_);
  std::vector<DocId> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i] == sorted[i - 1]) return Status::invalid_argument("id " + std::to_string(sorted[i]) + " given twice");
    if (!ids_.contains(sorted[i])) return Status::unknown_id("id " + std::to_string(sorted[i]) + " is not in the index");
  }
  std::unique_lock lock(mu_);
  for (uint32_t slot : ids_.erase(sorted)) deleted_[slot] = 1;
  live_ -= sorted.size();
  return Status::ok();
}

Status FlatIndex::compact() {
  std::lock_guard write(write_mu_);
  // Readers of the old arrays only need the shared lock; we are the only writer.
  VectorStore rows(opt_.dim, VectorStore::Backing::kHeap);
  MEDSEARCH_RETURN_IF_ERROR(rows.resize(live_));
  std::vector<float> sq;
  std::vector<DocId> slot_ids;
  std::vector<internal::IdMap::Entry> entries;
  slot_ids.reserve(live_);
  entries.reserve(live_);
  for (size_t s = 0; s < slot_ids_.size(); ++s) {
    if (deleted_[s]) continue;
    const uint32_t ns = static_cast<uint32_t>(slot_ids.size());
    rows.set_row(ns, rows_.row(s));
    if (opt_.metric == Metric::kL2) sq.push_back(sq_norms_[s]);
    slot_ids.push_back(slot_ids_[s]);
    entries.emplace_back(slot_ids_[s], ns);
  }
  internal::IdMap ids;
  ids.insert(std::move(entries));
  std::unique_lock lock(mu_);
  rows_ = std::move(rows);
  sq_norms_ = std::move(sq);
  deleted_.assign(slot_ids.size(), 0);
  slot_ids_ = std::move(slot_ids);
  ids_ = std::move(ids);
  return Status::ok();
}

// Payload: u64 dim, u8 metric, u8[3] 0, u32 next_id, u64 slots,
// u32[slots] doc ids, u8[slots] deleted flags, pad to 64, f32[slots * dim] rows.
Status FlatIndex::save(const std::filesystem::path& path) const {
  std::shared_lock lock(mu_);
  auto w = internal::create_index_file(path, IndexKind::kFlat);
  if (!w) return w.status();
  auto& f = *w;
  const uint8_t pad[3] = {0, 0, 0};
  f.put<uint64_t>(opt_.dim);
  f.put<uint8_t>(static_cast<uint8_t>(opt_.metric));
  f.write(pad, 3);
  f.put<uint32_t>(next_id_);
  f.put<uint64_t>(slot_ids_.size());
  f.write(slot_ids_.data(), slot_ids_.size() * sizeof(DocId));
  f.write(deleted_.data(), deleted_.size());
  f.align(64);
  f.write(rows_.data(), rows_.size() * opt_.dim * sizeof(float));
  return internal::finish_index_file(f);
}

Result<std::unique_ptr<FlatIndex>> FlatIndex::load(std::shared_ptr<const internal::MappedFile> file,
                                                   const std::string& name) {
  auto c = internal::payload_reader(*file, name);
  uint64_t dim = 0, slots = 0;
  uint8_t metric = 0, pad[3];
  uint32_t next_id = 0;
  MEDSEARCH_RETURN_IF_ERROR(c.get(&dim));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&metric));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&pad));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&next_id));
  MEDSEARCH_RETURN_IF_ERROR(c.get(&slots));
  IndexOptions o;
  o.kind = IndexKind::kFlat;
  o.dim = dim;
  o.metric = static_cast<Metric>(metric);
  if (metric > 2 || !internal::check_options(o).is_ok()) return c.corrupt("bad options");
  if (slots >= kInvalidDocId) return c.corrupt("bad row count");
  const char *ids_p = nullptr, *del_p = nullptr, *rows_p = nullptr;
  MEDSEARCH_RETURN_IF_ERROR(c.view(slots * sizeof(DocId), 1, &ids_p));
  MEDSEARCH_RETURN_IF_ERROR(c.view(slots, 1, &del_p));
  if (slots > SIZE_MAX / (dim * sizeof(float))) return c.corrupt("bad row count");
  MEDSEARCH_RETURN_IF_ERROR(c.view(slots * dim * sizeof(float), 64, &rows_p));
  if (!c.at_end()) return c.corrupt("trailing data");
  auto index = std::make_unique<FlatIndex>(o);
  index->slot_ids_.resize(slots);
  std::memcpy(index->slot_ids_.data(), ids_p, slots * sizeof(DocId));
  index->deleted_.assign(del_p, del_p + slots);
  index->next_id_ = next_id;
  std::vector<internal::IdMap::Entry> entries;
  for (size_t s = 0; s < slots; ++s) {
    if (index->deleted_[s] > 1) return c.corrupt("bad deletion flag");
    if (index->deleted_[s]) continue;
    if (index->slot_ids_[s] >= next_id) return c.corrupt("id above next_id");
    entries.emplace_back(index->slot_ids_[s], static_cast<uint32_t>(s));
  }
  index->live_ = entries.size();
  index->ids_.insert(std::move(entries));
  for (size_t i = 1; i < index->ids_.entries().size(); ++i) {
    if (index->ids_.entries()[i].first == index->ids_.entries()[i - 1].first) return c.corrupt("duplicate id");
  }
  index->rows_ = VectorStore::mapped(dim, VectorStore::Backing::kHeap, std::move(file),
                                     reinterpret_cast<const float*>(rows_p), slots);
  if (o.metric == Metric::kL2) {
    const auto& kern = kernels::best_kernels();
    index->sq_norms_.resize(slots);
    for (size_t s = 0; s < slots; ++s) index->sq_norms_[s] = kern.dot_f32(index->rows_.row(s), index->rows_.row(s), dim);
  }
  return index;
}

size_t FlatIndex::memory_bytes() const {
  std::shared_lock lock(mu_);
  return rows_.heap_bytes() + sq_norms_.capacity() * sizeof(float) + slot_ids_.capacity() * sizeof(DocId) +
         deleted_.capacity() + ids_.memory_bytes() + sizeof(*this);
}
size_t FlatIndex::mapped_bytes() const {
  std::shared_lock lock(mu_);
  return rows_.mapped_bytes();
}

}  // namespace medsearch::vector
