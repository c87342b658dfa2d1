// snapshot.cc: Snapshot's accessors (index.h); its queries are in pipeline.cc.
#include "core/index/index_impl.h"

namespace medsearch {

Snapshot::Snapshot(std::unique_ptr<const internal::SnapshotParts> parts) : parts_(std::move(parts)) {}
Snapshot::~Snapshot() = default;

uint64_t Snapshot::generation() const { return parts_->gen->generation; }
uint32_t Snapshot::num_passages() const { return static_cast<uint32_t>(parts_->gen->passages.size()); }
uint32_t Snapshot::num_documents() const { return static_cast<uint32_t>(parts_->gen->docs.size()); }
Passage Snapshot::passage(uint32_t p) const { return parts_->gen->passage(p); }
uint32_t Snapshot::document_of(uint32_t p) const { return parts_->gen->passages[p].doc; }
const std::string& Snapshot::doc_id(uint32_t doc) const { return parts_->gen->doc(doc).meta.doc_id; }
const std::string& Snapshot::clean_text(uint32_t doc) const { return parts_->gen->doc(doc).clean_text; }

Result<std::string_view> Snapshot::clean_text_of(std::string_view doc_id) const {
  for (const auto& d : parts_->gen->docs) {
    if (d->meta.doc_id == doc_id) return std::string_view(d->clean_text);
  }
  return Status::unknown_id("unknown doc_id '" + std::string(doc_id) + "'");
}

std::string Snapshot::embedding_text(uint32_t p) const { return parts_->gen->embedding_text(p); }
bool Snapshot::has_vectors() const { return parts_->gen->dim > 0; }
uint32_t Snapshot::dim() const { return parts_->gen->dim; }

std::span<const float> Snapshot::vector(uint32_t p) const {
  const uint32_t dim = parts_->gen->dim;
  return std::span<const float>(parts_->gen->vectors).subspan(size_t{p} * dim, dim);
}

std::span<const float> Snapshot::vectors() const { return parts_->gen->vectors; }
const BuildOptions& Snapshot::options() const { return parts_->settings->options; }
const rank::Reranker& Snapshot::reranker() const { return *parts_->reranker; }

SearchMode Snapshot::resolve_mode(SearchMode mode) const {
  if (mode != SearchMode::kAuto) return mode;
  return has_vectors() ? SearchMode::kRerank : SearchMode::kBm25;
}

Passage SearchResponse::passage(size_t i) const { return snapshot->passage(hits[i].passage); }

std::vector<Passage> SearchResponse::passages() const {
  std::vector<Passage> out;
  out.reserve(hits.size());
  for (const Hit& h : hits) out.push_back(snapshot->passage(h.passage));
  return out;
}

IndexStats Snapshot::stats() const {
  const internal::Generation* s = parts_->gen.get();
  IndexStats out;
  out.documents = s->docs.size();
  out.passages = s->passages.size();
  out.terms = s->bm25->num_terms();
  out.corpora = s->corpora;
  out.dim = s->dim;
  out.model_id = s->model_id;
  if (s->dense) {
    const auto& o = s->dense->options();
    out.dense_index = o.kind == vector::IndexKind::kFlat ? "flat"
                                                         : "hnsw M=" + std::to_string(o.M) +
                                                               " ef_construction=" + std::to_string(o.ef_construction);
  }
  size_t bytes = s->bm25->memory_bytes() + s->passages.capacity() * sizeof(internal::StoredPassage) +
                 s->passage_doc.capacity() * 4 + s->passage_vid.capacity() * 4;
  for (const auto& d : s->docs) {
    bytes += sizeof(*d) + d->clean_text.capacity() + d->meta.doc_id.capacity() + d->meta.title.capacity() +
             d->meta.url.capacity() + d->meta.meta_json.capacity();
    for (const auto& f : d->meta.metadata) {
      bytes += sizeof(f) + f.key.capacity();
      for (const auto& v : f.values) bytes += sizeof(v) + v.capacity();
    }
    for (const auto& hp : d->heading_paths) {
      for (const auto& h : hp) bytes += sizeof(h) + h.capacity();
    }
  }
  bytes += s->vectors.capacity() * sizeof(float);
  if (s->dense) bytes += s->dense->memory_bytes();
  out.memory_bytes = bytes;
  return out;
}

}  // namespace medsearch
