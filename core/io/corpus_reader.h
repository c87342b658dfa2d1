// corpus_reader.h: reads a corpus from disk into Documents.
//
// Two layouts:
//  - a directory tree of Markdown files (*.md) with YAML front matter; doc_id is
//    the path relative to the root, '/'-separated; files are read in sorted
//    path order so doc order is deterministic;
//  - a BEIR corpus.jsonl ({"_id","title","text","meta"?} one object a line),
//    parsed with simdjson; a directory holding corpus.jsonl is read as BEIR.
//
// Errors: a malformed file or line fails the whole read with a Status naming the
// file and the 1-based line, unless ReadOptions::skip_malformed is set, in which
// case the bad document is skipped and counted in ReadReport. Never a partial
// result without saying so.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/status.h"
#include "core/io/document.h"

namespace medsearch::io {

struct ReadOptions {
  bool skip_malformed = false;  // skip and count bad documents instead of failing
};

struct ReadReport {
  size_t documents = 0;               // documents returned
  size_t skipped = 0;                 // malformed documents skipped (skip_malformed only)
  std::vector<std::string> messages;  // one "file:line: reason" per skipped document
};

// Reads `path` (a Markdown tree, a corpus.jsonl, or a directory holding one).
// `corpus` names the corpus; empty means the last path component
// (for ".../scifact/corpus.jsonl" that is "scifact").
Result<std::vector<Document>> read_corpus(const std::filesystem::path& path, std::string corpus,
                                          const ReadOptions& options, ReadReport* report);

Result<std::vector<Document>> read_markdown_tree(const std::filesystem::path& root,
                                                 const std::string& corpus,
                                                 const ReadOptions& options, ReadReport* report);

Result<std::vector<Document>> read_beir_jsonl(const std::filesystem::path& file,
                                              const std::string& corpus,
                                              const ReadOptions& options, ReadReport* report);

// Parses one Markdown file's text (front matter + body) into `doc`, filling
// title, url, last_reviewed, tags, audience, cancer_type and body. `doc_id`
// and `corpus` are left to the caller. On failure returns kCorrupt with the
// 1-based line of the problem in the message ("line N: ...").
Status parse_markdown_document(std::string_view text, Document* doc);

// "/types/mesothelioma/hp/..." -> audience "hp", cancer type "mesothelioma".
void derive_from_url(std::string_view url, std::string* audience, std::string* cancer_type);

}  // namespace medsearch::io
