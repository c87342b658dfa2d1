// Test helpers for the index persistence and soak tests: a deterministic
// word-hashing embedder (no model weights), a seeded synthetic corpus, and
// a canonical text form of an index's answers, so two indexes can be
// compared exactly.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <medsearch/embedder.h>
#include <medsearch/index.h>

namespace medsearch::testing {

// Hashed lower-cased words, L2-normalised: a deterministic embedder without
// model weights (texts sharing words are close).
class TinyEmbedder final : public embed::Embedder {
 public:
  uint32_t dim() const override { return 16; }
  std::string model_id() const override { return "tiny-words-16"; }
  Status embed(std::span<const std::string_view> texts, embed::TextKind, std::span<float> out) const override {
    if (out.size() != texts.size() * dim()) return Status::invalid_argument("bad output size");
    for (size_t i = 0; i < texts.size(); ++i) {
      float* v = out.data() + i * dim();
      std::fill(v, v + dim(), 0.0f);
      uint64_t h = 1469598103934665603ull;
      size_t len = 0;
      for (char c : std::string(texts[i]) + " ") {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          h = (h ^ static_cast<uint64_t>(std::tolower(static_cast<unsigned char>(c)))) * 1099511628211ull;
          ++len;
        } else if (len) {
          v[h % dim()] += 1.0f;
          h = 1469598103934665603ull;
          len = 0;
        }
      }
      float norm = 0;
      for (uint32_t j = 0; j < dim(); ++j) norm += v[j] * v[j];
      for (uint32_t j = 0; j < dim() && norm > 0; ++j) v[j] /= std::sqrt(norm);
    }
    return Status::ok();
  }
};

inline constexpr const char* kWords[] = {
    "mesothelioma", "pleural",  "asbestos",  "pemetrexed", "breast",   "tamoxifen", "lung",     "nivolumab",
    "leukemia",     "imatinib", "melanoma",  "ipilimumab", "chemotherapy", "radiation", "surgery", "recurrent",
    "staging",      "biopsy",   "trial",     "survival",   "toxicity", "dose",      "platinum", "remission"};
inline constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

inline std::string words(std::mt19937& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += std::string(i ? " " : "") + kWords[rng() % kNumWords];
  return s;
}

// `n` documents named "<tag><i>", half guideline pages with headings, half
// abstracts; different seeds give different texts.
inline std::vector<io::Document> corpus(const std::string& tag, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<io::Document> docs;
  for (size_t i = 0; i < n; ++i) {
    io::Document d;
    d.doc_id = tag + std::to_string(i);
    d.title = words(rng, 3);
    if (i % 2) {
      d.corpus = "guides";
      d.format = io::DocFormat::kMarkdown;
      d.body = "# " + d.title + "\n\n## " + words(rng, 2) + "\n\n" + words(rng, 30) + ".\n\n## " + words(rng, 2) +
               "\n\n" + words(rng, 25) + ".\n";
    } else {
      d.corpus = "papers";
      d.body = words(rng, 40) + ".";
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

inline const std::vector<std::string> kQueries = {
    "recurrent mesothelioma chemotherapy", "lung nivolumab survival",  "breast tamoxifen dose",
    "leukemia imatinib remission",         "melanoma ipilimumab toxicity trial", "pleural asbestos staging biopsy"};

// One line: the hits of `query` in `mode` at `level` (ids, exact scores as
// hex floats, texts), or the error.
inline std::string answer(const Index& index, const std::string& query, SearchMode mode, ResultLevel level) {
  SearchOptions o;
  o.k = 8;
  o.mode = mode;
  o.level = level;
  auto response = index.search(query, o);
  std::string line = query + " mode " + std::to_string(static_cast<int>(mode)) + " level " +
                     std::to_string(static_cast<int>(level)) + ":";
  if (!response) return line + " error " + response.status().to_string();
  for (size_t i = 0; i < response->hits.size(); ++i) {
    const Passage p = response->passage(i);
    char score[64];
    std::snprintf(score, sizeof(score), "%a", static_cast<double>(response->hits[i].score));
    line += " " + p.passage_id + "=" + score + "[" + p.text + "]";
  }
  return line;
}

// Every mode the index supports (dense ones need vectors and an embedder).
inline std::vector<SearchMode> modes_of(const Index& index) {
  if (!index.has_vectors()) return {SearchMode::kBm25};
  return {SearchMode::kBm25, SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank};
}

// Everything the index answers to kQueries, one line per query, mode and level.
inline std::vector<std::string> answers(const Index& index) {
  std::vector<std::string> out{"passages " + std::to_string(index.num_passages())};
  for (const auto& q : kQueries) {
    for (SearchMode mode : modes_of(index)) {
      for (ResultLevel level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
        out.push_back(answer(index, q, mode, level));
      }
    }
  }
  return out;
}

}  // namespace medsearch::testing
