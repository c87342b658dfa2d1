// chunker.cc: structure-aware passage cutting.
//
// One pass over the lines of a page. Lines are grouped into sections (the
// text between two headings); a section's raw lines are cleaned as one string
// (markdown_clean.cc: link text may run over several lines, even over a blank
// line), appended to clean_text, and cut into passages by splitting its words.
// Everything is linear in the input.
#include "core/text/chunker.h"

#include "core/text/markdown_clean.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <utility>

namespace medsearch::text {
using namespace internal;

namespace {

// ---------------------------------------------------------------------------
// Cutting a section into passages.

struct Word {
  uint32_t begin;
  uint32_t end;
};

bool ends_sentence(std::string_view w) {
  size_t e = w.size();
  while (e > 0) {  // closing quotes and brackets after the stop: '.)' '."' '.”'
    const char c = w[e - 1];
    if (c == ')' || c == ']' || c == '"' || c == '\'') {
      --e;
    } else if (e >= 3 && (w.substr(e - 3, 3) == "\u201D" || w.substr(e - 3, 3) == "\u2019")) {
      e -= 3;
    } else {
      break;
    }
  }
  if (e == 0) return false;
  const char last = w[e - 1];
  if (last != '.' && last != '?' && last != '!') return false;
  // Abbreviations and initials are not sentence ends: "e.g.", "vs.", "J.".
  const std::string_view stem = w.substr(0, e);
  if (stem.size() == 2 && is_upper(stem[0])) return false;
  static constexpr std::string_view kAbbrev[] = {"e.g.", "i.e.", "vs.", "al.", "dr.", "mr.",
                                                 "mrs.", "ms.", "no.", "fig.", "st.", "approx.",
                                                 "cf.", "ca.", "inc.", "jr."};
  for (const std::string_view a : kAbbrev) {
    if (equals_icase(stem, a)) return false;
  }
  return true;
}

bool starts_sentence(std::string_view w) {
  size_t b = 0;
  while (b < w.size() && (w[b] == '(' || w[b] == '[' || w[b] == '"' || w[b] == '\'')) ++b;
  if (b == w.size()) return false;
  const auto u = static_cast<unsigned char>(w[b]);
  return is_upper(w[b]) || is_digit(w[b]) || u >= 0x80;
}

bool is_list_marker(std::string_view w) {
  if (w == "-" || w == "*" || w == "+" || w == "\u2022") return true;
  if (w.size() < 2 || w.size() > 4) return false;
  const char last = w.back();
  if (last != '.' && last != ')') return false;
  for (size_t k = 0; k + 1 < w.size(); ++k) {
    if (!is_digit(w[k])) return false;
  }
  return true;
}

class Splitter {
 public:
  explicit Splitter(const ChunkerOptions& options)
      : max_(std::max<uint32_t>(1, options.max_tokens)),
        // Overlap at most just under half a passage, so every piece advances.
        overlap_(std::min<uint32_t>(options.overlap_tokens, (max_ - 1) / 2)),
        min_(options.min_tokens) {}

  // Cuts text[begin, end) into chunks appended to doc->chunks. `min_words`
  // sections shorter than that are dropped.
  void cut(const std::string& text, uint32_t begin, uint32_t end, uint32_t min_words,
           const std::vector<std::string>& path, ChunkedDocument* doc) {
    scan(text, begin, end);
    const size_t n = words_.size();
    if (n == 0 || n < min_words) return;
    size_t start = 0;
    while (true) {
      if (n - start <= max_) {
        emit(start, n, path, doc);
        return;
      }
      const size_t limit = start + max_;
      // The last unit boundary that keeps the piece at least a quarter full;
      // otherwise (a sentence longer than the budget) cut between words.
      size_t cut = limit;
      auto it = std::upper_bound(bounds_.begin(), bounds_.end(), limit);
      const size_t b = *(it - 1);  // bounds_[0] == 0 <= limit
      if (b > start && b - start >= std::max<size_t>(1, max_ / 4)) cut = b;
      emit(start, cut, path, doc);
      start = overlap_ == 0 ? cut : overlap_start(start, cut);
    }
  }

  uint32_t min_tokens() const { return min_; }

 private:
  // Splits text[begin, end) into words and marks the words that start a unit:
  // a paragraph, a list item, a table row or a sentence.
  void scan(const std::string& text, uint32_t begin, uint32_t end) {
    words_.clear();
    bounds_.clear();
    const char* s = text.data();
    uint32_t i = begin;
    uint32_t line_begin = begin;
    bool table_line = false;
    while (i < end) {
      // Skip whitespace, noting line starts and blank lines.
      int newlines = 0;
      while (i < end && is_space(s[i])) {
        if (s[i] == '\n') {
          ++newlines;
          line_begin = i + 1;
        }
        ++i;
      }
      if (i >= end) break;
      const uint32_t wb = i;
      while (i < end && !is_space(s[i])) ++i;
      const std::string_view w(s + wb, i - wb);
      bool boundary;
      if (words_.empty()) {
        boundary = true;
        table_line = line_has_cell_separator(s, wb, end);
      } else {
        const Word& p = words_.back();
        const std::string_view prev(s + p.begin, p.end - p.begin);
        if (newlines > 0) {
          table_line = line_has_cell_separator(s, line_begin, end);
          boundary = newlines > 1 || table_line || is_list_marker(w) || ends_sentence(prev) ||
                     prev.back() == ':';
        } else {
          boundary = ends_sentence(prev) && starts_sentence(w) && !is_list_marker(prev);
        }
      }
      if (boundary) bounds_.push_back(words_.size());
      words_.push_back({wb, i});
    }
  }

  static bool line_has_cell_separator(const char* s, uint32_t from, uint32_t end) {
    const void* nl = std::memchr(s + from, '\n', end - from);
    const size_t len = nl ? static_cast<const char*>(nl) - (s + from) : end - from;
    return std::string_view(s + from, len).find(" | ") != std::string_view::npos;
  }

  // Start of the next piece: the unit boundary nearest to `overlap_` words
  // before `cut` (between half and twice the overlap), else exactly that word.
  size_t overlap_start(size_t start, size_t cut) const {
    const size_t target = cut > start + overlap_ ? cut - overlap_ : start + 1;
    const size_t lo = std::max(start + 1, cut > 2 * overlap_ ? cut - 2 * overlap_ : size_t{0});
    const size_t hi = cut - std::max<size_t>(1, overlap_ / 2);  // inclusive
    size_t best = 0;
    size_t best_dist = std::numeric_limits<size_t>::max();
    auto it = std::lower_bound(bounds_.begin(), bounds_.end(), lo);
    for (; it != bounds_.end() && *it <= hi; ++it) {
      const size_t d = *it > target ? *it - target : target - *it;
      if (d <= best_dist) {  // ties: the later boundary, less repetition
        best = *it;
        best_dist = d;
      }
    }
    return best_dist != std::numeric_limits<size_t>::max() ? best : target;
  }

  void emit(size_t first, size_t last, const std::vector<std::string>& path,
            ChunkedDocument* doc) const {
    Chunk c;
    c.heading_path = path;
    c.begin = words_[first].begin;
    c.end = words_[last - 1].end;
    doc->chunks.push_back(std::move(c));
  }

  uint32_t max_;
  uint32_t overlap_;
  uint32_t min_;
  std::vector<Word> words_;     // scratch, reused across sections
  std::vector<size_t> bounds_;  // indices into words_ of unit starts, ascending
};

// ---------------------------------------------------------------------------
// The Markdown page walk.

class MarkdownChunker {
 public:
  MarkdownChunker(std::string_view title, const ChunkerOptions& options)
      : title_(trim(title)), splitter_(options) {
    if (title_.ends_with(" - NCI")) short_title_ = trim(title_.substr(0, title_.size() - 6));
  }

  ChunkedDocument run(std::string_view markdown) {
    assert(markdown.size() < std::numeric_limits<uint32_t>::max() / 2);
    split_lines(markdown);
    doc_.clean_text.reserve(markdown.size());
    for (size_t li = 0; li < lines_.size(); ++li) {
      const std::string_view line = lines_[li];
      std::string_view raw_heading;
      const int level = parse_heading(line, &raw_heading);
      if (level > 0) {
        flush_section();
        in_references_ = false;
        std::string text = clean_line(raw_heading);
        if (text.empty()) {
          // "##" alone, its text on the next line: a conversion artifact of
          // cancer.gov Q&A pages. Promote that line when it stands alone.
          const size_t next = promoted_line(li);
          if (next == 0) continue;
          text = clean_line(lines_[next]);
          li = next;
          if (text.empty()) continue;
        }
        open_heading(level, std::move(text));
        continue;
      }
      if (in_references_ || is_nav_line(line)) continue;
      if (is_table_row(line)) {
        if (!flatten_table_row(line, &pending_)) continue;
      } else {
        pending_.append(line);
      }
      pending_.push_back('\n');
    }
    flush_section();
    while (!doc_.clean_text.empty() && doc_.clean_text.back() == '\n') doc_.clean_text.pop_back();
    return std::move(doc_);
  }

 private:
  void split_lines(std::string_view md) {
    size_t pos = 0;
    while (pos < md.size()) {
      const void* nl = std::memchr(md.data() + pos, '\n', md.size() - pos);
      const size_t end = nl ? static_cast<const char*>(nl) - md.data() : md.size();
      std::string_view line = md.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      lines_.push_back(line);
      pos = end + 1;
    }
  }

  // For an empty heading at line li: the index of the next non-blank line if
  // it is a lone paragraph line (blank or heading after it), else 0.
  size_t promoted_line(size_t li) const {
    size_t k = li + 1;
    while (k < lines_.size() && trim(lines_[k]).empty()) ++k;
    if (k >= lines_.size()) return 0;
    std::string_view unused;
    const std::string_view t = trim(lines_[k]);
    if (parse_heading(lines_[k], &unused) > 0 || is_table_row(t) || t.starts_with("- ") ||
        t.starts_with("* ") || t.starts_with("![")) {
      return 0;
    }
    if (k + 1 < lines_.size() && !trim(lines_[k + 1]).empty() &&
        parse_heading(lines_[k + 1], &unused) == 0) {
      return 0;
    }
    return k;
  }

  // Inline-cleans a single-line fragment (a heading) and collapses its spaces.
  std::string clean_line(std::string_view raw) {
    scratch_.clear();
    clean_inline(raw, &scratch_, 0);
    std::string out;
    out.reserve(scratch_.size());
    for (const char c : scratch_) {
      if (is_space(c)) {
        if (!out.empty() && out.back() != ' ') out.push_back(' ');
      } else {
        out.push_back(c);
      }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

  void open_heading(int level, std::string text) {
    if (is_references_heading(text)) {
      close_levels(level);
      in_references_ = true;
      return;
    }
    const bool is_title = first_heading_ && level == 1 &&
                          (text == title_ || (!short_title_.empty() && text == short_title_));
    first_heading_ = false;
    std::string& clean = doc_.clean_text;
    const auto begin = static_cast<uint32_t>(clean.size());
    clean.append(text);
    doc_.heading_lines.push_back({begin, static_cast<uint32_t>(clean.size())});
    clean.append("\n\n");
    if (is_title) return;  // the page title: not repeated in heading paths
    close_levels(level);
    stack_.emplace_back(level, std::move(text));
    path_dirty_ = true;
  }

  void close_levels(int level) {
    while (!stack_.empty() && stack_.back().first >= level) stack_.pop_back();
    path_dirty_ = true;
  }

  const std::vector<std::string>& current_path() {
    if (path_dirty_) {
      path_.clear();
      for (const auto& [lvl, text] : stack_) path_.push_back(text);
      if (path_.empty()) {
        // Text before any heading (or under the title heading only).
        const std::string_view root = !short_title_.empty() ? short_title_ : title_;
        if (!root.empty()) path_.emplace_back(root);
      }
      path_dirty_ = false;
    }
    return path_;
  }

  // Cleans the pending section, appends it to clean_text as trimmed lines
  // (runs of blank lines become one, runs of spaces one space) and cuts it.
  void flush_section() {
    if (pending_.empty()) return;
    scratch_.clear();
    clean_inline(pending_, &scratch_, 0);
    pending_.clear();
    std::string& clean = doc_.clean_text;
    const auto begin = static_cast<uint32_t>(clean.size());
    bool any = false;
    bool blank = false;
    size_t pos = 0;
    while (pos < scratch_.size()) {
      const void* nl = std::memchr(scratch_.data() + pos, '\n', scratch_.size() - pos);
      const size_t end = nl ? static_cast<const char*>(nl) - scratch_.data() : scratch_.size();
      const std::string_view line = trim(std::string_view(scratch_).substr(pos, end - pos));
      pos = end + 1;
      if (line.empty()) {
        blank = any;
        continue;
      }
      if (blank) clean.push_back('\n');
      blank = false;
      bool space = false;
      for (const char c : line) {
        if (is_hspace(c)) {
          space = true;
          continue;
        }
        if (space) clean.push_back(' ');
        space = false;
        clean.push_back(c);
      }
      clean.push_back('\n');
      any = true;
    }
    if (!any) return;
    const auto end = static_cast<uint32_t>(clean.size());
    clean.push_back('\n');
    splitter_.cut(clean, begin, end, std::max<uint32_t>(1, splitter_.min_tokens()),
                  current_path(), &doc_);
  }

  std::string_view title_;
  std::string_view short_title_;  // title_ without its " - NCI" suffix
  Splitter splitter_;
  ChunkedDocument doc_;
  std::vector<std::string_view> lines_;
  std::vector<std::pair<int, std::string>> stack_;  // open headings (level, text)
  std::vector<std::string> path_;
  bool path_dirty_ = true;
  bool first_heading_ = true;
  bool in_references_ = false;
  std::string pending_;  // raw lines of the current section
  std::string scratch_;
};

}  // namespace

ChunkedDocument chunk_markdown(std::string_view markdown, std::string_view title,
                               const ChunkerOptions& options) {
  return MarkdownChunker(title, options).run(markdown);
}

ChunkedDocument chunk_plain(std::string_view title, std::string_view text,
                            const ChunkerOptions& options) {
  assert(title.size() + text.size() < std::numeric_limits<uint32_t>::max() / 2);
  ChunkedDocument doc;
  doc.clean_text.reserve(title.size() + text.size() + 2);
  if (!title.empty()) {
    doc.clean_text.append(title);
    doc.clean_text.append("\n\n");
  }
  const auto begin = static_cast<uint32_t>(doc.clean_text.size());
  doc.clean_text.append(text);
  std::vector<std::string> path;
  if (!title.empty()) path.emplace_back(title);
  // min_tokens is for Markdown sections; an abstract is kept unless empty.
  Splitter(options).cut(doc.clean_text, begin, static_cast<uint32_t>(doc.clean_text.size()), 1,
                        path, &doc);
  return doc;
}

}  // namespace medsearch::text
