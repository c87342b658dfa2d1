// index_impl.h: Index's state, shared by the files that implement Index
// (index.cc: build, persistence, lookups; pipeline.cc: the query pipeline).
// Not installed.
#pragma once

#include <charconv>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/index/index.h"
#include "core/rank/features.h"
#include "core/rank/reranker.h"
#include "core/vector/vector_index.h"

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

struct Index::Impl {
  struct StoredDoc {
    io::Document meta;  // body left empty: the clean text replaces it
    std::string clean_text;
    uint32_t date = 0;  // YYYYMMDD or 0
    uint8_t audience = kAudienceNone;
    uint32_t cancer_type = 0;  // id into cancer_types; 0 = none
    uint32_t corpus = 0;       // id into corpora
  };
  struct StoredPassage {
    uint32_t doc;
    uint32_t ordinal;
    uint32_t begin;
    uint32_t end;
    uint32_t heading_path;  // id into heading_paths
  };

  BuildOptions options;
  text::Analyzer analyzer;
  std::vector<StoredDoc> docs;
  std::vector<StoredPassage> passages;
  std::vector<uint32_t> passage_doc;  // passage -> doc, for grouping and filters
  std::vector<std::vector<std::string>> heading_paths;
  std::vector<std::string> corpora;       // sorted, unique
  std::vector<std::string> cancer_types;  // sorted, unique, [0] = ""
  lexical::Bm25Index bm25;

  // Dense side: vectors (row p = passage p, L2-normalised), the model that
  // made them, the ANN index over them, and the embedder for query texts.
  uint32_t dim = 0;
  std::string model_id;
  std::vector<float> vectors;
  std::unique_ptr<vector::VectorIndex> dense;
  std::shared_ptr<const embed::Embedder> embedder;
  std::vector<uint32_t> doc_first_passage;  // doc -> its first passage; size docs + 1

  // LRU cache of query vectors, so a repeated query does not pay the encoder twice.
  mutable std::mutex cache_mu;
  mutable std::list<std::pair<std::string, std::vector<float>>> cache_lru;
  mutable std::unordered_map<std::string_view, decltype(cache_lru)::iterator> cache_map;

  // The built-in model unless Index::set_reranker() replaced it.
  std::shared_ptr<const rank::Reranker> reranker = rank::Reranker::builtin();
  // The query's vector from the embedder, through the LRU cache.
  Result<std::vector<float>> embed_query(std::string_view query) const;

  // A query, analysed and embedded once for the whole pipeline (pipeline.cc).
  struct Query {
    std::vector<lexical::QueryTerm> terms;
    std::vector<float> vector;     // empty in bm25 mode
    std::vector<uint8_t> allowed;  // per document; empty: all allowed
  };
  Status prepare(std::string_view query, const SearchOptions& options, std::span<const uint32_t> exclude_documents,
                 Query* q) const;
  lexical::Bm25Index::Options bm25_options(const Query& q, uint32_t k, bool one_per_doc) const;
  // The hybrid/rerank candidate pool: BM25 and dense top `depth`, with features.
  Result<std::vector<rank::Candidate>> pool(const Query& q, const SearchOptions& options, uint32_t depth) const;
  Result<SearchResponse> run(std::string_view query, const SearchOptions& options) const;
  rank::CorpusView corpus_view() const;

  void derive_lookup_tables();
  Status build_dense_index();
  Result<std::vector<lexical::ScoredPassage>> dense_search(std::span<const float> qv, const std::vector<uint8_t>& allowed,
                                                           uint32_t k, uint32_t ef) const;
  float dot(std::span<const float> qv, uint32_t p) const {
    const float* v = vectors.data() + size_t{p} * dim;
    float sum = 0.0f;
    for (uint32_t j = 0; j < dim; ++j) sum += qv[j] * v[j];
    return sum;
  }
  Result<std::vector<uint8_t>> compile_filters(const SearchFilters& f) const;
  std::string passage_id(uint32_t p) const {
    return docs[passages[p].doc].meta.doc_id + "#" + std::to_string(passages[p].ordinal);
  }
  std::string heading_text(uint32_t p) const { return join(heading_paths[passages[p].heading_path], " "); }
  std::string_view body_text(uint32_t p) const {
    const auto& ps = passages[p];
    return std::string_view(docs[ps.doc].clean_text).substr(ps.begin, ps.end - ps.begin);
  }
  Status serialize_documents(internal::BinaryWriter* out) const;
  Status deserialize_documents(internal::BinaryReader* in);
};

}  // namespace medsearch
