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
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace medsearch::text {

struct ChunkerOptions {
  uint32_t max_tokens = 220;     // budget of a passage in whitespace words
  uint32_t overlap_tokens = 24;  // words carried over from the previous piece of a split section
  uint32_t min_tokens = 3;       // sections with fewer words than this (after cleaning) are dropped
};

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
// each with heading_path {title} (or {} when the title is empty).
ChunkedDocument chunk_plain(std::string_view title, std::string_view text,
                            const ChunkerOptions& options);

}  // namespace medsearch::text
