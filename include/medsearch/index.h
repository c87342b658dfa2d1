// index.h: the search facade. Documents -> passages (with provenance) ->
// BM25 and, with an embedder, passage vectors (flat or HNSW); queries in four
// modes with filters; changes published as immutable snapshots; persistence.
// This is what the CLI and the Python module drive.
//
//   auto docs = io::read_corpus("../shared/data/nci-pdq", "", {}, nullptr);
//   auto index = Index::build(std::move(*docs), BuildOptions{}, nullptr, encoder);
//   auto response = (*index)->search("recurrent mesothelioma treatment", SearchOptions{});
//   for (size_t i = 0; i < response->hits.size(); ++i) cite(response->passage(i), response->hits[i].score);
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/document.h>
#include <medsearch/embedder.h>
#include <medsearch/options.h>
#include <medsearch/reranker.h>
#include <medsearch/status.h>

namespace medsearch {

// Called during long work: stage name, units done, units in all. May be
// called from the thread that called build() only.
using ProgressFn = std::function<void(std::string_view stage, size_t done, size_t total)>;

struct BuildOptions {
  text::ChunkerOptions markdown_chunker{};                    // guideline pages
  text::ChunkerOptions plain_chunker{.max_tokens = 400, .overlap_tokens = 40, .min_tokens = 1};  // abstracts: split only when long
  text::AnalyzerOptions analyzer{};
  lexical::Bm25Params bm25{};
  // Dense side (used when an embedder is given to build() or vectors are attached).
  uint32_t embed_batch = 512;        // passages per embedding call (progress granularity)
  uint32_t exact_below = 5000;       // fewer passages than this: exact (flat) dense search, else HNSW
  uint32_t hnsw_m = 16;
  uint32_t hnsw_ef_construction = 200;
  // Every option is saved with the index and restored by load() (options_io.h).
  bool operator==(const BuildOptions&) const = default;
};

// InvalidArgument naming the first option out of range: an unknown stemmer
// (with stemming on), a chunker budget of 0 or an overlap not below it, BM25
// k1 < 0 or b outside [0, 1], embed_batch 0, hnsw_m outside [2, 2048],
// hnsw_ef_construction 0. Index::build() checks it; load() checks a saved index's.
Status validate(const BuildOptions& options);

// A condition on a document's metadata (io::Document::metadata: front matter
// entries, JSONL metadata members): the document has `key`, and one of its
// values is one of `any_of` (when not empty) and lies within [min, max] (a
// bound "" is open). Bounds compare as numbers when the bound and the value
// are numbers, as dates when both are YYYY-MM-DD dates (a time after the
// date is ignored); a value of neither kind is outside every range.
struct MetadataFilter {
  std::string key;
  std::vector<std::string> any_of;
  std::string min, max;
  bool operator==(const MetadataFilter&) const = default;
};

// Restrictions on which documents may be returned; all must hold. Each list
// is "any of"; an empty list does not restrict. Unknown values (an audience,
// cancer type, corpus, metadata key or metadata value no document has) are an
// error, not an empty result.
struct SearchFilters {
  std::vector<std::string> audience;     // "hp", "patient"
  std::vector<std::string> cancer_type;  // e.g. "mesothelioma" (from the page URL)
  std::vector<std::string> corpus;       // corpus names given at build time
  std::string reviewed_after;            // "YYYY-MM-DD": documents last reviewed on or after it
  std::vector<MetadataFilter> metadata;  // one per key
  bool empty() const {
    return audience.empty() && cancer_type.empty() && corpus.empty() && reviewed_after.empty() && metadata.empty();
  }
};

// Adds one filter written as text to `filters` (the CLI's --filter):
//   audience=patient, cancer_type=lung, corpus=scifact, reviewed_after=2024-01-01
//   (the fields every index derives), and for any metadata key
//   key=value (repeat for any of several values), key>=bound, key<=bound.
// Conditions on one key join into one MetadataFilter ("year>=2010" and
// "year<=2015": a value from 2010 to 2015). InvalidArgument on another form.
Status add_filter(std::string_view spec, SearchFilters* filters);

enum class ResultLevel { kPassage, kDocument };

// Which retrievers answer: BM25 alone, the dense encoder alone, both fused
// (`fusion`) over their top `candidates` passages, or both fused and then
// reranked by the learned reranker (core/rank/reranker.h). kAuto: rerank on
// an index with passage vectors, else BM25 (Index::resolve_mode()), what the
// CLI and the Python module ask for unless told otherwise.
enum class SearchMode : uint8_t { kBm25 = 0, kDense = 1, kHybrid = 2, kRerank = 3, kAuto = 4 };

// How hybrid and rerank modes merge the two candidate lists (core/rank/fusion.h).
enum class Fusion : uint8_t { kRrf = 0, kConvex = 1 };

// The names the CLI and the Python module give modes, levels and fusions:
// "auto", "bm25", "dense", "hybrid", "rerank"; "passage", "doc" (or
// "document"); "convex", "rrf". InvalidArgument naming the choices otherwise.
Result<SearchMode> parse_mode(std::string_view name);
const char* mode_name(SearchMode mode);
Result<ResultLevel> parse_level(std::string_view name);
Result<Fusion> parse_fusion(std::string_view name);

struct SearchOptions {
  uint32_t k = 10;
  ResultLevel level = ResultLevel::kPassage;  // kDocument: the best passage of each document
  SearchFilters filters;
  // kRerank needs passage vectors; on an index without them, ask for kBm25.
  SearchMode mode = SearchMode::kBm25;
  // Per retriever, for fusion and document grouping of dense results. 50: the
  // reranker's cross-validated nDCG@10 is the same as with 100 (within 0.002 on
  // each development set) at a lower latency.
  uint32_t candidates = 50;
  Fusion fusion = Fusion::kConvex;
  // Weight of BM25 (min-max normalised over the pool) in convex fusion; dense
  // gets the rest. 0.5: the weight cross-validation chose on the development
  // sets (0.45-0.5 per fold, tools/train_reranker.py); convex beat RRF on all three.
  float bm25_weight = 0.5f;
  uint32_t rerank_depth = 100;    // fused candidates the reranker rescores (the whole pool by default)
  // Hybrid and rerank modes, passage level: at most this many passages of one
  // document (0: no limit). Document level always shows one passage per
  // document; bm25 and dense passage-level results are not grouped.
  uint32_t max_per_doc = 3;
  // Maximal marginal relevance (core/rank/diversify.h), hybrid and rerank
  // modes: 1 ranks by score alone; lower values push near-duplicates down.
  // Off by default: on the guideline corpus, near-identical pairs (cosine >
  // 0.95) are 0.24% of top-10 pairs without it and 0.20% at 0.7 (216
  // questions; the per-document cap and the differently worded patient and
  // professional versions already keep them apart), while 0.8 costs 0.002 of
  // document-level nDCG@10 on SciFact and MedQuAD.
  float mmr = 1.0f;
  uint32_t ef = 0;            // HNSW candidate list (0: max(candidates, 128))
  // A query vector the caller computed (dim() floats, L2-normalised); empty:
  // the attached embedder embeds the query text (cached per text).
  std::span<const float> query_vector;
  // Fill each Hit's body/heading/dense parts and features (a few binary searches per hit);
  // a caller may skip them and ask explain() for the hits it shows.
  bool explain = true;
};

// InvalidArgument naming the first option out of range: k 0, bm25_weight or
// mmr outside [0, 1] (or NaN). Every search checks it; the
// filters are checked against the documents when a search compiles them.
Status validate(const SearchOptions& options);

// A passage with everything needed to cite it (Snapshot::passage()).
struct Passage {
  uint32_t number = 0;      // the passage number in its snapshot
  std::string passage_id;   // "<doc_id>#<ordinal>"
  std::string doc_id;
  std::string corpus;
  std::string title;
  std::string url;
  std::vector<std::string> heading_path;
  uint32_t begin = 0;  // byte span into the document's clean text
  uint32_t end = 0;
  std::string text;
  std::string audience;
  std::string cancer_type;
  std::string last_reviewed;
  std::vector<std::string> tags;
  std::string meta_json;
  std::vector<io::MetaField> metadata;  // the document's (see SearchFilters::metadata)
};

// One ranked passage and the parts of its score. Its text and provenance
// come from the snapshot that found it (SearchResponse::passage()).
struct Hit {
  uint32_t passage = 0;     // passage number in the snapshot searched
  float score = 0;
  float body_score = 0;     // BM25 of the body field (the score's explanation)
  float heading_score = 0;  // BM25 of the heading/title field, before its weight
  float dense_score = 0;    // cosine of query and passage vectors (0 when the index has none)
  // Hybrid and rerank modes with `explain`: the reranker's features of the
  // passage (rank::feature_names() order); rank::Reranker::contributions() splits the score.
  bool has_features = false;
  rank::FeatureVector features{};
};

class Snapshot;

// The answer to one query: its ranked hits, the snapshot they were found in
// (which they keep alive: their passages can be read however the index
// changes meanwhile), and in rerank mode the calibrated probability that one
// of the top rank::kCoverageTop hits answers the question (NaN in other modes
// and without hits: the other modes are not calibrated).
struct SearchResponse {
  std::vector<Hit> hits;
  SearchMode mode = SearchMode::kBm25;  // the mode that answered (kAuto resolved)
  float coverage = std::numeric_limits<float>::quiet_NaN();
  uint64_t generation = 0;  // the generation searched (Snapshot::generation())
  std::shared_ptr<const Snapshot> snapshot;
  // The passage of hits[i], and of every hit.
  Passage passage(size_t i) const;
  std::vector<Passage> passages() const;
};

struct IndexStats {
  size_t documents = 0;
  size_t passages = 0;
  size_t terms = 0;
  size_t memory_bytes = 0;
  std::vector<std::string> corpora;
  uint32_t dim = 0;        // passage vector dimension, 0 without vectors
  std::string model_id;    // the embedder whose vectors the index holds
  std::string dense_index;  // "flat", "hnsw M=16 ef_construction=200", or empty without vectors
};

namespace internal {
struct SnapshotParts;  // index_impl.h
}

// Everything a query reads, immutable: one generation of the documents, their
// passages, BM25 and vectors, and the analyzer, embedder, reranker and
// options that answer with them. Index::snapshot() hands out the current one;
// every search runs on one snapshot from start to end, and the hits it
// returns keep it alive (SearchResponse::snapshot), so passage numbers, text
// and provenance stay valid whatever add(), remove() or set_reranker() do
// meanwhile. All methods may run concurrently.
class Snapshot : public std::enable_shared_from_this<Snapshot> {
 public:
  // Made by Index (SnapshotParts is internal).
  explicit Snapshot(std::unique_ptr<const internal::SnapshotParts> parts);
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Top-k hits for one query, best first. An empty or blank query is an error;
  // a query whose terms are all unknown or stopwords gives no hits.
  Result<SearchResponse> search(std::string_view query, const SearchOptions& options) const;
  // Queries in parallel (oneTBB, caller's arena); responses in query order,
  // or the first error (naming the query's position).
  Result<std::vector<SearchResponse>> search_batch(std::span<const std::string> queries,
                                                   const SearchOptions& options) const;
  // The candidate pool of the hybrid and rerank modes before fusion: the
  // union of the BM25 and dense top `candidates` passages with their features
  // (for training and studying the reranker). Passages of documents in
  // `exclude_documents` (document numbers) are left out, as if not indexed.
  Result<std::vector<rank::Candidate>> candidate_pool(std::string_view query, const SearchOptions& options,
                                                      std::span<const uint32_t> exclude_documents = {}) const;
  // The parts of a passage's score for a query: BM25 body and heading fields,
  // and the cosine when the index has vectors and the query's is known
  // (`query_vector`, or the embedder's cached vector for the text).
  // p < num_passages().
  Hit explain(std::string_view query, uint32_t p, std::span<const float> query_vector = {}) const;

  // kAuto as this snapshot answers it: kRerank with passage vectors, else
  // kBm25; any other mode as it is.
  SearchMode resolve_mode(SearchMode mode) const;
  // The share of the query's analysed tokens this index does not know (a
  // coverage feature, reranker.h); 0 for a query without tokens.
  float unknown_share(std::string_view query) const;
  // The query's vector, from the embedder (cached by text).
  Result<std::vector<float>> embed_query(std::string_view query) const;

  // Passages and documents. Numbers: passages are numbered document by
  // document, documents in order (see Index, "Changing the documents").
  uint64_t generation() const;
  uint32_t num_passages() const;
  uint32_t num_documents() const;
  Passage passage(uint32_t p) const;  // p < num_passages()
  uint32_t document_of(uint32_t p) const;
  const std::string& doc_id(uint32_t doc) const;
  const std::string& clean_text(uint32_t doc) const;
  // The clean text of the document with this doc_id (any corpus); kUnknownId if absent.
  Result<std::string_view> clean_text_of(std::string_view doc_id) const;
  // The text a passage is embedded as: its heading path (or title) and body.
  std::string embedding_text(uint32_t p) const;
  bool has_vectors() const;
  uint32_t dim() const;
  // Passage vectors, row p for passage p (dim() floats each, L2-normalised).
  std::span<const float> vector(uint32_t p) const;
  std::span<const float> vectors() const;

  IndexStats stats() const;
  const BuildOptions& options() const;
  const rank::Reranker& reranker() const;
  const internal::SnapshotParts& parts() const { return *parts_; }

 private:
  std::unique_ptr<const internal::SnapshotParts> parts_;
};

// An index that changes: it builds, loads and saves, and publishes a new
// Snapshot for every change (add, remove, attach_embedder, attach_vectors,
// set_reranker). Every method may run concurrently with every other; changes
// run one at a time.
//
// Changing the documents: generations
//   add() and remove() build the next generation of the index beside the
//   current one and publish it in a new snapshot; a search reads the
//   snapshot current when it starts, from start to end, and reports its
//   generation (SearchResponse::generation). So a search concurrent with a
//   change sees the documents as they were before it or as they are after
//   it, never a mix. A generation answers every query exactly as
//   Index::build() over its documents would (same options, same embedder):
//   its documents are the previous generation's that were kept, in their
//   order, then the added ones in the order given; passages are numbered
//   document by document; BM25 statistics (passage count, document
//   frequencies, average field lengths) are the generation's own, so adding
//   or removing a document changes the scores of the others as a rebuild
//   would. With an HNSW dense side (BuildOptions::exact_below) that holds up
//   to the graph's approximation: the graph keeps its nodes across
//   generations, so a generation's dense candidates can differ from a fresh
//   graph's at small ef. Passage numbers belong to a snapshot: every add()
//   and remove() renumbers.
class Index {
 public:
  ~Index();

  // Chunks and indexes `documents` (from one or several corpora). Fails on an
  // empty document list, invalid options (validate()) or duplicate (corpus,
  // doc_id) pairs. With an embedder, every passage is also embedded (progress
  // stage "embedding") and a dense index is built; the embedder stays
  // attached for queries.
  static Result<std::unique_ptr<Index>> build(std::vector<io::Document> documents,
                                              const BuildOptions& options,
                                              const ProgressFn& progress = nullptr,
                                              std::shared_ptr<const embed::Embedder> embedder = nullptr);

  // Loads an index saved with save(). Verifies format version and checksums;
  // a missing, truncated or corrupt file is a clear error.
  static Result<std::unique_ptr<Index>> load(const std::filesystem::path& dir);

  // Saves to `dir` (created if needed). Crash-safe: the new generation is
  // written beside the old one and made current by one atomic rename; a save
  // that fails midway leaves the previous index loadable and unchanged.
  // Refuses to write into a non-empty directory that is not a medsearch index.
  // Writes the current generation (waiting for a running change, which waits
  // for it in turn); load() answers as it does. After add() or remove() the
  // HNSW graph is not written (its nodes are keyed by vector ids that outlive
  // passage numbers) and load() rebuilds it from the vectors.
  Status save(const std::filesystem::path& dir) const;

  // The current snapshot: what a search started now reads.
  std::shared_ptr<const Snapshot> snapshot() const;

  // snapshot()->search(), ->search_batch(), ->candidate_pool().
  Result<SearchResponse> search(std::string_view query, const SearchOptions& options) const;
  Result<std::vector<SearchResponse>> search_batch(std::span<const std::string> queries,
                                                   const SearchOptions& options) const;
  Result<std::vector<rank::Candidate>> candidate_pool(std::string_view query, const SearchOptions& options,
                                                      std::span<const uint32_t> exclude_documents = {}) const;

  // Adds documents: chunked as build() chunks them, indexed in BM25 and, when
  // the index has passage vectors, embedded with the attached embedder and
  // added to the dense index. Publishes one new generation. Errors (nothing
  // changes): no documents, an empty doc_id, a (corpus, doc_id) pair given
  // twice or already in the index (remove it first), an index with vectors
  // but no embedder attached, embedding errors.
  // Cost: analysis and embedding of the added passages only, plus O(passages)
  // to copy the generation's tables and vectors and merge the BM25 postings
  // (no re-analysis): batch documents into one call where you can.
  Status add(std::vector<io::Document> documents, const ProgressFn& progress = nullptr);
  // Removes documents and their passages by doc_id. `corpus` empty: each
  // doc_id must name one document in the index (a doc_id present in several
  // corpora is an error that asks for the corpus); else only that corpus is
  // searched. Errors (nothing changes): no ids, an unknown id (kUnknownId), an
  // id given twice, removing every passage of the index. Cost: O(passages) as
  // for add(). The removed passages' rows leave the dense index when no
  // snapshot of an older generation can still need them, and the index is
  // compacted when they reach a quarter of its rows.
  Status remove(std::span<const std::string> doc_ids, std::string_view corpus = {});

  // Attaches the embedder that embeds query texts. Fails if the index holds
  // vectors of another model (model_id mismatch) or of another dimension.
  Status attach_embedder(std::shared_ptr<const embed::Embedder> embedder);
  // Brings your own passage vectors: num_passages() x dim rows, row p for
  // passage p (see Snapshot::embedding_text()); rows are L2-normalised on the
  // way in. Replaces any vectors the index had (a new generation); queries
  // then need query_vector or an embedder of the same model_id.
  Status attach_vectors(std::span<const float> rows, uint32_t dim, std::string model_id);
  // The reranker of the rerank mode: the built-in model unless replaced
  // (null: the built-in one again).
  void set_reranker(std::shared_ptr<const rank::Reranker> reranker);

  // Of the current snapshot.
  uint64_t generation() const;
  uint32_t num_passages() const;
  uint32_t num_documents() const;
  bool has_vectors() const;
  IndexStats stats() const;
  const BuildOptions& options() const;

 private:
  Index();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medsearch
