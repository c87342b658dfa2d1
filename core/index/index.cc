#include "core/index/index.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cmath>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/internal/binary_io.h"
#include "core/index/index_impl.h"
#include "core/index/options_io.h"
#include "core/internal/json.h"
#include "core/vector/vector_index.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;

// 2: documents.bin starts with every build option (options_io.h), not only
// the analyzer's and the chunkers'. 3: it holds each document's metadata fields.
constexpr uint32_t kFormatVersion = 3;
constexpr char kFormatName[] = "medsearch-index";
constexpr char kDocumentsFile[] = "documents.bin";
constexpr char kLexicalFile[] = "lexical.bin";
constexpr char kVectorsFile[] = "vectors.bin";  // passage vectors, row p = passage p
constexpr char kDenseFile[] = "dense.idx";      // the HNSW graph over them (core/vector)
constexpr size_t kQueryCacheSize = 4096;        // query texts whose vectors are kept
constexpr char kManifestFile[] = "manifest.json";
constexpr char kCurrentFile[] = "CURRENT";

}  // namespace

Index::Index() : impl_(std::make_unique<Impl>()) {}
Index::~Index() = default;

void Index::Impl::State::derive_lookup_tables() {
  std::set<std::string> corpus_set, type_set{""};
  for (const auto& d : docs) {
    corpus_set.insert(d->meta.corpus);
    type_set.insert(d->meta.cancer_type);
  }
  corpora.assign(corpus_set.begin(), corpus_set.end());
  cancer_types.assign(type_set.begin(), type_set.end());
  const size_t n = docs.size();
  doc_corpus.resize(n);
  doc_cancer_type.resize(n);
  doc_audience.resize(n);
  doc_date.resize(n);
  for (size_t d = 0; d < n; ++d) {
    const io::Document& m = docs[d]->meta;
    doc_corpus[d] = static_cast<uint32_t>(std::lower_bound(corpora.begin(), corpora.end(), m.corpus) - corpora.begin());
    doc_cancer_type[d] = static_cast<uint32_t>(
        std::lower_bound(cancer_types.begin(), cancer_types.end(), m.cancer_type) - cancer_types.begin());
    doc_audience[d] = audience_code(m.audience);
    doc_date[d] = date_number(m.last_reviewed);
  }
  derive_meta_columns();
  passage_doc.resize(passages.size());
  for (size_t p = 0; p < passages.size(); ++p) passage_doc[p] = passages[p].doc;
  doc_first_passage.assign(n + 1, static_cast<uint32_t>(passages.size()));
  for (size_t p = passages.size(); p-- > 0;) doc_first_passage[passages[p].doc] = static_cast<uint32_t>(p);
  for (size_t d = n; d-- > 0;) doc_first_passage[d] = std::min(doc_first_passage[d], doc_first_passage[d + 1]);
  std::vector<uint32_t> first_section(n + 1, 0);
  for (size_t d = 0; d < n; ++d) first_section[d + 1] = first_section[d] + static_cast<uint32_t>(docs[d]->heading_paths.size());
  passage_section.resize(passages.size());
  for (size_t p = 0; p < passages.size(); ++p) passage_section[p] = first_section[passages[p].doc] + passages[p].heading_path;
  // How many documents have each own (last) heading.
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> pages;  // heading -> (last doc + 1, documents)
  for (size_t d = 0; d < n; ++d) {
    for (const auto& path : docs[d]->heading_paths) {
      if (path.empty()) continue;
      auto& [last, count] = pages[path.back()];
      if (last != d + 1) {
        last = static_cast<uint32_t>(d + 1);
        ++count;
      }
    }
  }
  passage_heading_commonness.resize(passages.size());
  for (size_t p = 0; p < passages.size(); ++p) {
    const auto& path = docs[passages[p].doc]->heading_paths[passages[p].heading_path];
    passage_heading_commonness[p] = path.empty() ? 0.0f : std::log1p(static_cast<float>(pages[path.back()].second));
  }
}

void Index::Impl::State::derive_dense_tables() {
  audience_direction = rank::audience_direction(vectors, dim, passage_doc, doc_audience);
}

Status Index::Impl::State::build_dense_index(const BuildOptions& options) {
  vector::IndexOptions vo;
  vo.dim = dim;
  vo.metric = vector::Metric::kInnerProduct;
  vo.kind = passages.size() < options.exact_below ? vector::IndexKind::kFlat : vector::IndexKind::kHnsw;
  vo.M = options.hnsw_m;
  vo.ef_construction = options.hnsw_ef_construction;
  auto index = vector::make_vector_index(vo);
  if (!index) return index.status();
  vector::MatrixView rows{vectors.data(), passages.size(), dim};
  MEDSEARCH_RETURN_IF_ERROR((*index)->add(rows, {}));  // vids 0 .. n - 1
  dense = std::move(index).value();
  passage_vid.resize(passages.size());
  for (uint32_t p = 0; p < passage_vid.size(); ++p) passage_vid[p] = p;
  live.reset();
  return Status::ok();
}

namespace {

// L2-normalises rows in place; fails on NaN or inf (naming row first + i).
Status normalise_rows(std::span<float> rows, uint32_t dim, size_t first) {
  for (size_t i = 0; i * dim < rows.size(); ++i) {
    float* v = rows.data() + i * dim;
    double norm = 0;
    for (uint32_t j = 0; j < dim; ++j) {
      if (!std::isfinite(v[j])) {
        return Status::invalid_argument("passage vector " + std::to_string(first + i) + " has NaN or inf");
      }
      norm += double{v[j]} * v[j];
    }
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (uint32_t j = 0; j < dim; ++j) v[j] *= inv;
    }
  }
  return Status::ok();
}

// Embeds passages [first, s.passages.size()) of `s` in batches (progress
// stage "embedding"), L2-normalised.
template <typename State>
Result<std::vector<float>> embed_passages(const State& s, uint32_t first, const embed::Embedder& embedder,
                                          uint32_t embed_batch, const ProgressFn& progress) {
  const uint32_t dim = embedder.dim();
  const size_t n = s.passages.size() - first;
  std::vector<float> vectors(n * dim);
  const size_t batch = std::max<uint32_t>(1, embed_batch);
  if (progress) progress("embedding", 0, n);
  std::vector<std::string> texts;
  std::vector<std::string_view> views;
  for (size_t start = 0; start < n; start += batch) {
    const size_t stop = std::min(n, start + batch);
    texts.clear();
    for (size_t i = start; i < stop; ++i) texts.push_back(s.embedding_text(static_cast<uint32_t>(first + i)));
    views.assign(texts.begin(), texts.end());
    MEDSEARCH_RETURN_IF_ERROR(embedder.embed(views, embed::TextKind::kPassage,
                                             std::span<float>(vectors.data() + start * dim, (stop - start) * dim)));
    if (progress) progress("embedding", stop, n);
  }
  MEDSEARCH_RETURN_IF_ERROR(normalise_rows(vectors, dim, first));
  return vectors;
}

}  // namespace

std::vector<std::shared_ptr<const Index::Impl::StoredDoc>> Index::Impl::chunk(std::vector<io::Document> documents,
                                                                              const BuildOptions& options,
                                                                              const ProgressFn& progress,
                                                                              std::vector<StoredPassage>* passages,
                                                                              uint32_t first_doc) {
  // Chunk in parallel, in blocks so progress can be reported from this thread.
  const size_t n = documents.size();
  std::vector<text::ChunkedDocument> chunked(n);
  constexpr size_t kBlock = 256;
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t stop = std::min(n, start + kBlock);
    tbb::parallel_for(tbb::blocked_range<size_t>(start, stop, 4), [&](const tbb::blocked_range<size_t>& r) {
      for (size_t i = r.begin(); i < r.end(); ++i) {
        const auto& d = documents[i];
        chunked[i] = d.format == io::DocFormat::kMarkdown
                         ? text::chunk_markdown(d.body, d.title, options.markdown_chunker)
                         : text::chunk_plain(d.title, d.body, options.plain_chunker);
      }
    });
    if (progress) progress("chunking", stop, n);
  }
  std::vector<std::shared_ptr<const StoredDoc>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto stored = std::make_shared<StoredDoc>();
    stored->meta = std::move(documents[i]);
    stored->meta.body.clear();
    stored->meta.body.shrink_to_fit();
    stored->clean_text = std::move(chunked[i].clean_text);
    std::map<std::vector<std::string>, uint32_t> path_ids;
    uint32_t ordinal = 0;
    for (auto& c : chunked[i].chunks) {
      auto [it, inserted] = path_ids.try_emplace(c.heading_path, static_cast<uint32_t>(stored->heading_paths.size()));
      if (inserted) stored->heading_paths.push_back(std::move(c.heading_path));
      passages->push_back({first_doc + static_cast<uint32_t>(i), ordinal++, c.begin, c.end, it->second});
    }
    out.push_back(std::move(stored));
  }
  return out;
}

Result<lexical::Bm25Index> Index::Impl::index_passages(const State& s, uint32_t first) const {
  // Heading field texts are joined once here; the body is a view into the clean
  // text, except for plain (BEIR) passages, whose body field is title + text as
  // in the usual BEIR BM25 set-up (the title also feeds the heading field).
  const uint32_t n = static_cast<uint32_t>(s.passages.size()) - first;
  std::vector<std::string> heading_texts(n), titled_bodies(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t p = first + i;
    heading_texts[i] = join(s.heading_path(p), " ");
    const auto& meta = s.doc(s.passages[p].doc).meta;
    if (meta.format == io::DocFormat::kPlain && !meta.title.empty()) {
      titled_bodies[i] = meta.title + "\n" + std::string(s.body_text(p));
    }
  }
  return lexical::Bm25Index::build(
      analyzer, n,
      [&](uint32_t i, lexical::Field f) -> std::string_view {
        if (f == lexical::kHeading) return heading_texts[i];
        return titled_bodies[i].empty() ? s.body_text(first + i) : std::string_view(titled_bodies[i]);
      },
      options.bm25);
}

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
  im.options = options;
  im.analyzer = text::Analyzer(options.analyzer);
  auto st = std::make_shared<Impl::State>();
  st->docs = Impl::chunk(std::move(documents), options, progress, &st->passages, 0);
  if (st->passages.empty()) return Status::invalid_argument("the documents produced no passages (all empty?)");
  st->derive_lookup_tables();
  if (progress) progress("indexing", 0, st->passages.size());
  auto bm25 = im.index_passages(*st, 0);
  if (!bm25) return bm25.status();
  st->bm25 = std::make_shared<const lexical::Bm25Index>(std::move(bm25).value());
  if (progress) progress("indexing", st->passages.size(), st->passages.size());
  if (embedder) {
    auto vectors = embed_passages(*st, 0, *embedder, options.embed_batch, progress);
    if (!vectors) return vectors.status();
    st->dim = embedder->dim();
    st->model_id = embedder->model_id();
    st->vectors = std::move(vectors).value();
    st->derive_dense_tables();
    MEDSEARCH_RETURN_IF_ERROR(st->build_dense_index(options));
    im.next_vid = static_cast<uint32_t>(st->passages.size());
    im.embedder = std::move(embedder);
  }
  im.published.push_back(st);
  im.publish(std::move(st));
  return index;
}

std::string Index::Impl::State::embedding_text(uint32_t p) const {
  const auto& meta = doc(passages[p].doc).meta;
  std::string out = meta.format == io::DocFormat::kPlain ? meta.title : join(heading_path(p), " > ");
  if (!out.empty()) out += "\n";
  out += body_text(p);
  return out;
}

std::string Index::embedding_text(uint32_t p) const { return impl_->current()->embedding_text(p); }

bool Index::has_vectors() const { return impl_->current()->dim > 0; }

std::vector<float> Index::vector(uint32_t p) const {
  const auto s = impl_->current();
  const auto row = s->vectors.begin() + size_t{p} * s->dim;
  return std::vector<float>(row, row + s->dim);
}

std::vector<float> Index::vectors() const { return impl_->current()->vectors; }

Status Index::attach_vectors(std::span<const float> rows, uint32_t dim, std::string model_id) {
  Impl& im = *impl_;
  std::lock_guard writer(im.writer_mu);
  const auto base = im.current();
  if (dim == 0) return Status::invalid_argument("vector dimension must be positive");
  if (rows.size() != size_t{base->passages.size()} * dim) {
    return Status::invalid_argument("expected " + std::to_string(base->passages.size()) + " x " + std::to_string(dim) +
                                    " floats (one row per passage), got " + std::to_string(rows.size()));
  }
  std::vector<float> vectors(rows.begin(), rows.end());
  MEDSEARCH_RETURN_IF_ERROR(normalise_rows(vectors, dim, 0));
  // The same documents and passages with the new vectors and a new dense index.
  auto next = std::make_shared<Impl::State>();
  next->generation = base->generation + 1;
  next->docs = base->docs;
  next->passages = base->passages;
  next->bm25 = base->bm25;
  next->derive_lookup_tables();
  next->vectors = std::move(vectors);
  next->dim = dim;
  next->model_id = std::move(model_id);
  next->derive_dense_tables();
  MEDSEARCH_RETURN_IF_ERROR(next->build_dense_index(im.options));
  if (im.embedder && (im.embedder->model_id() != next->model_id || im.embedder->dim() != dim)) im.embedder.reset();
  {
    std::lock_guard lock(im.cache_mu);
    im.cache_map.clear();
    im.cache_lru.clear();
  }
  // The old dense index goes with the generations that use it.
  im.pending.clear();
  im.removed_since_compact = 0;
  im.next_vid = static_cast<uint32_t>(next->passages.size());
  im.published.push_back(next);
  im.publish(std::move(next));
  return Status::ok();
}

Status Index::attach_embedder(std::shared_ptr<const embed::Embedder> embedder) {
  Impl& im = *impl_;
  if (!embedder) return Status::invalid_argument("no embedder given");
  const auto s = im.current();
  if (s->dim != 0 && (embedder->model_id() != s->model_id || embedder->dim() != s->dim)) {
    return Status::invalid_argument("the index holds vectors of model '" + s->model_id + "' (dim " +
                                    std::to_string(s->dim) + "), not '" + embedder->model_id() + "' (dim " +
                                    std::to_string(embedder->dim()) + ")");
  }
  im.embedder = std::move(embedder);
  return Status::ok();
}

Result<std::vector<float>> Index::embed_query(std::string_view query) const {
  return impl_->embed_query(query, impl_->current()->dim);
}

Result<std::vector<float>> Index::Impl::embed_query(std::string_view query, uint32_t dim) const {
  const Impl& im = *this;
  if (!im.embedder) {
    return Status::invalid_argument(dim ? "no encoder attached to embed the query (attach one, or pass a query vector)"
                                        : "this index has no passage vectors (build it with an encoder)");
  }
  {
    std::lock_guard lock(im.cache_mu);
    auto it = im.cache_map.find(query);
    if (it != im.cache_map.end()) {
      im.cache_lru.splice(im.cache_lru.begin(), im.cache_lru, it->second);
      return it->second->second;
    }
  }
  std::vector<float> v(im.embedder->dim());
  const std::string_view views[] = {query};
  MEDSEARCH_RETURN_IF_ERROR(im.embedder->embed(views, embed::TextKind::kQuery, v));
  std::lock_guard lock(im.cache_mu);
  if (im.cache_map.find(query) == im.cache_map.end()) {
    im.cache_lru.emplace_front(std::string(query), v);
    im.cache_map.emplace(im.cache_lru.front().first, im.cache_lru.begin());
    if (im.cache_lru.size() > kQueryCacheSize) {
      im.cache_map.erase(im.cache_lru.back().first);
      im.cache_lru.pop_back();
    }
  }
  return v;
}

// ---------------------------------------------------------------- mutation

Status Index::Impl::apply(const State& base, std::span<const uint8_t> drop, std::vector<io::Document> added,
                          const ProgressFn& progress) {
  auto next = std::make_shared<State>();
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
    StoredPassage ps = base.passages[p];
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
  auto docs = chunk(std::move(added), options, progress, &next->passages, static_cast<uint32_t>(next->docs.size()));
  next->docs.insert(next->docs.end(), std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
  if (next->passages.empty()) {
    return Status::invalid_argument("the index would hold no passages (remove leaves none, and nothing is added)");
  }
  next->derive_lookup_tables();
  auto delta = index_passages(*next, first);
  if (!delta) return delta.status();
  next->bm25 = std::make_shared<const lexical::Bm25Index>(lexical::Bm25Index::merge(*base.bm25, keep, *delta));
  if (base.dim) {
    // Everything that can fail is done before the dense index changes.
    auto rows = embed_passages(*next, first, *embedder, options.embed_batch, progress);
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
  published.push_back(next);
  publish(std::move(next));
  if (!removed_vids.empty()) pending.push_back({generation, std::move(removed_vids)});
  // The change is published: reclaiming is housekeeping. What fails (memory
  // for a compaction) stays pending, filtered out of every search, and is
  // tried again on the next change.
  (void)reclaim();
  return Status::ok();
}

Status Index::Impl::reclaim() {
  uint64_t oldest = UINT64_MAX;
  std::erase_if(published, [&](const std::weak_ptr<const State>& w) {
    const auto s = w.lock();
    if (s) oldest = std::min(oldest, s->generation);
    return !s;
  });
  const auto head_state = current();
  vector::VectorIndex* dense = head_state->dense.get();
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
  const auto base = im.current();
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
  if (base->dim && !im.embedder) {
    return Status::invalid_argument("this index holds passage vectors of model '" + base->model_id +
                                    "': attach its encoder before adding documents");
  }
  const std::vector<uint8_t> drop(base->docs.size(), 0);
  return im.apply(*base, drop, std::move(documents), progress);
}

Status Index::remove(std::span<const std::string> doc_ids, std::string_view corpus) {
  Impl& im = *impl_;
  if (doc_ids.empty()) return Status::invalid_argument("no doc_ids to remove");
  std::lock_guard writer(im.writer_mu);
  const auto base = im.current();
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
  return im.apply(*base, drop, {}, nullptr);
}

uint64_t Index::generation() const { return impl_->current()->generation; }

SearchHit Index::Impl::State::passage(uint32_t p) const {
  const auto& ps = passages[p];
  const auto& d = doc(ps.doc);
  SearchHit h;
  h.passage = p;
  h.passage_id = passage_id(p);
  h.doc_id = d.meta.doc_id;
  h.corpus = d.meta.corpus;
  h.title = d.meta.title;
  h.url = d.meta.url;
  h.heading_path = heading_path(p);
  h.begin = ps.begin;
  h.end = ps.end;
  h.text = std::string(body_text(p));
  h.audience = d.meta.audience;
  h.cancer_type = d.meta.cancer_type;
  h.last_reviewed = d.meta.last_reviewed;
  h.tags = d.meta.tags;
  h.meta_json = d.meta.meta_json;
  h.metadata = d.meta.metadata;
  return h;
}

SearchHit Index::passage(uint32_t p) const { return impl_->current()->passage(p); }

namespace {
SearchHit with_scores(SearchHit h, const ScoredHit& scored) {
  h.score = scored.score;
  h.body_score = scored.body_score;
  h.heading_score = scored.heading_score;
  h.dense_score = scored.dense_score;
  h.has_features = scored.has_features;
  h.features = scored.features;
  return h;
}
}  // namespace

SearchHit Index::materialize(const ScoredHit& scored) const { return with_scores(passage(scored.passage), scored); }

Result<std::vector<SearchHit>> Index::search(std::string_view query, const SearchOptions& options) const {
  // Searched and materialised in one generation.
  const auto s = impl_->current();
  auto response = impl_->run(*s, query, options);
  if (!response) return response.status();
  std::vector<SearchHit> hits;
  hits.reserve(response->hits.size());
  for (const auto& h : response->hits) hits.push_back(with_scores(s->passage(h.passage), h));
  return hits;
}

uint32_t Index::num_passages() const { return static_cast<uint32_t>(impl_->current()->passages.size()); }
uint32_t Index::num_documents() const { return static_cast<uint32_t>(impl_->current()->docs.size()); }
uint32_t Index::document_of(uint32_t p) const { return impl_->current()->passages[p].doc; }
std::string Index::doc_id(uint32_t doc) const { return impl_->current()->doc(doc).meta.doc_id; }
std::string Index::clean_text(uint32_t doc) const { return impl_->current()->doc(doc).clean_text; }
Result<std::string> Index::clean_text_of(std::string_view doc_id) const {
  const auto s = impl_->current();
  for (const auto& d : s->docs) {
    if (d->meta.doc_id == doc_id) return d->clean_text;
  }
  return Status::unknown_id("unknown doc_id '" + std::string(doc_id) + "'");
}
const BuildOptions& Index::options() const { return impl_->options; }

IndexStats Index::stats() const {
  const auto s = impl_->current();
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
  size_t bytes = s->bm25->memory_bytes() + s->passages.capacity() * sizeof(Impl::StoredPassage) +
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

// ---------------------------------------------------------------- persistence

Status Index::Impl::State::serialize_documents(internal::BinaryWriter* out) const {
  out->put<uint32_t>(static_cast<uint32_t>(docs.size()));
  for (const auto& d : docs) {
    const auto& m = d->meta;
    for (const auto* s : {&m.doc_id, &m.corpus, &m.title, &m.url, &m.last_reviewed, &m.audience, &m.cancer_type,
                          &m.meta_json, &d->clean_text}) {
      out->put_string(*s);
    }
    out->put_strings(m.tags);
    out->put<uint8_t>(static_cast<uint8_t>(m.format));
    out->put<uint32_t>(static_cast<uint32_t>(m.metadata.size()));
    for (const auto& f : m.metadata) {
      out->put_string(f.key);
      out->put_strings(f.values);
    }
  }
  // The file keeps one table of heading paths for all documents (in order of
  // first use, as build() numbered them) and passages point into it.
  std::map<std::vector<std::string>, uint32_t> path_ids;
  std::vector<const std::vector<std::string>*> paths;
  std::vector<StoredPassage> stored = passages;
  for (auto& ps : stored) {
    const auto& path = doc(ps.doc).heading_paths[ps.heading_path];
    auto [it, inserted] = path_ids.try_emplace(path, static_cast<uint32_t>(paths.size()));
    if (inserted) paths.push_back(&path);
    ps.heading_path = it->second;
  }
  out->put<uint32_t>(static_cast<uint32_t>(paths.size()));
  for (const auto* hp : paths) out->put_strings(*hp);
  out->put_vector(stored);
  return Status::ok();
}

Status Index::Impl::deserialize_documents(internal::BinaryReader* in, State* st) {
  uint32_t num_docs = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&num_docs));
  std::vector<std::shared_ptr<StoredDoc>> docs;
  for (uint32_t i = 0; i < num_docs; ++i) {
    auto d = std::make_shared<StoredDoc>();
    auto& m = d->meta;
    for (auto* s : {&m.doc_id, &m.corpus, &m.title, &m.url, &m.last_reviewed, &m.audience, &m.cancer_type,
                    &m.meta_json, &d->clean_text}) {
      MEDSEARCH_RETURN_IF_ERROR(in->get_string(s));
    }
    MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&m.tags));
    uint8_t format = 0;
    MEDSEARCH_RETURN_IF_ERROR(in->get(&format));
    if (format > 1) return in->corrupt("unknown document format");
    m.format = static_cast<io::DocFormat>(format);
    uint32_t fields = 0;
    MEDSEARCH_RETURN_IF_ERROR(in->get(&fields));
    // Grown field by field (each takes at least 8 bytes): a damaged count
    // fails as truncated data, not as a huge allocation.
    for (uint32_t i = 0; i < fields; ++i) {
      auto& f = m.metadata.emplace_back();
      MEDSEARCH_RETURN_IF_ERROR(in->get_string(&f.key));
      MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&f.values));
    }
    docs.push_back(std::move(d));
  }
  uint32_t num_paths = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&num_paths));
  // Grown path by path, not resized to the count the file claims: each path
  // takes at least 4 bytes, so a damaged count fails as truncated, not as
  // an allocation of 4G vectors.
  std::vector<std::vector<std::string>> heading_paths;
  for (uint32_t i = 0; i < num_paths; ++i) MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&heading_paths.emplace_back()));
  MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&st->passages));
  // Each document gets its own copy of the paths its passages use.
  std::unordered_map<uint64_t, uint32_t> local;  // (doc << 32 | file path id) -> the document's path id
  for (auto& p : st->passages) {
    if (p.doc >= docs.size() || p.heading_path >= heading_paths.size() || p.begin > p.end ||
        p.end > docs[p.doc]->clean_text.size()) {
      return in->corrupt("passage refers outside the documents");
    }
    auto& paths = docs[p.doc]->heading_paths;
    auto [it, inserted] = local.try_emplace(uint64_t{p.doc} << 32 | p.heading_path, static_cast<uint32_t>(paths.size()));
    if (inserted) paths.push_back(heading_paths[p.heading_path]);
    p.heading_path = it->second;
  }
  if (!in->at_end()) return in->corrupt("trailing bytes");
  for (uint32_t i = 1; i < st->passages.size(); ++i) {
    if (st->passages[i].doc < st->passages[i - 1].doc) return in->corrupt("passages not in document order");
  }
  st->docs.assign(docs.begin(), docs.end());
  return Status::ok();
}

namespace {

Result<std::string> current_generation(const fs::path& dir) {
  auto current = internal::read_file(dir / kCurrentFile);
  if (!current) {
    if (current.status().code() == StatusCode::kNotFound) {
      return Status::not_found("no medsearch index at " + dir.string() + " (missing " + kCurrentFile + ")");
    }
    return current.status();
  }
  std::string gen = *current;
  while (!gen.empty() && (gen.back() == '\n' || gen.back() == '\r')) gen.pop_back();
  // save() writes "gen-" and digits. Anything else (a '/', or a NUL that the
  // OS would cut the path at) does not name a generation.
  if (gen.size() <= 4 || gen.rfind("gen-", 0) != 0 || gen.find_first_not_of("0123456789", 4) != std::string::npos) {
    return Status::corrupt(dir.string() + "/" + kCurrentFile + " does not name a generation");
  }
  std::error_code ec;
  if (!fs::is_directory(dir / gen, ec)) {
    return Status::corrupt(dir.string() + "/" + kCurrentFile + " names " + gen + ", which does not exist");
  }
  return gen;
}

// The manifest describes what load() read from the data files: a manifest
// that says anything else, or holds a key no save writes, is damaged (else a
// damaged key such as "vectors.bin" would silently drop the passage vectors).
Status check_manifest(simdjson::dom::element manifest, const fs::path& path, size_t documents, size_t passages,
                      const lexical::Bm25Index& bm25, const std::vector<std::string>& corpora, uint32_t dim,
                      const std::string& model_id) {
  auto bad = [&](const std::string& what) { return Status::corrupt(path.string() + ": " + what); };
  auto only_keys = [&](auto e, std::initializer_list<std::string_view> keys) {
    simdjson::dom::object object;
    if (e.get(object)) return false;
    for (auto field : object) {
      if (std::find(keys.begin(), keys.end(), field.key) == keys.end()) return false;
    }
    return true;
  };
  if (!only_keys(manifest, {"format", "version", "documents", "passages", "terms", "bm25", "corpora", "files",
                            "dense"}) ||
      !only_keys(manifest["files"], {kDocumentsFile, kLexicalFile, kVectorsFile, kDenseFile})) {
    return bad("unknown or malformed keys");
  }
  uint64_t n_docs = 0, n_passages = 0, n_terms = 0;
  if (manifest["documents"].get(n_docs) || manifest["passages"].get(n_passages) || manifest["terms"].get(n_terms) ||
      n_docs != documents || n_passages != passages || n_terms != bm25.num_terms()) {
    return bad("document, passage or term counts do not match the data files");
  }
  // Floats are written in their shortest form that reads back as the same float.
  auto same = [](auto e, float v) {
    double d = 0;
    return !e.get(d) && static_cast<float>(d) == v;
  };
  const auto& p = bm25.params();
  if (!only_keys(manifest["bm25"], {"k1", "b", "heading_weight"}) || !same(manifest["bm25"]["k1"], p.k1) ||
      !same(manifest["bm25"]["b"], p.b) || !same(manifest["bm25"]["heading_weight"], p.heading_weight)) {
    return bad("BM25 parameters do not match lexical.bin");
  }
  simdjson::dom::array listed;
  if (manifest["corpora"].get(listed) || listed.size() != corpora.size()) return bad("corpora do not match");
  size_t i = 0;
  for (auto c : listed) {
    std::string_view name;
    if (c.get(name) || name != corpora[i++]) return bad("corpora do not match");
  }
  simdjson::dom::element dense;
  const bool has_dense = !manifest["dense"].get(dense);
  simdjson::dom::element unused;
  if (has_dense != (dim > 0) || (!dim && !manifest["files"][kDenseFile].get(unused))) {
    return bad("passage vectors listed inconsistently");
  }
  std::string_view model;
  uint64_t listed_dim = 0;
  if (has_dense && (!only_keys(dense, {"dim", "model_id"}) || dense["dim"].get(listed_dim) || listed_dim != dim ||
                    dense["model_id"].get(model) || model != model_id)) {
    return bad("dense dim or model_id do not match vectors.bin");
  }
  return Status::ok();
}

}  // namespace

Status Index::save(const fs::path& dir) const {
  // Writers wait: the dense index (shared by generations) must hold still
  // while it is written.
  std::lock_guard writer(impl_->writer_mu);
  const auto cur = impl_->current();
  const Impl::State& st = *cur;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create " + dir.string() + ": " + ec.message());
  uint64_t generation = 1;
  bool is_index = fs::exists(dir / kCurrentFile);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("gen-", 0) == 0) {
      generation = std::max<uint64_t>(generation, std::strtoull(name.c_str() + 4, nullptr, 10) + 1);
    } else if (name != kCurrentFile && name != std::string(kCurrentFile) + ".tmp" && !is_index) {
      return Status::invalid_argument("refusing to save into " + dir.string() +
                                      ": it is not empty and not a medsearch index");
    }
  }
  // What killed saves left behind (gen-N.partial, generations renamed but
  // never made current, old ones not yet removed) goes first, so a save that
  // keeps being killed cannot fill the disk with half-written generations.
  // Without a CURRENT, only .partial ones: a complete generation may be all
  // that is left of an index.
  if (auto current = current_generation(dir); current || current.status().code() == StatusCode::kNotFound) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("gen-", 0) != 0) continue;
      if (current ? name != *current : name.ends_with(".partial")) fs::remove_all(entry.path(), ec);
    }
  }
  char gen_name[32];
  std::snprintf(gen_name, sizeof(gen_name), "gen-%06llu", static_cast<unsigned long long>(generation));
  const fs::path partial = dir / (std::string(gen_name) + ".partial");
  const fs::path final_dir = dir / gen_name;
  fs::remove_all(partial, ec);
  fs::create_directory(partial, ec);
  if (ec) return Status::io_error("cannot create " + partial.string() + ": " + ec.message());

  auto fail = [&](Status e) {
    fs::remove_all(partial, ec);
    return e;
  };
  internal::BinaryWriter documents, lexical;
  write_options(impl_->options, &documents);
  if (Status e = st.serialize_documents(&documents); !e) return fail(e);
  st.bm25->serialize(&lexical);
  internal::JsonWriter m;
  m.begin_object();
  m.key("format").value(kFormatName).key("version").value(kFormatVersion);
  m.key("documents").value(uint64_t{st.docs.size()}).key("passages").value(uint64_t{st.passages.size()});
  m.key("terms").value(uint64_t{st.bm25->num_terms()});
  const auto& bm25 = st.bm25->params();
  m.key("bm25").begin_object().key("k1").value(bm25.k1).key("b").value(bm25.b);
  m.key("heading_weight").value(bm25.heading_weight).end_object();
  m.key("corpora").begin_array();
  for (const auto& c : st.corpora) m.value(c);
  m.end_array();
  m.key("files").begin_object();
  // Passage vectors: dim, model id, then rows (float32).
  internal::BinaryWriter vectors;
  std::vector<std::pair<const char*, const std::string*>> files = {{kDocumentsFile, &documents.buffer()},
                                                                   {kLexicalFile, &lexical.buffer()}};
  if (st.dim) {
    vectors.put<uint32_t>(st.dim);
    vectors.put_string(st.model_id);
    vectors.put_vector(st.vectors);
    files.emplace_back(kVectorsFile, &vectors.buffer());
  }
  for (const auto& [name, data] : files) {
    m.key(name).begin_object();
    m.key("bytes").value(uint64_t{data->size()}).key("xxh64").value(internal::checksum_hex(*data));
    m.end_object();
    if (Status e = internal::write_file_atomic(partial / name, *data); !e) return fail(e);
  }
  // The ANN graph is keyed by passage number on disk. After add() or remove()
  // its keys are vector ids (index_impl.h) and it may hold other generations'
  // rows, so it is left out and load() rebuilds it from the vectors.
  if (st.dense && !st.live && st.dense->size() == st.passages.size() &&
      st.dense->next_doc_id() == st.passages.size()) {
    // The ANN graph checksums itself (core/vector/index_file.h).
    if (Status e = st.dense->save(partial / kDenseFile); !e) return fail(e);
    m.key(kDenseFile).begin_object().key("bytes").value(uint64_t{fs::file_size(partial / kDenseFile, ec)}).end_object();
  }
  m.end_object();
  if (st.dim) m.key("dense").begin_object().key("dim").value(st.dim).key("model_id").value(st.model_id).end_object();
  const std::string manifest = m.end_object().str();
  if (Status e = internal::write_file_atomic(partial / kManifestFile, manifest); !e) return fail(e);
  if (Status e = internal::sync_directory(partial); !e) return fail(e);
  fs::rename(partial, final_dir, ec);
  if (ec) return fail(Status::io_error("cannot rename " + partial.string() + ": " + ec.message()));
  MEDSEARCH_RETURN_IF_ERROR(internal::sync_directory(dir));
  // The switch: CURRENT is replaced by one atomic rename.
  MEDSEARCH_RETURN_IF_ERROR(internal::write_file_atomic(dir / kCurrentFile, std::string(gen_name) + "\n"));
  MEDSEARCH_RETURN_IF_ERROR(internal::sync_directory(dir));
  // Older generations are garbage now; failing to remove them loses nothing.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("gen-", 0) == 0 && name != gen_name) fs::remove_all(entry.path(), ec);
  }
  return Status::ok();
}

Result<std::unique_ptr<Index>> Index::load(const fs::path& dir) {
  auto gen = current_generation(dir);
  if (!gen) return gen.status();
  const fs::path gdir = dir / *gen;
  auto manifest_text = internal::read_file(gdir / kManifestFile);
  if (!manifest_text) return manifest_text.status();

  simdjson::dom::parser parser;
  simdjson::dom::element manifest;
  if (parser.parse(*manifest_text).get(manifest) != simdjson::SUCCESS) {
    return Status::corrupt((gdir / kManifestFile).string() + ": not valid JSON");
  }
  std::string_view format;
  uint64_t version = 0;
  if (manifest["format"].get(format) || format != kFormatName) {
    return Status::corrupt((gdir / kManifestFile).string() + ": not a medsearch index manifest");
  }
  if (manifest["version"].get(version) || version != kFormatVersion) {
    std::string why = version >= 1 && version < kFormatVersion
                          ? " (written by an older medsearch: build the index again)"
                          : "";
    return Status::corrupt((gdir / kManifestFile).string() + ": format version " + std::to_string(version) +
                           " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")" + why);
  }
  std::unique_ptr<Index> index(new Index());
  Impl& im = *index->impl_;
  auto state = std::make_shared<Impl::State>();
  Impl::State& st = *state;
  std::vector<const char*> names = {kDocumentsFile, kLexicalFile};
  simdjson::dom::element vectors_entry;
  if (!manifest["files"][kVectorsFile].get(vectors_entry)) names.push_back(kVectorsFile);
  for (const char* name : names) {
    uint64_t bytes = 0;
    std::string_view checksum;
    if (manifest["files"][name]["bytes"].get(bytes) || manifest["files"][name]["xxh64"].get(checksum)) {
      return Status::corrupt((gdir / kManifestFile).string() + ": no entry for " + name);
    }
    auto data = internal::read_file(gdir / name);
    if (!data) return data.status();
    const std::string path = (gdir / name).string();
    if (data->size() != bytes) {
      return Status::corrupt(path + ": " + std::to_string(data->size()) + " bytes, " + kManifestFile + " says " +
                             std::to_string(bytes) + " (truncated or replaced)");
    }
    if (internal::checksum_hex(*data) != checksum) {
      return Status::corrupt(path + ": checksum mismatch with " + kManifestFile);
    }
    internal::BinaryReader reader(*data, path);
    if (name == std::string_view(kDocumentsFile)) {
      MEDSEARCH_RETURN_IF_ERROR(read_options(&reader, &im.options));
      MEDSEARCH_RETURN_IF_ERROR(im.deserialize_documents(&reader, &st));
    } else if (name == std::string_view(kVectorsFile)) {
      MEDSEARCH_RETURN_IF_ERROR(reader.get(&st.dim));
      MEDSEARCH_RETURN_IF_ERROR(reader.get_string(&st.model_id));
      MEDSEARCH_RETURN_IF_ERROR(reader.get_vector(&st.vectors));
      if (st.dim == 0 || st.vectors.size() != size_t{st.dim} * st.passages.size() || !reader.at_end()) {
        return reader.corrupt("vectors do not match the passages");
      }
    } else {
      auto bm25 = lexical::Bm25Index::deserialize(&reader);
      if (!bm25) return bm25.status();
      st.bm25 = std::make_shared<const lexical::Bm25Index>(std::move(bm25).value());
      if (!reader.at_end()) return reader.corrupt("trailing bytes");
    }
  }
  if (!st.bm25 || st.bm25->num_passages() != st.passages.size()) {
    return Status::corrupt(gdir.string() + ": lexical index and documents disagree on the passage count");
  }
  im.options.bm25 = st.bm25->params();
  im.analyzer = text::Analyzer(im.options.analyzer);
  st.derive_lookup_tables();
  if (st.dim) {
    simdjson::dom::element dense_entry;
    if (!manifest["files"][kDenseFile].get(dense_entry)) {
      uint64_t bytes = 0;
      std::error_code ec;
      const uint64_t size = fs::file_size(gdir / kDenseFile, ec);
      if (!ec && (dense_entry["bytes"].get(bytes) || bytes != size)) {
        return Status::corrupt((gdir / kDenseFile).string() + ": " + std::to_string(size) + " bytes, " +
                               kManifestFile + " says " + std::to_string(bytes));
      }
      auto dense = vector::load_vector_index(gdir / kDenseFile);
      if (!dense) return dense.status();
      if ((*dense)->dim() != st.dim || (*dense)->size() != st.passages.size() ||
          (*dense)->next_doc_id() != st.passages.size()) {
        return Status::corrupt((gdir / kDenseFile).string() + ": does not match the passage vectors");
      }
      st.dense = std::move(dense).value();
      st.passage_vid.resize(st.passages.size());
      for (uint32_t p = 0; p < st.passage_vid.size(); ++p) st.passage_vid[p] = p;
    } else {
      MEDSEARCH_RETURN_IF_ERROR(st.build_dense_index(im.options));
    }
    im.next_vid = static_cast<uint32_t>(st.passages.size());
    st.derive_dense_tables();
  }
  MEDSEARCH_RETURN_IF_ERROR(check_manifest(manifest, gdir / kManifestFile, st.docs.size(), st.passages.size(),
                                           *st.bm25, st.corpora, st.dim, st.model_id));
  im.published.push_back(state);
  im.publish(std::move(state));
  return index;
}

}  // namespace medsearch
