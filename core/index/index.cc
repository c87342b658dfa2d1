// index.cc: Index: building, attaching an embedder, vectors or a reranker,
// and publishing snapshots (index_impl.h). Changing documents is in
// mutation.cc, saving and loading in persistence.cc.
#include <medsearch/index.h>

#include <unordered_set>

#include "core/index/index_impl.h"

namespace medsearch {
namespace {

constexpr size_t kQueryCacheSize = 4096;  // query texts whose vectors are kept, per embedder

}  // namespace

Index::Index() : impl_(std::make_unique<Impl>()) {}
Index::~Index() = default;

void Index::Impl::publish(internal::SnapshotParts parts) {
  if (!parts.reranker) parts.reranker = rank::Reranker::builtin();
  if (parts.embedder && !parts.cache) parts.cache = std::make_shared<internal::QueryCache>(kQueryCacheSize);
  auto next = std::make_shared<const Snapshot>(std::make_unique<const internal::SnapshotParts>(std::move(parts)));
  std::lock_guard lock(head_mu);
  head = std::move(next);
}

void Index::Impl::publish_generation(std::shared_ptr<const Generation> next) {
  internal::SnapshotParts parts = current()->parts();
  published.push_back(next);
  parts.gen = std::move(next);
  publish(std::move(parts));
}

std::shared_ptr<const Snapshot> Index::snapshot() const { return impl_->current(); }

Result<std::unique_ptr<Index>> Index::build(std::vector<io::Document> documents, const BuildOptions& options,
                                            const ProgressFn& progress,
                                            std::shared_ptr<const embed::Embedder> embedder) {
  if (documents.empty()) return Status::invalid_argument("cannot build an index from no documents");
  MEDSEARCH_RETURN_IF_ERROR(validate(options));
  {
    std::unordered_set<std::string> seen;
    for (const auto& d : documents) {
      if (d.doc_id.empty()) return Status::invalid_argument("document with an empty doc_id in corpus '" + d.corpus + "'");
      if (!seen.insert(d.corpus + '\x1f' + d.doc_id).second) {
        return Status::invalid_argument("duplicate doc_id '" + d.doc_id + "' in corpus '" + d.corpus + "'");
      }
    }
  }
  std::unique_ptr<Index> index(new Index());
  Impl& im = *index->impl_;
  auto settings = std::make_shared<internal::Settings>(internal::Settings{options, text::Analyzer(options.analyzer)});
  auto st = std::make_shared<internal::Generation>();
  st->docs = internal::chunk(std::move(documents), options, progress, &st->passages, 0);
  if (st->passages.empty()) return Status::invalid_argument("the documents produced no passages (all empty?)");
  st->derive_lookup_tables();
  if (progress) progress("indexing", 0, st->passages.size());
  auto bm25 = internal::index_passages(*st, 0, *settings);
  if (!bm25) return bm25.status();
  st->bm25 = std::make_shared<const lexical::Bm25Index>(std::move(bm25).value());
  if (progress) progress("indexing", st->passages.size(), st->passages.size());
  if (embedder) {
    auto vectors = internal::embed_passages(*st, 0, *embedder, options.embed_batch, progress);
    if (!vectors) return vectors.status();
    st->dim = embedder->dim();
    st->model_id = embedder->model_id();
    st->vectors = std::move(vectors).value();
    st->derive_dense_tables();
    MEDSEARCH_RETURN_IF_ERROR(st->build_dense_index(options));
    im.next_vid = static_cast<uint32_t>(st->passages.size());
  }
  std::lock_guard writer(im.writer_mu);
  im.published.push_back(st);
  internal::SnapshotParts parts;
  parts.gen = std::move(st);
  parts.settings = std::move(settings);
  parts.embedder = std::move(embedder);
  im.publish(std::move(parts));
  return index;
}

Status Index::attach_vectors(std::span<const float> rows, uint32_t dim, std::string model_id) {
  Impl& im = *impl_;
  std::lock_guard writer(im.writer_mu);
  internal::SnapshotParts parts = im.current()->parts();
  const internal::Generation* base = parts.gen.get();
  if (dim == 0) return Status::invalid_argument("vector dimension must be positive");
  if (rows.size() != size_t{base->passages.size()} * dim) {
    return Status::invalid_argument("expected " + std::to_string(base->passages.size()) + " x " + std::to_string(dim) +
                                    " floats (one row per passage), got " + std::to_string(rows.size()));
  }
  std::vector<float> vectors(rows.begin(), rows.end());
  MEDSEARCH_RETURN_IF_ERROR(internal::normalise_rows(vectors, dim, 0));
  // The same documents and passages with the new vectors and a new dense index.
  auto next = std::make_shared<internal::Generation>();
  next->generation = base->generation + 1;
  next->docs = base->docs;
  next->passages = base->passages;
  next->bm25 = base->bm25;
  next->derive_lookup_tables();
  next->vectors = std::move(vectors);
  next->dim = dim;
  next->model_id = std::move(model_id);
  next->derive_dense_tables();
  MEDSEARCH_RETURN_IF_ERROR(next->build_dense_index(parts.settings->options));
  // An embedder of another model no longer matches the vectors.
  if (parts.embedder && (parts.embedder->model_id() != next->model_id || parts.embedder->dim() != dim)) {
    parts.embedder.reset();
    parts.cache.reset();
  }
  // The old dense index goes with the generations that use it.
  im.pending.clear();
  im.removed_since_compact = 0;
  im.next_vid = static_cast<uint32_t>(next->passages.size());
  im.published.push_back(next);
  parts.gen = std::move(next);
  im.publish(std::move(parts));
  return Status::ok();
}

Status Index::attach_embedder(std::shared_ptr<const embed::Embedder> embedder) {
  Impl& im = *impl_;
  if (!embedder) return Status::invalid_argument("no embedder given");
  std::lock_guard writer(im.writer_mu);
  internal::SnapshotParts parts = im.current()->parts();
  const internal::Generation* s = parts.gen.get();
  if (s->dim != 0 && (embedder->model_id() != s->model_id || embedder->dim() != s->dim)) {
    return Status::invalid_argument("the index holds vectors of model '" + s->model_id + "' (dim " +
                                    std::to_string(s->dim) + "), not '" + embedder->model_id() + "' (dim " +
                                    std::to_string(embedder->dim()) + ")");
  }
  if (parts.embedder != embedder) parts.cache.reset();  // a new one for the new embedder (publish())
  parts.embedder = std::move(embedder);
  im.publish(std::move(parts));
  return Status::ok();
}

void Index::set_reranker(std::shared_ptr<const rank::Reranker> reranker) {
  std::lock_guard writer(impl_->writer_mu);
  internal::SnapshotParts parts = impl_->current()->parts();
  parts.reranker = std::move(reranker);  // null: the built-in one (publish())
  impl_->publish(std::move(parts));
}

Result<SearchResponse> Index::search(std::string_view query, const SearchOptions& options) const {
  return snapshot()->search(query, options);
}

Result<std::vector<SearchResponse>> Index::search_batch(std::span<const std::string> queries,
                                                        const SearchOptions& options) const {
  return snapshot()->search_batch(queries, options);
}

Result<std::vector<rank::Candidate>> Index::candidate_pool(std::string_view query, const SearchOptions& options,
                                                           std::span<const uint32_t> exclude_documents) const {
  return snapshot()->candidate_pool(query, options, exclude_documents);
}

uint64_t Index::generation() const { return snapshot()->generation(); }
uint32_t Index::num_passages() const { return snapshot()->num_passages(); }
uint32_t Index::num_documents() const { return snapshot()->num_documents(); }
bool Index::has_vectors() const { return snapshot()->has_vectors(); }
IndexStats Index::stats() const { return snapshot()->stats(); }
const BuildOptions& Index::options() const { return snapshot()->options(); }

}  // namespace medsearch
