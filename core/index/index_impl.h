// index_impl.h: what Index and Snapshot are made of, shared by the files
// that implement them: index.cc (build, attaching, publication),
// generation.cc (a generation's tables, chunking, embedding), mutation.cc
// (add, remove), persistence.cc (save, load), query_cache.cc, filters.cc,
// snapshot.cc (accessors) and pipeline.cc (the query pipeline). Not installed.
#pragma once

#include <charconv>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <medsearch/index.h>

#include "core/internal/binary_io.h"
#include "core/lexical/bm25_index.h"
#include "core/rank/features.h"
#include "core/text/analyzer.h"
#include "core/text/chunker.h"
#include "core/vector/vector_index_inl.h"

namespace medsearch {

enum Audience : uint8_t { kAudienceNone = 0, kAudienceHp = 1, kAudiencePatient = 2 };

inline uint8_t audience_code(std::string_view a) {
  if (a == "hp") return kAudienceHp;
  if (a == "patient") return kAudiencePatient;
  return kAudienceNone;
}

// "YYYY-MM-DD" -> YYYYMMDD, or 0 when not a date.
inline uint32_t date_number(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return 0;
  uint32_t y = 0, m = 0, d = 0;
  auto parse = [](std::string_view part, uint32_t* out) {
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), *out);
    return ec == std::errc() && ptr == part.data() + part.size();
  };
  if (!parse(s.substr(0, 4), &y) || !parse(s.substr(5, 2), &m) || !parse(s.substr(8, 2), &d)) return 0;
  if (m < 1 || m > 12 || d < 1 || d > 31) return 0;
  return y * 10000 + m * 100 + d;
}



inline std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

namespace internal {

// A document as stored: shared by every generation that holds it.
struct StoredDoc {
  io::Document meta;  // body left empty: the clean text replaces it
  std::string clean_text;
  std::vector<std::vector<std::string>> heading_paths;  // its passages' heading paths
};

struct StoredPassage {
  uint32_t doc;
  uint32_t ordinal;
  uint32_t begin;
  uint32_t end;
  uint32_t heading_path;  // id into its document's heading_paths
};

// One generation of the documents: immutable once published. Snapshots hold
// a shared_ptr to theirs; add()/remove() build the next one beside it
// (sharing documents, the dense index and nothing else). A generation's
// passages are numbered as build() would number its documents' (documents in
// order, passages in order), and its BM25 statistics are its own, so it
// answers as build() over its documents.
struct Generation {
  uint64_t generation = 1;
  std::vector<std::shared_ptr<const StoredDoc>> docs;
  std::vector<StoredPassage> passages;
  std::vector<uint32_t> passage_doc;  // passage -> doc, for grouping and filters
  // Per document, derived from its metadata against this generation's tables.
  std::vector<uint32_t> doc_date;         // YYYYMMDD or 0
  // Per metadata key, every (document, value) pair, in document order, with
  // the value read as a number (NaN if it is not one) and as a date
  // (YYYYMMDD, 0 if it is not one): what metadata filters scan.
  struct MetaColumn {
    std::vector<uint32_t> doc;
    std::vector<std::string_view> value;  // into docs' metadata (documents are immutable)
    std::vector<double> number;
    std::vector<uint32_t> date;
  };
  std::map<std::string, MetaColumn, std::less<>> meta_columns;
  std::vector<uint8_t> doc_audience;      // Audience
  std::vector<uint32_t> doc_cancer_type;  // id into cancer_types; 0 = none
  std::vector<uint32_t> doc_corpus;       // id into corpora
  std::vector<uint32_t> doc_first_passage;  // doc -> its first passage; size docs + 1
  std::vector<uint32_t> passage_section;    // passage -> its section: (document, heading path), numbered
  std::vector<float> passage_heading_commonness;  // rank::kHeadingCommonness
  std::vector<std::string> corpora;       // sorted, unique
  std::vector<std::string> cancer_types;  // sorted, unique, [0] = ""
  std::shared_ptr<const lexical::Bm25Index> bm25;  // shared with generations that add no passages

  // Dense side: vectors (row p = passage p, L2-normalised) and the model
  // that made them. The ANN index is shared by generations and keyed by
  // vector ids (vid), not passage numbers: a passage keeps its vid for the
  // life of the Index object, vids are never reused and ascend with the
  // passage number. `live` holds this generation's vids when the dense index
  // may hold others (added later, or removed and not yet reclaimed); null
  // means passage p has vid p and the index held nothing else when published.
  uint32_t dim = 0;
  std::string model_id;
  std::vector<float> vectors;
  std::shared_ptr<vector::VectorIndex> dense;
  std::vector<uint32_t> passage_vid;  // ascending
  std::shared_ptr<const vector::IdFilter> live;
  std::vector<float> audience_direction;  // rank::audience_direction() of the vectors

  const StoredDoc& doc(uint32_t d) const { return *docs[d]; }
  void derive_lookup_tables();
  void derive_meta_columns();  // filters.cc
  // What the features need of the vectors (the audience direction); after
  // every change of `vectors`.
  void derive_dense_tables();
  Status build_dense_index(const BuildOptions& options);
  Result<std::vector<lexical::ScoredPassage>> dense_search(std::span<const float> qv,
                                                           const std::vector<uint8_t>& allowed, uint32_t k,
                                                           uint32_t ef) const;
  float dot(std::span<const float> qv, uint32_t p) const {
    const float* v = vectors.data() + size_t{p} * dim;
    float sum = 0.0f;
    for (uint32_t j = 0; j < dim; ++j) sum += qv[j] * v[j];
    return sum;
  }
  // Per document, whether the filters allow it (filters.cc). A value no
  // document has is an error; with `unknown`, it is noted there instead (a
  // shard's view: another shard may have it) and matches nothing.
  struct UnknownFilter {
    std::string key;      // e.g. "corpus=scifact", "metadata:year"
    std::string message;  // the error one index would give
  };
  Result<std::vector<uint8_t>> compile_filters(const SearchFilters& f, std::vector<UnknownFilter>* unknown = nullptr) const;
  rank::CorpusView corpus_view() const;
  std::string passage_id(uint32_t p) const {
    return doc(passages[p].doc).meta.doc_id + "#" + std::to_string(passages[p].ordinal);
  }
  const std::vector<std::string>& heading_path(uint32_t p) const {
    return doc(passages[p].doc).heading_paths[passages[p].heading_path];
  }
  std::string_view body_text(uint32_t p) const {
    const auto& ps = passages[p];
    return std::string_view(doc(ps.doc).clean_text).substr(ps.begin, ps.end - ps.begin);
  }
  std::string embedding_text(uint32_t p) const;
  Passage passage(uint32_t p) const;
};

// What never changes after build() or load(): the options and the analyzer they make.
struct Settings {
  BuildOptions options;
  text::Analyzer analyzer;
};

// An LRU cache of query vectors, so a repeated query does not pay the
// encoder twice; one per embedder (query_cache.cc).
class QueryCache {
 public:
  explicit QueryCache(size_t capacity) : capacity_(capacity) {}
  // The query's vector: cached, or embedded by `embedder` and cached.
  Result<std::vector<float>> get(std::string_view query, const embed::Embedder& embedder);

 private:
  size_t capacity_;
  std::mutex mu_;
  std::list<std::pair<std::string, std::vector<float>>> lru_;  // guarded by mu_
  std::unordered_map<std::string_view, decltype(lru_)::iterator> map_;  // guarded by mu_
};

// What a Snapshot holds.
struct SnapshotParts {
  std::shared_ptr<const Generation> gen;
  std::shared_ptr<const Settings> settings;
  std::shared_ptr<const embed::Embedder> embedder;  // may be null
  std::shared_ptr<QueryCache> cache;                // with the embedder
  std::shared_ptr<const rank::Reranker> reranker;
};

// Chunks documents as build() does (in parallel, progress stage "chunking"),
// appending their passages to `passages` with document numbers from first_doc.
std::vector<std::shared_ptr<const StoredDoc>> chunk(std::vector<io::Document> documents, const BuildOptions& options,
                                                    const ProgressFn& progress, std::vector<StoredPassage>* passages,
                                                    uint32_t first_doc);
// BM25 over passages [first, passages.size()) of `g` (numbered from 0).
Result<lexical::Bm25Index> index_passages(const Generation& g, uint32_t first, const Settings& settings);
// Embeds passages [first, g.passages.size()) of `g` in batches (progress
// stage "embedding"), L2-normalised.
Result<std::vector<float>> embed_passages(const Generation& g, uint32_t first, const embed::Embedder& embedder,
                                          uint32_t embed_batch, const ProgressFn& progress);
// L2-normalises rows in place; fails on NaN or inf (naming row first + i).
Status normalise_rows(std::span<float> rows, uint32_t dim, size_t first);

// The hybrid and rerank modes after the pool (pipeline.cc): fuse, rerank
// (with the coverage probability), group and diversify. Sorts *pool; `view`
// answers diversify's questions about the candidates' passages.
struct RankedPool {
  std::vector<uint32_t> shown;  // indices into *pool, in the order shown
  float coverage = std::numeric_limits<float>::quiet_NaN();
};
RankedPool rank_pool(std::vector<rank::Candidate>* pool, const SearchOptions& options, const rank::Reranker& reranker,
                     const rank::CorpusView& view, float unknown_share);

// Per own (last) heading of the documents' passages, the documents that
// have it (rank::kHeadingCommonness; keys view into the documents).
std::unordered_map<std::string_view, uint32_t> documents_per_heading(
    std::span<const std::shared_ptr<const StoredDoc>> docs);

// How deep a query's retrievers go (pipeline.cc): in dense mode, the
// passages asked of the dense index and its ef; in the hybrid and rerank
// modes, each retriever's top `pool_depth` and the dense ef for a pool of
// `depth`. One place, so a shard (core/shard/) searches as deep as an index.
uint32_t dense_depth(const SearchOptions& options);
uint32_t dense_ef(const SearchOptions& options);
uint32_t pool_depth(const SearchOptions& options);
uint32_t pool_ef(const SearchOptions& options, uint32_t depth);
// Whether a query is empty or white space only.
bool is_blank(std::string_view s);
// The share of `tokens` analysed query tokens not among the `known` ones (0 without tokens).
float unknown_share(size_t tokens, float known);

// A caller's query vector for an index of `dim` dimensions: InvalidArgument
// for another size, NaN or inf (pipeline.cc).
Status check_query_vector(std::span<const float> vector, uint32_t dim);

// persistence.cc
Status serialize_documents(const Generation& g, internal::BinaryWriter* out);
Status deserialize_documents(internal::BinaryReader* in, Generation* g);

}  // namespace internal

// The writer side of Index. Readers only copy `head` (under head_mu).
struct Index::Impl {
  using Generation = internal::Generation;

  // The current snapshot. Readers copy the pointer under the mutex (a
  // reference-count increment) and search without it.
  mutable std::mutex head_mu;
  std::shared_ptr<const Snapshot> head;  // guarded by head_mu
  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard lock(head_mu);
    return head;
  }
  // Publishes a snapshot of `parts` (needs writer_mu).
  void publish(internal::SnapshotParts parts);

  // Changes (add, remove, attach_*, set_reranker) and save() hold writer_mu;
  // the fields below it are guarded by it.
  // Lock order: writer_mu, then head_mu (never the other way).
  std::mutex writer_mu;
  // Generations published since the last reclaim that may still be in use.
  std::vector<std::weak_ptr<const Generation>> published;
  // Vids of removed passages, still in the dense index because a generation
  // older than `dead_from` (which holds them) may still be searched.
  struct PendingRemoval {
    uint64_t dead_from;
    std::vector<vector::DocId> vids;
  };
  std::vector<PendingRemoval> pending;
  size_t removed_since_compact = 0;
  uint32_t next_vid = 0;
  // Publishes `next` as the current generation, with the current snapshot's
  // other parts. Needs writer_mu.
  void publish_generation(std::shared_ptr<const Generation> next);
  // Removes the pending vids no live generation holds; compacts the dense
  // index when a quarter of it is removed rows. Needs writer_mu.
  Status reclaim();
  // The generation after the current one: without the documents with
  // drop[d] != 0, with `added` (documents chunked, their passages embedded
  // when the index has vectors) appended. Needs writer_mu.
  Status apply(std::span<const uint8_t> drop, std::vector<io::Document> added, const ProgressFn& progress);
};

}  // namespace medsearch
