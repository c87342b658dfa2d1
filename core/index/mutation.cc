// mutation.cc: Index::add() and Index::remove(): the next generation built
// beside the current one and published in a new snapshot, and the dense
// index's rows of removed passages reclaimed once no snapshot needs them.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/index/index_impl.h"

namespace medsearch {

Status Index::Impl::apply(std::span<const uint8_t> drop, std::vector<io::Document> added,
                          const ProgressFn& progress) {
  const auto snapshot = current();
  const internal::SnapshotParts& parts = snapshot->parts();
  const Generation& base = *parts.gen;
  auto next = std::make_shared<Generation>();
  next->generation = base.generation + 1;
  next->dim = base.dim;
  next->model_id = base.model_id;
  next->dense = base.dense;
  // Kept documents and their passages, renumbered in order; then the added ones.
  std::vector<uint32_t> doc_number(base.docs.size(), UINT32_MAX);
  for (size_t d = 0; d < base.docs.size(); ++d) {
    if (drop[d]) continue;
    doc_number[d] = static_cast<uint32_t>(next->docs.size());
    next->docs.push_back(base.docs[d]);
  }
  std::vector<uint8_t> keep(base.passages.size());
  std::vector<vector::DocId> removed_vids;
  for (size_t p = 0; p < base.passages.size(); ++p) {
    internal::StoredPassage ps = base.passages[p];
    keep[p] = !drop[ps.doc];
    if (!keep[p]) {
      if (base.dim) removed_vids.push_back(base.passage_vid[p]);
      continue;
    }
    ps.doc = doc_number[ps.doc];
    next->passages.push_back(ps);
    if (base.dim) {
      next->passage_vid.push_back(base.passage_vid[p]);
      next->vectors.insert(next->vectors.end(), base.vectors.begin() + p * base.dim,
                           base.vectors.begin() + (p + 1) * base.dim);
    }
  }
  const uint32_t first = static_cast<uint32_t>(next->passages.size());
  const internal::Settings& settings = *parts.settings;
  auto docs = internal::chunk(std::move(added), settings.options, progress, &next->passages,
                              static_cast<uint32_t>(next->docs.size()));
  next->docs.insert(next->docs.end(), std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
  if (next->passages.empty()) {
    return Status::invalid_argument("the index would hold no passages (remove leaves none, and nothing is added)");
  }
  next->derive_lookup_tables();
  auto delta = internal::index_passages(*next, first, settings);
  if (!delta) return delta.status();
  next->bm25 = std::make_shared<const lexical::Bm25Index>(lexical::Bm25Index::merge(*base.bm25, keep, *delta));
  if (base.dim) {
    // Everything that can fail is done before the dense index changes.
    auto rows = internal::embed_passages(*next, first, *parts.embedder, settings.options.embed_batch, progress);
    if (!rows) return rows.status();
    const uint32_t n = static_cast<uint32_t>(next->passages.size()) - first;
    std::vector<vector::DocId> vids(n);
    for (uint32_t i = 0; i < n; ++i) vids[i] = next_vid + i;
    next_vid += n;  // never reused, even if add() fails below
    if (n) MEDSEARCH_RETURN_IF_ERROR(next->dense->add(vector::MatrixView{rows->data(), n, base.dim}, vids));
    next->vectors.insert(next->vectors.end(), rows->begin(), rows->end());
    next->passage_vid.insert(next->passage_vid.end(), vids.begin(), vids.end());
    next->live = std::make_shared<const vector::IdFilter>(next->passage_vid);
    next->derive_dense_tables();
  }
  const uint64_t generation = next->generation;
  publish_generation(std::move(next));
  if (!removed_vids.empty()) pending.push_back({generation, std::move(removed_vids)});
  // The change is published: reclaiming is housekeeping. What fails (memory
  // for a compaction) stays pending, filtered out of every search, and is
  // tried again on the next change.
  (void)reclaim();
  return Status::ok();
}

Status Index::Impl::reclaim() {
  uint64_t oldest = UINT64_MAX;
  std::erase_if(published, [&](const std::weak_ptr<const Generation>& w) {
    const auto s = w.lock();
    if (s) oldest = std::min(oldest, s->generation);
    return !s;
  });
  const auto snapshot = current();
  vector::VectorIndex* dense = snapshot->parts().gen->dense.get();
  if (!dense) return Status::ok();
  // A generation holds the vids it was published with, so a vid removed in
  // generation g may leave the dense index once no generation before g lives.
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->dead_from > oldest) {
      ++it;
      continue;
    }
    MEDSEARCH_RETURN_IF_ERROR(dense->remove(it->vids));
    removed_since_compact += it->vids.size();
    it = pending.erase(it);
  }
  // Removed rows stay in the dense index (and slow its searches) until
  // compact() rebuilds it beside the live one; a quarter keeps the rebuilds
  // amortised to a few insertions per removed passage.
  if (removed_since_compact >= std::max<size_t>(64, dense->size() / 4)) {
    MEDSEARCH_RETURN_IF_ERROR(dense->compact());
    removed_since_compact = 0;
  }
  return Status::ok();
}

Status Index::add(std::vector<io::Document> documents, const ProgressFn& progress) {
  Impl& im = *impl_;
  if (documents.empty()) return Status::invalid_argument("no documents to add");
  std::lock_guard writer(im.writer_mu);
  const auto snapshot = im.current();
  const internal::SnapshotParts& parts = snapshot->parts();
  const internal::Generation* base = parts.gen.get();
  std::unordered_set<std::string> present;
  for (const auto& d : base->docs) present.insert(d->meta.corpus + '\x1f' + d->meta.doc_id);
  std::unordered_set<std::string> seen;
  for (const auto& d : documents) {
    if (d.doc_id.empty()) return Status::invalid_argument("document with an empty doc_id in corpus '" + d.corpus + "'");
    const std::string key = d.corpus + '\x1f' + d.doc_id;
    if (present.count(key)) {
      return Status::invalid_argument("doc_id '" + d.doc_id + "' is already in corpus '" + d.corpus +
                                      "' (remove it first to replace it)");
    }
    if (!seen.insert(key).second) {
      return Status::invalid_argument("duplicate doc_id '" + d.doc_id + "' in corpus '" + d.corpus + "'");
    }
  }
  if (base->dim && !parts.embedder) {
    return Status::invalid_argument("this index holds passage vectors of model '" + base->model_id +
                                    "': attach its encoder before adding documents");
  }
  const std::vector<uint8_t> drop(base->docs.size(), 0);
  return im.apply(drop, std::move(documents), progress);
}

Status Index::remove(std::span<const std::string> doc_ids, std::string_view corpus) {
  Impl& im = *impl_;
  if (doc_ids.empty()) return Status::invalid_argument("no doc_ids to remove");
  std::lock_guard writer(im.writer_mu);
  const auto snapshot = im.current();
  const internal::Generation* base = snapshot->parts().gen.get();
  std::unordered_map<std::string_view, std::vector<uint32_t>> by_id;
  for (uint32_t d = 0; d < base->docs.size(); ++d) {
    const io::Document& m = base->doc(d).meta;
    if (corpus.empty() || m.corpus == corpus) by_id[m.doc_id].push_back(d);
  }
  std::vector<uint8_t> drop(base->docs.size(), 0);
  for (const auto& id : doc_ids) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      return Status::unknown_id("no document '" + id + "'" +
                               (corpus.empty() ? std::string() : " in corpus '" + std::string(corpus) + "'"));
    }
    if (it->second.size() > 1) {
      return Status::invalid_argument("doc_id '" + id + "' is in " + std::to_string(it->second.size()) +
                                      " corpora: name the corpus");
    }
    if (drop[it->second[0]]) return Status::invalid_argument("doc_id '" + id + "' given twice");
    drop[it->second[0]] = 1;
  }
  return im.apply(drop, {}, nullptr);
}

}  // namespace medsearch
