// generation.cc: a generation's derived tables, and making its parts from
// documents: chunking, BM25 over new passages, passage embedding, the dense
// index (index_impl.h).
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/index/index_impl.h"

namespace medsearch::internal {

void Generation::derive_lookup_tables() {
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
  const auto pages = documents_per_heading(docs);
  passage_heading_commonness.resize(passages.size());
  for (size_t p = 0; p < passages.size(); ++p) {
    const auto& path = docs[passages[p].doc]->heading_paths[passages[p].heading_path];
    passage_heading_commonness[p] = path.empty() ? 0.0f : std::log1p(static_cast<float>(pages.at(path.back())));
  }
}

std::unordered_map<std::string_view, uint32_t> documents_per_heading(
    std::span<const std::shared_ptr<const StoredDoc>> docs) {
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> pages;  // heading -> (last doc + 1, documents)
  for (size_t d = 0; d < docs.size(); ++d) {
    for (const auto& path : docs[d]->heading_paths) {
      if (path.empty()) continue;
      auto& [last, count] = pages[path.back()];
      if (last != d + 1) {
        last = static_cast<uint32_t>(d + 1);
        ++count;
      }
    }
  }
  std::unordered_map<std::string_view, uint32_t> out;
  out.reserve(pages.size());
  for (const auto& [heading, v] : pages) out.emplace(heading, v.second);
  return out;
}

void Generation::derive_dense_tables() {
  audience_direction = rank::audience_direction(vectors, dim, passage_doc, doc_audience);
}

Status Generation::build_dense_index(const BuildOptions& options) {
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

Result<std::vector<float>> embed_passages(const Generation& s, uint32_t first, const embed::Embedder& embedder,
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

std::vector<std::shared_ptr<const StoredDoc>> chunk(std::vector<io::Document> documents, const BuildOptions& options,
                                                    const ProgressFn& progress, std::vector<StoredPassage>* passages,
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

Result<lexical::Bm25Index> index_passages(const Generation& s, uint32_t first, const Settings& settings) {
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
      settings.analyzer, n,
      [&](uint32_t i, lexical::Field f) -> std::string_view {
        if (f == lexical::kHeading) return heading_texts[i];
        return titled_bodies[i].empty() ? s.body_text(first + i) : std::string_view(titled_bodies[i]);
      },
      settings.options.bm25);
}

std::string Generation::embedding_text(uint32_t p) const {
  const auto& meta = doc(passages[p].doc).meta;
  std::string out = meta.format == io::DocFormat::kPlain ? meta.title : join(heading_path(p), " > ");
  if (!out.empty()) out += "\n";
  out += body_text(p);
  return out;
}

Passage Generation::passage(uint32_t p) const {
  const auto& ps = passages[p];
  const auto& d = doc(ps.doc);
  Passage h;
  h.number = p;
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

}  // namespace medsearch::internal
