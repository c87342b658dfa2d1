// fuzz_markdown: the Markdown/front-matter reader (core/io/corpus_reader.h)
// and the Markdown chunker that consumes its bodies (core/text/chunker.h).
//
// Each input is one *.md file. It goes through parse_markdown_document() in
// memory and through read_markdown_tree() on a one-file tree on disk (strict
// and skip_malformed); the two must agree. Accepted documents are then
// chunked with the default and a tiny passage budget. Checked: no crash or
// UB, valid UTF-8 out of valid UTF-8 in, the documented field formats, and
// the chunker's span invariants.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <medsearch/corpus.h>

#include "core/text/chunker.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using medsearch::fuzz::valid_utf8;
namespace io = medsearch::io;
namespace text = medsearch::text;

void check_chunks(const text::ChunkedDocument& c) {
  const size_t n = c.clean_text.size();
  FUZZ_CHECK(valid_utf8(c.clean_text), "clean text is not UTF-8");
  uint32_t prev_begin = 0;
  for (const auto& ch : c.chunks) {
    FUZZ_CHECK(ch.begin <= ch.end && ch.end <= n, "chunk span outside the clean text");
    FUZZ_CHECK(ch.begin >= prev_begin, "chunks out of document order");
    prev_begin = ch.begin;
    for (const auto& h : ch.heading_path) FUZZ_CHECK(valid_utf8(h), "heading is not UTF-8");
    for (const auto& hl : c.heading_lines) {
      FUZZ_CHECK(ch.end <= hl.begin || ch.begin >= hl.end, "a chunk overlaps a heading line");
    }
  }
  for (const auto& hl : c.heading_lines) FUZZ_CHECK(hl.begin <= hl.end && hl.end <= n, "heading line outside");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  io::Document doc;
  const medsearch::Status st = io::parse_markdown_document(input, &doc);
  if (st.is_ok()) {
    FUZZ_CHECK(doc.format == io::DocFormat::kMarkdown, "format");
    FUZZ_CHECK(doc.last_reviewed.empty() || doc.last_reviewed.size() == 10, doc.last_reviewed);
    FUZZ_CHECK(doc.audience.empty() || doc.audience == "hp" || doc.audience == "patient", doc.audience);
    for (const std::string* s : {&doc.title, &doc.url, &doc.body, &doc.cancer_type}) {
      FUZZ_CHECK(valid_utf8(*s), "a field is not UTF-8: " + *s);
    }
    for (const auto& t : doc.tags) FUZZ_CHECK(valid_utf8(t), "a tag is not UTF-8: " + t);
  } else {
    FUZZ_CHECK(st.code() == medsearch::StatusCode::kCorrupt, st.to_string());
    FUZZ_CHECK(st.message().rfind("line ", 0) == 0, st.message());
  }

  // The same bytes as a file of a tree: the reader must agree with the parser.
  static const auto root = medsearch::fuzz::scratch_dir("markdown") / "tree";
  static const bool made = [] { return std::filesystem::create_directories(root); }();
  (void)made;
  medsearch::fuzz::write_bytes(root / "page.md", input);
  for (const bool skip : {false, true}) {
    io::ReadReport report;
    auto docs = io::read_markdown_tree(root, "fuzz", io::ReadOptions{.skip_malformed = skip}, &report);
    if (st.is_ok()) {
      FUZZ_CHECK(docs.is_ok() && docs->size() == 1, docs.status().to_string());
      const io::Document& d = docs->front();
      FUZZ_CHECK(d.doc_id == "page.md" && d.corpus == "fuzz", d.doc_id);
      FUZZ_CHECK(d.body == doc.body && d.url == doc.url && d.tags == doc.tags, "tree read differs");
      FUZZ_CHECK(d.title == (doc.title.empty() ? "page" : doc.title), d.title);
    } else if (skip) {
      FUZZ_CHECK(docs.is_ok() && docs->empty() && report.skipped == 1, docs.status().to_string());
    } else {
      FUZZ_CHECK(!docs.is_ok() && docs.status().code() == medsearch::StatusCode::kCorrupt, "tree accepted");
      FUZZ_CHECK(docs.status().message().rfind("page.md:", 0) == 0, docs.status().message());
    }
  }
  if (!st.is_ok()) return 0;

  check_chunks(text::chunk_markdown(doc.body, doc.title, text::ChunkerOptions{}));
  check_chunks(text::chunk_markdown(doc.body, doc.title,
                                    text::ChunkerOptions{.max_tokens = 7, .overlap_tokens = 3, .min_tokens = 1}));
  return 0;
}
