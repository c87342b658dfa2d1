// fuzz_beir: the BEIR corpus.jsonl reader (core/io/corpus_reader.h, simdjson)
// and the plain-text chunker that consumes its documents.
//
// Each input is a whole corpus.jsonl, written to a per-process scratch file
// and read strictly, with skip_malformed, and through read_corpus() on its
// directory. Checked: no crash or UB; strict success implies the skipping
// read returns the same documents; every non-blank line is either a document
// or a skip; ids are non-empty and unique; text is valid UTF-8; meta is a
// minified JSON object; plain chunks stay inside the clean text.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include <medsearch/corpus.h>

#include "core/text/chunker.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace io = medsearch::io;
namespace text = medsearch::text;
using medsearch::fuzz::valid_utf8;

size_t non_blank_lines(std::string_view s) {
  size_t n = 0, pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    for (size_t i = pos; i < end; ++i) {
      if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
        ++n;
        break;
      }
    }
    pos = end + 1;
  }
  return n;
}

void check_document(const io::Document& d) {
  FUZZ_CHECK(!d.doc_id.empty(), "empty doc_id");
  FUZZ_CHECK(d.format == io::DocFormat::kPlain && d.corpus == "fuzz", d.corpus);
  FUZZ_CHECK(valid_utf8(d.doc_id) && valid_utf8(d.title) && valid_utf8(d.body), "text is not UTF-8");
  if (!d.meta_json.empty()) {
    simdjson::dom::parser parser;
    simdjson::dom::element meta;
    FUZZ_CHECK(parser.parse(d.meta_json).get(meta) == simdjson::SUCCESS && meta.is_object(), d.meta_json);
  }
  for (const auto& options : {text::ChunkerOptions{.max_tokens = 400, .overlap_tokens = 40, .min_tokens = 1},
                              text::ChunkerOptions{.max_tokens = 5, .overlap_tokens = 2, .min_tokens = 1}}) {
    const text::ChunkedDocument c = text::chunk_plain(d.title, d.body, options);
    for (const auto& ch : c.chunks) {
      FUZZ_CHECK(ch.begin <= ch.end && ch.end <= c.clean_text.size(), "plain chunk outside the clean text");
    }
    FUZZ_CHECK(!d.body.empty() || c.chunks.empty(), "an empty text gave a chunk");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const auto dir = medsearch::fuzz::scratch_dir("beir") / "fuzz";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;
  const auto file = dir / "corpus.jsonl";
  medsearch::fuzz::write_bytes(file, input);

  auto strict = io::read_beir_jsonl(file, "fuzz", io::ReadOptions{}, nullptr);
  io::ReadReport report;
  auto skipping = io::read_beir_jsonl(file, "fuzz", io::ReadOptions{.skip_malformed = true}, &report);
  FUZZ_CHECK(skipping.is_ok(), skipping.status().to_string());  // only I/O can fail it
  FUZZ_CHECK(report.documents == skipping->size() && report.skipped == report.messages.size(), "report");
  FUZZ_CHECK(report.documents + report.skipped == non_blank_lines(input), "a line was neither read nor skipped");
  std::set<std::string> ids;
  for (const auto& d : *skipping) {
    check_document(d);
    FUZZ_CHECK(ids.insert(d.doc_id).second, "duplicate id " + d.doc_id);
  }
  for (const auto& m : report.messages) FUZZ_CHECK(m.rfind(file.string() + ":", 0) == 0, m);
  if (strict.is_ok()) {
    FUZZ_CHECK(report.skipped == 0 && strict->size() == skipping->size(), "strict and skipping reads differ");
    for (size_t i = 0; i < strict->size(); ++i) {
      const auto &a = (*strict)[i], &b = (*skipping)[i];
      FUZZ_CHECK(a.doc_id == b.doc_id && a.title == b.title && a.body == b.body && a.meta_json == b.meta_json,
                 a.doc_id);
    }
  } else {
    FUZZ_CHECK(strict.status().code() == medsearch::StatusCode::kCorrupt, strict.status().to_string());
    FUZZ_CHECK(report.skipped > 0, "strict read failed but nothing was skipped");
  }

  // The directory form goes through read_corpus()'s dispatch and names the corpus.
  auto via_dir = io::read_corpus(dir, "", io::ReadOptions{.skip_malformed = true}, nullptr);
  FUZZ_CHECK(via_dir.is_ok() && via_dir->size() == skipping->size(), via_dir.status().to_string());
  return 0;
}
