// fuzz_index_load: Index::load (core/index/index.h) and load_vector_index
// (core/vector/vector_index.h) on damaged files.
//
// A small valid index (with passage vectors and an HNSW graph) and three
// standalone vector index files (flat, HNSW float32, HNSW int8) are written
// once per process. An input replaces one file: its first byte picks the
// slot, the rest is the file's new content:
//   slot = (byte & 0x7f) % kSlots, see kSlotNames;
//   bit 0x80 clear: the integrity checks are kept satisfied (manifest bytes
//   and xxh64 for *.bin, the XXH3 trailer for vector index files), so the
//   parsers behind them are reached; set: the bytes are written as they are.
// Seeds are the real files behind their selector byte; `fuzz_index_load
// -runs=0` with MEDSEARCH_FUZZ_WRITE_SEEDS=<dir> writes them there.
//
// Every load must return a Status or an index that answers queries (BM25 and
// hybrid with a query vector, every passage materialised, vector search with
// and without a filter) without crashing.
#include <xxhash.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/corpus.h>
#include <medsearch/index.h>
#include <medsearch/vector_index.h>

#include "core/internal/binary_io.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace medsearch;
namespace fs = std::filesystem;

constexpr uint32_t kDim = 8;
constexpr const char* kSlotNames[] = {"CURRENT",   "manifest.json", "documents.bin", "lexical.bin", "vectors.bin",
                                      "dense.idx", "flat.vec",      "hnsw_f32.vec",  "hnsw_i8.vec"};
constexpr size_t kSlots = std::size(kSlotNames);
constexpr size_t kFirstVectorFile = 6;  // slots from here are standalone vector index files

struct Reference {
  fs::path root;                          // scratch directory
  std::string generation;                 // "gen-000001"
  std::map<std::string, std::string> bytes;  // slot name -> valid content
};

std::vector<io::Document> corpus() {
  std::vector<io::Document> docs(3);
  docs[0].doc_id = "types/mesothelioma/hp.md";
  docs[0].corpus = "nci-pdq";
  docs[0].url = "/types/mesothelioma/hp/mesothelioma-treatment-pdq";
  docs[0].last_reviewed = "2024-03-01";
  docs[0].title = "Mesothelioma Treatment";
  docs[0].format = io::DocFormat::kMarkdown;
  docs[0].tags = {"treatment"};
  docs[0].body = "## Stage III\n\nPemetrexed plus cisplatin after asbestos exposure.\n\n## Recurrent\n\nNivolumab "
                 "and PD-L1 \xE2\x89\xA5""50%.\n";
  docs[1].doc_id = "4983";
  docs[1].corpus = "scifact";
  docs[1].title = "Aspirin and adenoma";
  docs[1].body = "Daily aspirin reduced colorectal adenomas in 1,121 patients.";
  docs[1].meta_json = R"({"year":"2019"})";
  docs[2].doc_id = "types/lung/patient.md";
  docs[2].corpus = "nci-pdq";
  docs[2].url = "/types/lung/patient/lung-treatment-pdq";
  docs[2].title = "Lung Cancer";
  docs[2].format = io::DocFormat::kMarkdown;
  docs[2].body = "## Screening\n\nLow-dose CT screening for heavy smokers.\n";
  for (auto& d : docs) io::derive_from_url(d.url, &d.audience, &d.cancer_type);
  return docs;
}

std::vector<float> rows(size_t n) {
  std::vector<float> v(n * kDim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7f * static_cast<float>(i) + 1.0f);
  return v;
}

std::string slurp(const fs::path& p) {
  auto data = internal::read_file(p);
  FUZZ_CHECK(data.is_ok(), data.status().to_string());
  return std::move(data).value();
}

void write_vector_file(const fs::path& path, vector::IndexKind kind, vector::VectorDType dtype) {
  vector::IndexOptions o;
  o.dim = kDim;
  o.metric = kind == vector::IndexKind::kFlat ? vector::Metric::kCosine : vector::Metric::kInnerProduct;
  o.kind = kind;
  o.dtype = dtype;
  o.M = 4;
  o.ef_construction = 16;
  auto index = vector::make_vector_index(o);
  FUZZ_CHECK(index.is_ok(), index.status().to_string());
  const std::vector<float> r = rows(12);
  FUZZ_CHECK((*index)->add(vector::MatrixView{r.data(), 12, kDim}, {}).is_ok(), "add");
  const vector::DocId gone[] = {3};
  FUZZ_CHECK((*index)->remove(gone).is_ok(), "remove");  // a tombstone in the file
  FUZZ_CHECK((*index)->save(path).is_ok(), "save " + path.string());
}

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.root = fuzz::scratch_dir("index_load");
    BuildOptions options;
    options.markdown_chunker.max_tokens = 8;
    options.markdown_chunker.overlap_tokens = 2;
    options.exact_below = 0;  // an HNSW graph, so dense.idx holds one
    options.hnsw_m = 4;
    options.hnsw_ef_construction = 16;
    auto index = Index::build(corpus(), options);
    FUZZ_CHECK(index.is_ok(), index.status().to_string());
    const std::vector<float> v = rows((*index)->num_passages());
    FUZZ_CHECK((*index)->attach_vectors(v, kDim, "fuzz-8").is_ok(), "attach_vectors");
    const fs::path dir = r.root / "reference";
    FUZZ_CHECK((*index)->save(dir).is_ok(), "save");
    r.generation = slurp(dir / "CURRENT");
    while (!r.generation.empty() && r.generation.back() == '\n') r.generation.pop_back();
    r.bytes["CURRENT"] = slurp(dir / "CURRENT");
    for (size_t s = 1; s < kFirstVectorFile; ++s) r.bytes[kSlotNames[s]] = slurp(dir / r.generation / kSlotNames[s]);
    write_vector_file(r.root / "flat.vec", vector::IndexKind::kFlat, vector::VectorDType::kFloat32);
    write_vector_file(r.root / "hnsw_f32.vec", vector::IndexKind::kHnsw, vector::VectorDType::kFloat32);
    write_vector_file(r.root / "hnsw_i8.vec", vector::IndexKind::kHnsw, vector::VectorDType::kInt8);
    for (size_t s = kFirstVectorFile; s < kSlots; ++s) r.bytes[kSlotNames[s]] = slurp(r.root / kSlotNames[s]);
    return r;
  }();
  return ref;
}

// The manifest with `name`'s entry made to describe `content`.
std::string manifest_for(std::string manifest, const std::string& name, std::string_view content) {
  const std::string key = "\"" + name + "\": {";
  const size_t at = manifest.find(key);
  FUZZ_CHECK(at != std::string::npos, "no manifest entry for " + name);
  const size_t end = manifest.find('}', at);
  const std::string entry = key + "\"bytes\": " + std::to_string(content.size()) + ", \"xxh64\": \"" +
                            internal::checksum_hex(content) + "\"";
  return manifest.replace(at, end - at, entry);
}

// A vector index file with its XXH3 trailer made to match its bytes.
std::string with_trailer(std::string file) {
  if (file.size() < 32) return file;
  const uint64_t h = XXH3_64bits(file.data(), file.size() - 16);
  std::memcpy(file.data() + file.size() - 16, &h, 8);
  return file;
}

void exercise(const Index& index) {
  const auto snapshot = index.snapshot();
  const uint32_t n = snapshot->num_passages();
  for (uint32_t p = 0; p < n; ++p) {
    const Passage h = snapshot->passage(p);
    FUZZ_CHECK(snapshot->document_of(p) < snapshot->num_documents(), "passage of no document");
    FUZZ_CHECK(h.begin <= h.end && h.end <= snapshot->clean_text(snapshot->document_of(p)).size(), "passage span");
  }
  (void)index.stats();
  SearchOptions o;
  o.k = 4;
  for (const char* q : {"pemetrexed asbestos", "aspirin adenoma screening"}) {
    for (const auto level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
      o.level = level;
      o.mode = SearchMode::kBm25;
      (void)index.search(q, o);
      o.filters.audience = {"hp"};
      o.filters.corpus = {"nci-pdq"};
      (void)index.search(q, o);
      o.filters = {};
      if (index.has_vectors()) {
        const std::vector<float> qv = rows(1);
        const uint32_t dim = index.stats().dim;
        if (dim == qv.size()) {
          o.query_vector = qv;
          for (const auto mode : {SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
            o.mode = mode;
            (void)index.search(q, o);
          }
          o.query_vector = {};
        }
      }
    }
  }
}

void exercise(const vector::VectorIndex& index) {
  if (index.dim() == 0 || index.dim() > 4096) return;
  std::vector<float> q(index.dim(), 0.5f);
  std::vector<vector::DocId> ids(5);
  std::vector<float> scores(5);
  vector::SearchParams params;
  params.k = 5;
  (void)index.search(vector::MatrixView{q.data(), 1, index.dim()}, params, ids, scores);
  vector::IdFilter filter;
  for (vector::DocId id : {0u, 2u, 5u, 7u, 11u}) filter.add(id);
  params.filter = &filter;
  for (const auto mode : {vector::FilterMode::kGraph, vector::FilterMode::kExact}) {
    params.filter_mode = mode;
    (void)index.search(vector::MatrixView{q.data(), 1, index.dim()}, params, ids, scores);
  }
  (void)index.size();
  (void)index.contains(3);
}

void write_seeds(const char* dir) {
  const Reference& ref = reference();
  fs::create_directories(dir);
  for (size_t s = 0; s < kSlots; ++s) {
    std::string seed(1, static_cast<char>(s));
    seed += ref.bytes.at(kSlotNames[s]);
    fuzz::write_bytes(fs::path(dir) / (std::string("slot") + std::to_string(s) + "_" + kSlotNames[s]), seed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("MEDSEARCH_FUZZ_WRITE_SEEDS")) write_seeds(dir);
  (void)reference();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Reference& ref = reference();
  const size_t slot = (data[0] & 0x7f) % kSlots;
  const bool keep_checks = (data[0] & 0x80) == 0;
  const std::string name = kSlotNames[slot];
  std::string content(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (slot >= kFirstVectorFile) {
    const fs::path path = ref.root / "vector.idx";
    fuzz::write_bytes(path, keep_checks ? with_trailer(content) : content);
    auto loaded = vector::load_vector_index(path);
    if (loaded) exercise(**loaded);
    else FUZZ_CHECK(loaded.status().code() == StatusCode::kCorrupt, loaded.status().to_string());
    return 0;
  }

  // An index directory: the reference files, with one replaced.
  const fs::path dir = ref.root / "index";
  const fs::path gdir = dir / ref.generation;
  static const bool made = fs::create_directories(gdir);
  (void)made;
  std::string manifest = ref.bytes.at("manifest.json");
  if (name == "manifest.json") manifest = content;
  if (keep_checks && (name == "documents.bin" || name == "lexical.bin" || name == "vectors.bin")) {
    manifest = manifest_for(manifest, name, content);
  }
  if (keep_checks && name == "dense.idx") content = with_trailer(content);
  fuzz::write_bytes(dir / "CURRENT", name == "CURRENT" ? content : ref.bytes.at("CURRENT"));
  fuzz::write_bytes(gdir / "manifest.json", manifest);
  for (const char* file : {"documents.bin", "lexical.bin", "vectors.bin", "dense.idx"}) {
    fuzz::write_bytes(gdir / file, name == file ? content : ref.bytes.at(file));
  }
  auto loaded = Index::load(dir);
  if (loaded) {
    exercise(**loaded);
  } else {
    const StatusCode code = loaded.status().code();
    FUZZ_CHECK(code == StatusCode::kCorrupt || code == StatusCode::kNotFound || code == StatusCode::kOldFormat,
               loaded.status().to_string());
  }
  return 0;
}
