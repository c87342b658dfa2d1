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
//
// Front matter is the YAML subset the corpus uses, parsed strictly: top-level
// `key: value` lines, values plain, 'single-quoted' ('' is a quote) or
// "double-quoted" (JSON-like escapes), optionally continued on indented lines
// (folded with one space); lists as `key:` + `- item` lines or `[a, 'b']`;
// blank lines and `#` comment lines. Nested maps, block scalars, anchors and
// duplicate keys are errors. Kept: title, url, lastReviewed (must be
// YYYY-MM-DD; a timestamp keeps its date), tags (must be a list). Without a
// title, the first "# " heading, then the file name without ".md", is used.
// CRLF line ends are made LF in the body; a UTF-8 BOM is skipped; invalid
// UTF-8 is an error at its line.
//
// Markdown files are read and parsed in parallel (tbb::parallel_for in the
// caller's task arena). A tree with no *.md file is kNotFound. I/O errors
// always fail the read, even with skip_malformed. BEIR: "_id" is a non-empty
// string or an integer, "text" a string, "title" a string or absent/null,
// "meta" an object or absent/null; blank lines are ignored; malformed JSON,
// invalid UTF-8, a missing or mistyped field and a repeated "_id" are
// malformed lines. Messages are "<file>:<line>: <reason>", with <file> the
// path relative to the root for a tree and the path as given for a JSONL file.
//
// Thread safety: thread-safe (no shared state). Cost: nci-pdq (1,432 files,
// 51 MB) reads in ~0.05 s warm on 2 cores; medquad (21 MB JSONL) in ~0.05 s.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/document.h>
#include <medsearch/status.h>

namespace medsearch::io {

struct ReadOptions {
  bool skip_malformed = false;  // skip and count bad documents instead of failing
};

struct ReadReport {
  size_t documents = 0;               // documents returned
  size_t skipped = 0;                 // malformed documents skipped (skip_malformed only)
  std::vector<std::string> messages;  // one "file:line: reason" per skipped document
};

// A corpus to read, as the CLI's --corpus gives it: "path", or "name=path"
// (the corpus name, then its path). A spec that exists as a path as written
// is a path, '=' or not.
struct CorpusSpec {
  std::string name;  // empty: read_corpus() derives it from the path
  std::filesystem::path path;
};
CorpusSpec parse_corpus_spec(std::string_view spec);

// Reads `path` (a Markdown tree, a corpus.jsonl, or a directory holding one).
// `corpus` names the corpus; empty means the last path component
// (for ".../scifact/corpus.jsonl" that is "scifact"; for another "x.jsonl" it
// is "x"). A nonexistent path is kNotFound; an existing file that is not
// *.jsonl is kInvalidArgument. `report` may be null.
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
// and `corpus` are left to the caller. The audience is the URL's (below) when
// it names one, else the front matter's audienceLevel ("hp" for a health
// professional however spelled, "patient", else none): the NCI pages outside the
// PDQ summaries (side effects, coping) say "patient" there and only there,
// while the health-professional summaries say "patient" too and are told
// apart by their URL. On failure returns kCorrupt with the 1-based line of the
// problem in the message ("line N: ...").
Status parse_markdown_document(std::string_view text, Document* doc);

// "/types/mesothelioma/hp/..." -> audience "hp", cancer type "mesothelioma".
// Audience: the first path segment equal to "hp" or "patient". Cancer type:
// the second segment when the first is "types" ("/about-cancer/treatment/
// types/chemotherapy" has none). Scheme, host, query and fragment are ignored;
// both outputs are cleared first.
void derive_from_url(std::string_view url, std::string* audience, std::string* cancer_type);

}  // namespace medsearch::io
