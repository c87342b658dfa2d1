// chunker.h: cuts a document into passages along its structure.
//
// The chunker first produces the document's *clean text*: Markdown with link
// markup reduced to its text, citation anchors ("[[1](#cit/...)]"), "Level of
// evidence" pop-up links, navigation lines ("Go to Patient Version"), emphasis
// markers and reference lists ("###### References" blocks) removed. Heading
// lines stay in the clean text (without their '#'s). Passages are byte spans
// into that clean text: clean_text.substr(begin, end - begin) is the passage
// text, exactly.
//
// Rules: a passage never crosses a heading; each keeps its heading path (the
// chain of enclosing headings, outermost first; a new heading of level L closes
// every open heading of level >= L). Sections longer than max_tokens are split
// at sentence or list-item boundaries with about overlap_tokens of overlap.
// Empty sections produce no passage. Tokens here are whitespace-separated words.
//
// Cleaning rules in detail (chunk_markdown):
//  - Links: [text](target "title") -> text, also when the text runs over
//    several lines; images ![alt](src) are dropped with their alt text. Links
//    to "#cit/..." and links whose text is "Level of evidence ..." or "PUBMED
//    Abstract" are dropped, and so are brackets holding only such links and
//    separators ("[[1](#cit/..),[2](#cit/..)]", "[[3](#cit/..)-[8](#cit/..)]").
//    A bracketed ordinary link keeps its brackets: "[[NCT0123](/ct/..)]" ->
//    "[NCT0123]". Glossary pop-ups ("/Common/PopUps/..." with other text) are
//    ordinary links.
//  - Navigation lines: a line that is only a link whose text starts with
//    "Go to ", "View all ", "View more ", "Enlarge ", "View and Print " or is
//    "Back to top".
//  - Emphasis: runs of '*' or '_' touching a word are removed ('_' only at word
//    edges: "snake_case" stays); "* " opening a line and " * " stay; backslash
//    escapes ("\*") become the literal character. "<https://x>" -> "https://x".
//  - Headings named "References", "Selected References" or "Key References
//    ..." drop everything up to the next heading, the heading line included.
//  - An empty heading ("##") takes the next line as its text when that line
//    stands alone (blank line or heading after it); otherwise it is ignored.
//  - Tables: one line per row, non-empty cells joined by " | "; delimiter rows
//    and rows of empty cells are dropped.
//  - Lines are trimmed, runs of spaces become one, runs of blank lines one
//    blank line; list items keep their markers ("- ", "1. ").
//  - Heading path: the cleaned heading texts. Text outside any heading in the
//    path (before the first heading, or under the title heading only) gets
//    {title without " - NCI"}, or {} when the title is empty.
//
// Splitting: a piece ends at the last unit start (paragraph, list item, table
// row, or a sentence start after [.?!] that is not an abbreviation like "e.g.")
// within max_tokens words, if that keeps it at least a quarter full; otherwise
// it is cut between words. The next piece starts at the unit start closest to
// overlap_tokens words back (between half and twice that), else exactly
// overlap_tokens words back. overlap_tokens is capped at (max_tokens - 1) / 2
// and max_tokens is at least 1, so every piece advances.
//
// Cost: linear in the input (link scans are bounded); about 0.3 s for the
// 51 MB nci-pdq tree on one core. Thread safety: thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/options.h>

namespace medsearch::text {

struct Chunk {
  std::vector<std::string> heading_path;  // outermost first; never empty for Markdown
  uint32_t begin = 0;                     // byte offsets into ChunkedDocument::clean_text
  uint32_t end = 0;
};

// A byte range [begin, end) of ChunkedDocument::clean_text.
struct TextSpan {
  uint32_t begin = 0;
  uint32_t end = 0;
};

struct ChunkedDocument {
  std::string clean_text;
  std::vector<Chunk> chunks;  // in document order
  // The heading lines of clean_text (text only, no '\n'), in order. No chunk
  // overlaps one. Empty for chunk_plain().
  std::vector<TextSpan> heading_lines;
};

// Markdown guideline page (body without front matter). `title` is the page
// title from the front matter; a first "# " heading equal to it (or to it
// without a " - NCI" suffix) is not repeated in the heading path.
ChunkedDocument chunk_markdown(std::string_view markdown, std::string_view title,
                               const ChunkerOptions& options);

// BEIR document: clean_text is title + "\n\n" + text (title omitted if empty);
// chunks cover the text part only, split only when longer than max_tokens,
// each with heading_path {title} (or {} when the title is empty). The text is
// not cleaned, and min_tokens does not apply: only an empty text gives no chunk.
ChunkedDocument chunk_plain(std::string_view title, std::string_view text,
                            const ChunkerOptions& options);

}  // namespace medsearch::text
