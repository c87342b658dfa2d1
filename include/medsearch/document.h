// document.h: one source document as read from a corpus, before chunking.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace medsearch::io {

enum class DocFormat : uint8_t {
  kMarkdown = 0,  // body is Markdown (guideline pages); the chunker cleans it
  kPlain = 1,     // body is plain text (BEIR abstracts)
};

// One metadata field of a document: a front matter entry (a single value or
// a list) or a key of a JSONL record's metadata object. Values are text as
// written: numbers and dates are compared as such by range filters
// (SearchFilters::metadata).
struct MetaField {
  std::string key;
  std::vector<std::string> values;
  bool operator==(const MetaField&) const = default;
};

// Provenance and metadata travel with every passage cut from the document.
struct Document {
  std::string doc_id;         // Markdown: path relative to the corpus root; BEIR: "_id"
  std::string corpus;         // corpus name given at build time (e.g. "nci-pdq", "scifact")
  std::string title;          // front matter `title` / BEIR `title`
  std::string url;            // front matter `url`, "" when absent
  std::string last_reviewed;  // ISO date "YYYY-MM-DD" from `lastReviewed`, "" when absent
  std::string audience;       // "hp" | "patient" | "" (derived from the URL, not the front matter)
  std::string cancer_type;    // "<type>" from a URL path "/types/<type>/...", "" otherwise
  std::vector<std::string> tags;  // front matter `tags`
  std::string meta_json;      // BEIR `metadata` (or `meta`) as compact JSON text, "" when absent
  // Every front matter entry (Markdown), or the scalar and list-of-scalar
  // members of the JSONL metadata object (nested objects are left out), in
  // the order written.
  std::vector<MetaField> metadata;
  DocFormat format = DocFormat::kPlain;
  std::string body;           // Markdown without its front matter, or the BEIR `text`
};

}  // namespace medsearch::io
