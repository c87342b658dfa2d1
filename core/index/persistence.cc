// persistence.cc: Index::save() and Index::load(). An index directory holds
// generations (gen-NNNNNN/) and CURRENT, which names the complete one; a
// generation holds documents.bin (build options, documents, passages),
// lexical.bin (BM25), vectors.bin and dense.idx (with vectors) and
// manifest.json (format, version, counts, each file's size and checksum).
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include <medsearch/vector_index.h>

#include "core/index/index_impl.h"
#include "core/index/options_io.h"
#include "core/internal/binary_io.h"
#include "core/internal/generation_dir.h"
#include "core/internal/json.h"

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
constexpr char kManifestFile[] = "manifest.json";

}  // namespace

Status internal::serialize_documents(const internal::Generation& g, internal::BinaryWriter* out) {
  out->put<uint32_t>(static_cast<uint32_t>(g.docs.size()));
  for (const auto& d : g.docs) {
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
  std::vector<internal::StoredPassage> stored = g.passages;
  for (auto& ps : stored) {
    const auto& path = g.doc(ps.doc).heading_paths[ps.heading_path];
    auto [it, inserted] = path_ids.try_emplace(path, static_cast<uint32_t>(paths.size()));
    if (inserted) paths.push_back(&path);
    ps.heading_path = it->second;
  }
  out->put<uint32_t>(static_cast<uint32_t>(paths.size()));
  for (const auto* hp : paths) out->put_strings(*hp);
  out->put_vector(stored);
  return Status::ok();
}

Status internal::deserialize_documents(internal::BinaryReader* in, internal::Generation* st) {
  uint32_t num_docs = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&num_docs));
  std::vector<std::shared_ptr<internal::StoredDoc>> docs;
  for (uint32_t i = 0; i < num_docs; ++i) {
    auto d = std::make_shared<internal::StoredDoc>();
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
  std::lock_guard lock(impl_->writer_mu);
  const auto snapshot = impl_->current();
  const internal::Generation& st = *snapshot->parts().gen;
  // Written into a partial generation, published whole (removed on any error).
  auto writer = internal::GenerationWriter::begin(dir, "medsearch index");
  if (!writer) return writer.status();
  const fs::path& partial = writer->partial();
  std::error_code ec;
  internal::BinaryWriter documents, lexical;
  write_options(snapshot->options(), &documents);
  MEDSEARCH_RETURN_IF_ERROR(internal::serialize_documents(st, &documents));
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
    MEDSEARCH_RETURN_IF_ERROR(internal::write_file_atomic(partial / name, *data));
  }
  // The ANN graph is keyed by passage number on disk. After add() or remove()
  // its keys are vector ids (index_impl.h) and it may hold other generations'
  // rows, so it is left out and load() rebuilds it from the vectors.
  if (st.dense && !st.live && st.dense->size() == st.passages.size() &&
      st.dense->next_doc_id() == st.passages.size()) {
    // The ANN graph checksums itself (core/vector/index_file.h).
    MEDSEARCH_RETURN_IF_ERROR(st.dense->save(partial / kDenseFile));
    m.key(kDenseFile).begin_object().key("bytes").value(uint64_t{fs::file_size(partial / kDenseFile, ec)}).end_object();
  }
  m.end_object();
  if (st.dim) m.key("dense").begin_object().key("dim").value(st.dim).key("model_id").value(st.model_id).end_object();
  const std::string manifest = m.end_object().str();
  MEDSEARCH_RETURN_IF_ERROR(internal::write_file_atomic(partial / kManifestFile, manifest));
  return writer->publish();
}

Result<std::unique_ptr<Index>> Index::load(const fs::path& dir) {
  auto gen = internal::current_generation(dir, "medsearch index");
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
    const bool older = version >= 1 && version < kFormatVersion;
    std::string why = older ? " (written by an older medsearch: build the index again)" : "";
    return Status(older ? StatusCode::kOldFormat : StatusCode::kCorrupt,(gdir / kManifestFile).string() + ": format version " + std::to_string(version) +
                           " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")" + why);
  }
  std::unique_ptr<Index> index(new Index());
  Impl& im = *index->impl_;
  auto state = std::make_shared<internal::Generation>();
  internal::Generation& st = *state;
  auto settings = std::make_shared<internal::Settings>();
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
      MEDSEARCH_RETURN_IF_ERROR(read_options(&reader, &settings->options));
      MEDSEARCH_RETURN_IF_ERROR(internal::deserialize_documents(&reader, &st));
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
  settings->options.bm25 = st.bm25->params();
  settings->analyzer = text::Analyzer(settings->options.analyzer);
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
      MEDSEARCH_RETURN_IF_ERROR(st.build_dense_index(settings->options));
    }
    im.next_vid = static_cast<uint32_t>(st.passages.size());
    st.derive_dense_tables();
  }
  MEDSEARCH_RETURN_IF_ERROR(check_manifest(manifest, gdir / kManifestFile, st.docs.size(), st.passages.size(),
                                           *st.bm25, st.corpora, st.dim, st.model_id));
  std::lock_guard writer(im.writer_mu);
  im.published.push_back(state);
  internal::SnapshotParts parts;
  parts.gen = std::move(state);
  parts.settings = std::move(settings);
  im.publish(std::move(parts));
  return index;
}

}  // namespace medsearch
