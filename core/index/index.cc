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
#include "core/internal/json.h"
#include "core/vector/vector_index.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kFormatVersion = 1;
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

void Index::Impl::derive_lookup_tables() {
  std::set<std::string> corpus_set, type_set{""};
  for (const auto& d : docs) {
    corpus_set.insert(d.meta.corpus);
    type_set.insert(d.meta.cancer_type);
  }
  corpora.assign(corpus_set.begin(), corpus_set.end());
  cancer_types.assign(type_set.begin(), type_set.end());
  for (auto& d : docs) {
    d.corpus = static_cast<uint32_t>(std::lower_bound(corpora.begin(), corpora.end(), d.meta.corpus) - corpora.begin());
    d.cancer_type = static_cast<uint32_t>(
        std::lower_bound(cancer_types.begin(), cancer_types.end(), d.meta.cancer_type) - cancer_types.begin());
    d.audience = audience_code(d.meta.audience);
    d.date = date_number(d.meta.last_reviewed);
  }
  passage_doc.resize(passages.size());
  for (size_t p = 0; p < passages.size(); ++p) passage_doc[p] = passages[p].doc;
  doc_first_passage.assign(docs.size() + 1, static_cast<uint32_t>(passages.size()));
  for (size_t p = passages.size(); p-- > 0;) doc_first_passage[passages[p].doc] = static_cast<uint32_t>(p);
  for (size_t d = docs.size(); d-- > 0;) doc_first_passage[d] = std::min(doc_first_passage[d], doc_first_passage[d + 1]);
}

Status Index::Impl::build_dense_index() {
  vector::IndexOptions vo;
  vo.dim = dim;
  vo.metric = vector::Metric::kInnerProduct;
  vo.kind = passages.size() < options.exact_below ? vector::IndexKind::kFlat : vector::IndexKind::kHnsw;
  vo.M = options.hnsw_m;
  vo.ef_construction = options.hnsw_ef_construction;
  auto index = vector::make_vector_index(vo);
  if (!index) return index.status();
  vector::MatrixView rows{vectors.data(), passages.size(), dim};
  MEDSEARCH_RETURN_IF_ERROR((*index)->add(rows, {}));
  dense = std::move(index).value();
  return Status::ok();
}

Result<std::unique_ptr<Index>> Index::build(std::vector<io::Document> documents, const BuildOptions& options,
                                            const ProgressFn& progress,
                                            std::shared_ptr<const embed::Embedder> embedder) {
  if (documents.empty()) return Status::invalid_argument("cannot build an index from no documents");
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

  std::map<std::vector<std::string>, uint32_t> path_ids;
  im.docs.resize(n);
  for (size_t i = 0; i < n; ++i) {
    auto& stored = im.docs[i];
    stored.meta = std::move(documents[i]);
    stored.meta.body.clear();
    stored.meta.body.shrink_to_fit();
    stored.clean_text = std::move(chunked[i].clean_text);
    uint32_t ordinal = 0;
    for (auto& c : chunked[i].chunks) {
      auto [it, inserted] = path_ids.try_emplace(c.heading_path, static_cast<uint32_t>(im.heading_paths.size()));
      if (inserted) im.heading_paths.push_back(std::move(c.heading_path));
      im.passages.push_back({static_cast<uint32_t>(i), ordinal++, c.begin, c.end, it->second});
    }
  }
  if (im.passages.empty()) return Status::invalid_argument("the documents produced no passages (all empty?)");
  im.derive_lookup_tables();

  // Heading field texts are joined once here; the body is a view into the clean
  // text, except for plain (BEIR) passages, whose body field is title + text as
  // in the usual BEIR BM25 set-up (the title also feeds the heading field).
  std::vector<std::string> heading_texts(im.heading_paths.size());
  for (size_t h = 0; h < im.heading_paths.size(); ++h) heading_texts[h] = join(im.heading_paths[h], " ");
  std::vector<std::string> titled_bodies(im.passages.size());
  for (uint32_t p = 0; p < im.passages.size(); ++p) {
    const auto& meta = im.docs[im.passages[p].doc].meta;
    if (meta.format == io::DocFormat::kPlain && !meta.title.empty()) {
      titled_bodies[p] = meta.title + "\n" + std::string(im.body_text(p));
    }
  }
  if (progress) progress("indexing", 0, im.passages.size());
  auto bm25 = lexical::Bm25Index::build(
      im.analyzer, static_cast<uint32_t>(im.passages.size()),
      [&](uint32_t p, lexical::Field f) -> std::string_view {
        if (f == lexical::kHeading) return heading_texts[im.passages[p].heading_path];
        return titled_bodies[p].empty() ? im.body_text(p) : std::string_view(titled_bodies[p]);
      },
      options.bm25);
  if (!bm25) return bm25.status();
  im.bm25 = std::move(bm25).value();
  if (progress) progress("indexing", im.passages.size(), im.passages.size());

  if (embedder) {
    const uint32_t dim = embedder->dim();
    const size_t n = im.passages.size();
    std::vector<float> vectors(n * dim);
    const size_t batch = std::max<uint32_t>(1, options.embed_batch);
    if (progress) progress("embedding", 0, n);
    std::vector<std::string> texts;
    std::vector<std::string_view> views;
    for (size_t start = 0; start < n; start += batch) {
      const size_t stop = std::min(n, start + batch);
      texts.clear();
      for (size_t p = start; p < stop; ++p) texts.push_back(index->embedding_text(static_cast<uint32_t>(p)));
      views.assign(texts.begin(), texts.end());
      MEDSEARCH_RETURN_IF_ERROR(embedder->embed(views, embed::TextKind::kPassage,
                                                std::span<float>(vectors.data() + start * dim, (stop - start) * dim)));
      if (progress) progress("embedding", stop, n);
    }
    MEDSEARCH_RETURN_IF_ERROR(index->attach_vectors(vectors, dim, embedder->model_id()));
    im.embedder = std::move(embedder);
  }
  return index;
}

std::string Index::embedding_text(uint32_t p) const {
  const Impl& im = *impl_;
  const auto& meta = im.docs[im.passages[p].doc].meta;
  const auto& path = im.heading_paths[im.passages[p].heading_path];
  std::string out = meta.format == io::DocFormat::kPlain ? meta.title : join(path, " > ");
  if (!out.empty()) out += "\n";
  out += im.body_text(p);
  return out;
}

bool Index::has_vectors() const { return impl_->dim > 0; }

std::span<const float> Index::vector(uint32_t p) const {
  return {impl_->vectors.data() + size_t{p} * impl_->dim, impl_->dim};
}

Status Index::attach_vectors(std::span<const float> rows, uint32_t dim, std::string model_id) {
  Impl& im = *impl_;
  if (dim == 0) return Status::invalid_argument("vector dimension must be positive");
  if (rows.size() != size_t{im.passages.size()} * dim) {
    return Status::invalid_argument("expected " + std::to_string(im.passages.size()) + " x " + std::to_string(dim) +
                                    " floats (one row per passage), got " + std::to_string(rows.size()));
  }
  std::vector<float> vectors(rows.begin(), rows.end());
  for (size_t p = 0; p < im.passages.size(); ++p) {
    float* v = vectors.data() + p * dim;
    double norm = 0;
    for (uint32_t j = 0; j < dim; ++j) {
      if (!std::isfinite(v[j])) return Status::invalid_argument("passage vector " + std::to_string(p) + " has NaN or inf");
      norm += double{v[j]} * v[j];
    }
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (uint32_t j = 0; j < dim; ++j) v[j] *= inv;
    }
  }
  if (im.embedder && (im.embedder->model_id() != model_id || im.embedder->dim() != dim)) im.embedder.reset();
  im.vectors = std::move(vectors);
  im.dim = dim;
  im.model_id = std::move(model_id);
  {
    std::lock_guard lock(im.cache_mu);
    im.cache_map.clear();
    im.cache_lru.clear();
  }
  return im.build_dense_index();
}

Status Index::attach_embedder(std::shared_ptr<const embed::Embedder> embedder) {
  Impl& im = *impl_;
  if (!embedder) return Status::invalid_argument("no embedder given");
  if (im.dim != 0 && (embedder->model_id() != im.model_id || embedder->dim() != im.dim)) {
    return Status::invalid_argument("the index holds vectors of model '" + im.model_id + "' (dim " +
                                    std::to_string(im.dim) + "), not '" + embedder->model_id() + "' (dim " +
                                    std::to_string(embedder->dim()) + ")");
  }
  im.embedder = std::move(embedder);
  return Status::ok();
}

Result<std::vector<float>> Index::embed_query(std::string_view query) const { return impl_->embed_query(query); }

Result<std::vector<float>> Index::Impl::embed_query(std::string_view query) const {
  const Impl& im = *this;
  if (!im.embedder) {
    return Status::invalid_argument(im.dim ? "no encoder attached to embed the query (attach one, or pass a query vector)"
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

SearchHit Index::passage(uint32_t p) const {
  const Impl& im = *impl_;
  const auto& ps = im.passages[p];
  const auto& doc = im.docs[ps.doc];
  SearchHit h;
  h.passage = p;
  h.passage_id = im.passage_id(p);
  h.doc_id = doc.meta.doc_id;
  h.corpus = doc.meta.corpus;
  h.title = doc.meta.title;
  h.url = doc.meta.url;
  h.heading_path = im.heading_paths[ps.heading_path];
  h.begin = ps.begin;
  h.end = ps.end;
  h.text = std::string(im.body_text(p));
  h.audience = doc.meta.audience;
  h.cancer_type = doc.meta.cancer_type;
  h.last_reviewed = doc.meta.last_reviewed;
  h.tags = doc.meta.tags;
  h.meta_json = doc.meta.meta_json;
  return h;
}

SearchHit Index::materialize(const ScoredHit& scored) const {
  SearchHit h = passage(scored.passage);
  h.score = scored.score;
  h.body_score = scored.body_score;
  h.heading_score = scored.heading_score;
  h.dense_score = scored.dense_score;
  h.has_features = scored.has_features;
  h.features = scored.features;
  return h;
}

uint32_t Index::num_passages() const { return static_cast<uint32_t>(impl_->passages.size()); }
uint32_t Index::num_documents() const { return static_cast<uint32_t>(impl_->docs.size()); }
uint32_t Index::document_of(uint32_t p) const { return impl_->passages[p].doc; }
const std::string& Index::doc_id(uint32_t doc) const { return impl_->docs[doc].meta.doc_id; }
const std::string& Index::clean_text(uint32_t doc) const { return impl_->docs[doc].clean_text; }
const BuildOptions& Index::options() const { return impl_->options; }

IndexStats Index::stats() const {
  const Impl& im = *impl_;
  IndexStats s;
  s.documents = im.docs.size();
  s.passages = im.passages.size();
  s.terms = im.bm25.num_terms();
  s.corpora = im.corpora;
  s.dim = im.dim;
  s.model_id = im.model_id;
  size_t bytes = im.bm25.memory_bytes() + im.passages.capacity() * sizeof(Impl::StoredPassage) +
                 im.passage_doc.capacity() * 4;
  for (const auto& d : im.docs) {
    bytes += sizeof(d) + d.clean_text.capacity() + d.meta.doc_id.capacity() + d.meta.title.capacity() +
             d.meta.url.capacity() + d.meta.meta_json.capacity();
  }
  for (const auto& hp : im.heading_paths) {
    for (const auto& h : hp) bytes += sizeof(h) + h.capacity();
  }
  bytes += im.vectors.capacity() * sizeof(float);
  if (im.dense) bytes += im.dense->memory_bytes();
  s.memory_bytes = bytes;
  return s;
}

// ---------------------------------------------------------------- persistence

Status Index::Impl::serialize_documents(internal::BinaryWriter* out) const {
  const auto& a = options.analyzer;
  out->put<uint8_t>(a.stem);
  out->put<uint8_t>(a.remove_stopwords);
  out->put_string(a.stemmer);
  for (const auto* c : {&options.markdown_chunker, &options.plain_chunker}) {
    out->put<uint32_t>(c->max_tokens);
    out->put<uint32_t>(c->overlap_tokens);
    out->put<uint32_t>(c->min_tokens);
  }
  out->put<uint32_t>(static_cast<uint32_t>(docs.size()));
  for (const auto& d : docs) {
    const auto& m = d.meta;
    for (const auto* s : {&m.doc_id, &m.corpus, &m.title, &m.url, &m.last_reviewed, &m.audience, &m.cancer_type,
                          &m.meta_json, &d.clean_text}) {
      out->put_string(*s);
    }
    out->put_strings(m.tags);
    out->put<uint8_t>(static_cast<uint8_t>(m.format));
  }
  out->put<uint32_t>(static_cast<uint32_t>(heading_paths.size()));
  for (const auto& hp : heading_paths) out->put_strings(hp);
  out->put_vector(passages);
  return Status::ok();
}

Status Index::Impl::deserialize_documents(internal::BinaryReader* in) {
  uint8_t stem = 0, stop = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&stem));
  MEDSEARCH_RETURN_IF_ERROR(in->get(&stop));
  options.analyzer.stem = stem;
  options.analyzer.remove_stopwords = stop;
  MEDSEARCH_RETURN_IF_ERROR(in->get_string(&options.analyzer.stemmer));
  for (auto* c : {&options.markdown_chunker, &options.plain_chunker}) {
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->max_tokens));
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->overlap_tokens));
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->min_tokens));
  }
  uint32_t num_docs = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&num_docs));
  docs.clear();
  for (uint32_t i = 0; i < num_docs; ++i) {
    StoredDoc d;
    auto& m = d.meta;
    for (auto* s : {&m.doc_id, &m.corpus, &m.title, &m.url, &m.last_reviewed, &m.audience, &m.cancer_type,
                    &m.meta_json, &d.clean_text}) {
      MEDSEARCH_RETURN_IF_ERROR(in->get_string(s));
    }
    MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&m.tags));
    uint8_t format = 0;
    MEDSEARCH_RETURN_IF_ERROR(in->get(&format));
    if (format > 1) return in->corrupt("unknown document format");
    m.format = static_cast<io::DocFormat>(format);
    docs.push_back(std::move(d));
  }
  uint32_t num_paths = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&num_paths));
  // Grown path by path, not resized to the count the file claims: each path
  // takes at least 4 bytes, so a damaged count fails as truncated, not as
  // an allocation of 4G vectors.
  heading_paths.clear();
  for (uint32_t i = 0; i < num_paths; ++i) MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&heading_paths.emplace_back()));
  MEDSEARCH_RETURN_IF_ERROR(in->get_vector(&passages));
  for (const auto& p : passages) {
    if (p.doc >= docs.size() || p.heading_path >= heading_paths.size() || p.begin > p.end ||
        p.end > docs[p.doc].clean_text.size()) {
      return in->corrupt("passage refers outside the documents");
    }
  }
  if (!in->at_end()) return in->corrupt("trailing bytes");
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
  // Parameters are written with std::to_string (6 decimals).
  auto same = [](auto e, float v) {
    double d = 0;
    return !e.get(d) && d == std::stod(std::to_string(v));
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

  auto fail = [&](Status st) {
    fs::remove_all(partial, ec);
    return st;
  };
  internal::BinaryWriter documents, lexical;
  if (Status st = impl_->serialize_documents(&documents); !st) return fail(st);
  impl_->bm25.serialize(&lexical);
  const IndexStats s = stats();
  std::string manifest = "{\n  \"format\": \"" + std::string(kFormatName) + "\",\n  \"version\": " +
                         std::to_string(kFormatVersion) + ",\n  \"documents\": " + std::to_string(s.documents) +
                         ",\n  \"passages\": " + std::to_string(s.passages) + ",\n  \"terms\": " +
                         std::to_string(s.terms) + ",\n  \"bm25\": {\"k1\": " + std::to_string(impl_->bm25.params().k1) +
                         ", \"b\": " + std::to_string(impl_->bm25.params().b) + ", \"heading_weight\": " +
                         std::to_string(impl_->bm25.params().heading_weight) + "},\n  \"corpora\": [";
  for (size_t i = 0; i < s.corpora.size(); ++i) manifest += (i ? ", \"" : "\"") + internal::json_escape(s.corpora[i]) + "\"";
  manifest += "],\n  \"files\": {";
  // Passage vectors: dim, model id, then rows (float32).
  internal::BinaryWriter vectors;
  std::vector<std::pair<const char*, const std::string*>> files = {{kDocumentsFile, &documents.buffer()},
                                                                   {kLexicalFile, &lexical.buffer()}};
  if (impl_->dim) {
    vectors.put<uint32_t>(impl_->dim);
    vectors.put_string(impl_->model_id);
    vectors.put_vector(impl_->vectors);
    files.emplace_back(kVectorsFile, &vectors.buffer());
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [name, data] = files[i];
    manifest += std::string(i ? "," : "") + "\n    \"" + name + "\": {\"bytes\": " + std::to_string(data->size()) +
                ", \"xxh64\": \"" + internal::checksum_hex(*data) + "\"}";
    if (Status st = internal::write_file_atomic(partial / name, *data); !st) return fail(st);
  }
  if (impl_->dense) {
    // The ANN graph checksums itself (core/vector/index_file.h).
    if (Status st = impl_->dense->save(partial / kDenseFile); !st) return fail(st);
    manifest += ",\n    \"" + std::string(kDenseFile) + "\": {\"bytes\": " +
                std::to_string(fs::file_size(partial / kDenseFile, ec)) + "}";
  }
  manifest += "\n  }";
  if (impl_->dim) {
    manifest += ",\n  \"dense\": {\"dim\": " + std::to_string(impl_->dim) + ", \"model_id\": \"" +
                internal::json_escape(impl_->model_id) + "\"}";
  }
  manifest += "\n}\n";
  if (Status st = internal::write_file_atomic(partial / kManifestFile, manifest); !st) return fail(st);
  if (Status st = internal::sync_directory(partial); !st) return fail(st);
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
    return Status::corrupt((gdir / kManifestFile).string() + ": format version " + std::to_string(version) +
                           " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  std::unique_ptr<Index> index(new Index());
  Impl& im = *index->impl_;
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
      MEDSEARCH_RETURN_IF_ERROR(im.deserialize_documents(&reader));
    } else if (name == std::string_view(kVectorsFile)) {
      MEDSEARCH_RETURN_IF_ERROR(reader.get(&im.dim));
      MEDSEARCH_RETURN_IF_ERROR(reader.get_string(&im.model_id));
      MEDSEARCH_RETURN_IF_ERROR(reader.get_vector(&im.vectors));
      if (im.dim == 0 || im.vectors.size() != size_t{im.dim} * im.passages.size() || !reader.at_end()) {
        return reader.corrupt("vectors do not match the passages");
      }
    } else {
      auto bm25 = lexical::Bm25Index::deserialize(&reader);
      if (!bm25) return bm25.status();
      im.bm25 = std::move(bm25).value();
      if (!reader.at_end()) return reader.corrupt("trailing bytes");
    }
  }
  if (im.bm25.num_passages() != im.passages.size()) {
    return Status::corrupt(gdir.string() + ": lexical index and documents disagree on the passage count");
  }
  im.options.bm25 = im.bm25.params();
  im.analyzer = text::Analyzer(im.options.analyzer);
  im.derive_lookup_tables();
  if (im.dim) {
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
      if ((*dense)->dim() != im.dim || (*dense)->size() != im.passages.size()) {
        return Status::corrupt((gdir / kDenseFile).string() + ": does not match the passage vectors");
      }
      im.dense = std::move(dense).value();
    } else {
      MEDSEARCH_RETURN_IF_ERROR(im.build_dense_index());
    }
  }
  MEDSEARCH_RETURN_IF_ERROR(check_manifest(manifest, gdir / kManifestFile, im.docs.size(), im.passages.size(),
                                           im.bm25, im.corpora, im.dim, im.model_id));
  return index;
}

}  // namespace medsearch
