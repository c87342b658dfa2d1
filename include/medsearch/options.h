// options.h: how an index analyses, chunks and scores text: the parts of
// medsearch::BuildOptions (index.h) that belong to the analyzer
// (core/text/analyzer.h), the chunkers (core/text/chunker.h) and BM25
// (core/lexical/bm25_index.h). Every field is saved with an index.
#pragma once

#include <cstdint>
#include <string>

namespace medsearch::text {

struct AnalyzerOptions {
  bool stem = true;               // Snowball stemming of alphabetic tokens
  bool remove_stopwords = true;   // drop English stopwords
  std::string stemmer = "english";  // a libstemmer algorithm name ("english", "porter")
  // After a hyphenated token with a digit ("her2-positive", "pd-l1"), also
  // emit its parts ("her2", "positive"), so queries without the hyphen match.
  bool compound_parts = true;
  bool operator==(const AnalyzerOptions&) const = default;
};

struct ChunkerOptions {
  uint32_t max_tokens = 220;     // budget of a passage in whitespace words
  uint32_t overlap_tokens = 24;  // words carried over from the previous piece of a split section
  uint32_t min_tokens = 3;       // sections with fewer words than this (after cleaning) are dropped
  bool operator==(const ChunkerOptions&) const = default;
};

}  // namespace medsearch::text

namespace medsearch::lexical {

struct Bm25Params {
  float k1 = 0.9f;
  float b = 0.4f;
  float heading_weight = 0.4f;  // weight of the heading/title field relative to the body
  bool operator==(const Bm25Params&) const = default;
};

}  // namespace medsearch::lexical
