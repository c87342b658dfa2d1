// markdown_clean.cc: Markdown cleaning for the chunker (chunker.cc): inline
// markup (links, images, citations, emphasis, escapes, autolinks) and the
// block-level line helpers (headings, navigation lines, "References" blocks,
// table rows). A section's raw lines are cleaned as one string, since link
// text may run over several lines, even over a blank line. Everything is
// linear in the input: bracket and parenthesis scans are bounded by
// kMaxLinkScan, so unbalanced '[' cannot make the pass quadratic.
#include "core/text/markdown_clean.h"

#include <algorithm>

namespace medsearch::text::internal {
namespace {

// Longest link text or destination we look for a closing ']' or ')' in. Real
// links are far shorter; the bound keeps a stray '[' from scanning the page.
constexpr size_t kMaxLinkScan = 4096;
// Link text is cleaned recursively ("[*VHL* gene](...)"); deeper nesting is
// copied as is.
constexpr int kMaxLinkDepth = 4;

// ---------------------------------------------------------------------------
// Links

// What follows a '[' at some position: a bracketed span, possibly a link.
struct Bracket {
  bool closed = false;  // a matching ']' was found
  bool link = false;    // ... directly followed by a balanced "(destination)"
  size_t text_begin = 0, text_end = 0;  // between the brackets
  size_t url_begin = 0, url_end = 0;    // the destination, without an optional "title"
  size_t end = 0;                       // one past ']' (not a link) or ')' (link)
};

Bracket scan_bracket(std::string_view s, size_t open) {
  Bracket b;
  const size_t n = s.size();
  const size_t limit = std::min(n, open + kMaxLinkScan);
  size_t j = open + 1;
  int depth = 1;
  for (; j < limit; ++j) {
    const char c = s[j];
    if (c == '\\') {
      ++j;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']' && --depth == 0) {
      break;
    }
  }
  if (j >= limit || depth != 0) return b;
  b.closed = true;
  b.text_begin = open + 1;
  b.text_end = j;
  b.end = j + 1;
  if (j + 1 >= n || s[j + 1] != '(') return b;

  // Destination: balanced parentheses; a quoted title ("...") may hold any
  // parenthesis. A blank line ends the attempt: that is not a destination.
  const size_t dest = j + 2;
  const size_t dlimit = std::min(n, dest + kMaxLinkScan);
  // Unbalanced destinations occur ("...%20(" cut from a text fragment URL):
  // then the first ')' on the destination's line closes it.
  int pdepth = 1;
  bool in_title = false;
  size_t first_close = std::string_view::npos;
  bool same_line = true;
  size_t k = dest;
  for (; k < dlimit; ++k) {
    const char c = s[k];
    if (in_title) {
      if (c == '"') in_title = false;
    } else if (c == '"' && k > dest && is_space(s[k - 1])) {
      in_title = true;
    } else if (c == '\\') {
      ++k;
    } else if (c == '(') {
      ++pdepth;
    } else if (c == ')') {
      if (same_line && first_close == std::string_view::npos) first_close = k;
      if (--pdepth == 0) break;
    } else if (c == '\n') {
      same_line = false;
      if (k + 1 < n && s[k + 1] == '\n') break;
    }
  }
  if (k >= dlimit || pdepth != 0) {
    if (first_close == std::string_view::npos) return b;
    k = first_close;
  }
  size_t ub = dest;
  while (ub < k && is_space(s[ub])) ++ub;
  size_t ue = ub;
  while (ue < k && !is_space(s[ue])) ++ue;
  b.link = true;
  b.url_begin = ub;
  b.url_end = ue;
  b.end = k + 1;
  return b;
}

// Citation anchors, "Level of evidence" pop-ups and PubMed links are markup:
// they are dropped with their text. Other links keep their text.
bool is_markup_link(std::string_view text, std::string_view url) {
  if (url.starts_with("#cit/")) return true;
  size_t b = 0, e = text.size();
  auto skip = [](char c) { return is_space(c) || c == '[' || c == ']' || c == '*' || c == '_'; };
  while (b < e && skip(text[b])) ++b;
  while (e > b && skip(text[e - 1])) --e;
  const std::string_view t = text.substr(b, e - b);
  return starts_with_icase(t, "level of evidence") || equals_icase(t, "pubmed abstract");
}

bool is_markup_link(std::string_view s, const Bracket& b) {
  return b.link && is_markup_link(s.substr(b.text_begin, b.text_end - b.text_begin),
                                  s.substr(b.url_begin, b.url_end - b.url_begin));
}

// "[[1](#cit/section_1.1),[2](#cit/section_1.2)]", "[[3](#cit/..)-[8](#cit/..)]",
// "[[Level of evidence C1](/Common/PopUps/...)]": brackets holding only markup
// links and separators.
bool is_markup_group(std::string_view s, size_t begin, size_t end) {
  bool any = false;
  size_t j = begin;
  while (j < end) {
    const char c = s[j];
    if (is_space(c) || c == ',' || c == ';' || c == '-') {
      ++j;
    } else if (s.substr(j, end - j).starts_with("\u2013")) {  // en dash in ranges
      j += 3;
    } else if (c == '[') {
      const Bracket b = scan_bracket(s.substr(0, end), j);
      if (!is_markup_link(s, b)) return false;
      any = true;
      j = b.end;
    } else {
      return false;
    }
  }
  return any;
}

// After dropping markup, avoid leaving "text ." or "text  more".
void close_gap(std::string_view s, size_t next, std::string* out) {
  const char c = next < s.size() ? s[next] : '\n';
  if (is_space(c) || c == '.' || c == ',' || c == ';' || c == ':' || c == ')') {
    while (!out->empty() && is_hspace(out->back())) out->pop_back();
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Inline cleaning: links, images, citations, emphasis, escapes, autolinks.

void clean_inline(std::string_view s, std::string* out, int depth) {
  const size_t n = s.size();
  size_t line_start = 0;  // index of the current source line's first byte
  size_t i = 0;
  out->reserve(out->size() + n);
  while (i < n) {
    const char c = s[i];
    switch (c) {
      case '\n':
        out->push_back('\n');
        line_start = ++i;
        continue;
      case '\\':
        if (i + 1 < n && is_ascii_punct(s[i + 1])) {  // "\*", "\_", "\[": literal
          out->push_back(s[i + 1]);
          i += 2;
          continue;
        }
        break;
      case '!':
        if (i + 1 < n && s[i + 1] == '[') {
          const Bracket b = scan_bracket(s, i + 1);
          if (b.link) {  // image: dropped, alt text too
            i = b.end;
            close_gap(s, i, out);
            continue;
          }
        }
        break;
      case '[': {
        const Bracket b = scan_bracket(s, i);
        if (b.link) {
          if (!is_markup_link(s, b)) {
            const std::string_view text = s.substr(b.text_begin, b.text_end - b.text_begin);
            if (depth < kMaxLinkDepth) {
              clean_inline(text, out, depth + 1);
            } else {
              out->append(text);
            }
            i = b.end;
          } else {
            i = b.end;
            close_gap(s, i, out);
          }
          continue;
        }
        if (b.closed && is_markup_group(s, b.text_begin, b.text_end)) {
          i = b.end;
          close_gap(s, i, out);
          continue;
        }
        break;  // a literal '[': its content is cleaned as ordinary text
      }
      case '*':
      case '_': {
        size_t r = i;
        while (r < n && s[r] == c) ++r;
        const char prev = i > 0 ? s[i - 1] : ' ';
        const char next = r < n ? s[r] : ' ';
        const bool left = !is_space(next);   // could open emphasis
        const bool right = !is_space(prev);  // could close emphasis
        bool emphasis;
        if (c == '*') {
          // "* item" at the start of a line is a bullet; " * " is a literal.
          emphasis = left || right;
          if (emphasis && r - i == 1 && next == ' ') {
            bool at_line_start = true;
            for (size_t k = line_start; k < i && at_line_start; ++k) at_line_start = is_hspace(s[k]);
            emphasis = !at_line_start;
          }
        } else {
          // '_' inside a word is literal ("snake_case", "CDR_0001").
          emphasis = (left && !is_word_byte(prev)) || (right && !is_word_byte(next));
        }
        if (!emphasis) out->append(s.substr(i, r - i));
        i = r;
        continue;
      }
      case '<': {
        // Autolinks "<https://...>" keep the address; "<MM/DD/YYYY>" is text.
        const std::string_view rest = s.substr(i + 1, std::min<size_t>(n - i - 1, 2048));
        if (rest.starts_with("http://") || rest.starts_with("https://") ||
            rest.starts_with("mailto:")) {
          size_t k = 0;
          while (k < rest.size() && rest[k] != '>' && !is_space(rest[k])) ++k;
          if (k < rest.size() && rest[k] == '>') {
            out->append(rest.substr(0, k));
            i += k + 2;
            continue;
          }
        }
        break;
      }
      default:
        break;
    }
    out->push_back(c);
    ++i;
  }
}

// ---------------------------------------------------------------------------
// Block-level helpers (one raw line at a time).

// ATX heading: up to 3 spaces, 1-6 '#', then a space or the end of the line.
// Returns the level (0: not a heading) and the raw text without the optional
// closing '#'s.
int parse_heading(std::string_view line, std::string_view* text) {
  size_t i = 0;
  while (i < 3 && i < line.size() && line[i] == ' ') ++i;
  size_t h = i;
  while (h < line.size() && line[h] == '#') ++h;
  const size_t level = h - i;
  if (level < 1 || level > 6) return 0;
  if (h < line.size() && !is_hspace(line[h])) return 0;
  std::string_view t = trim(line.substr(h));
  size_t e = t.size();
  while (e > 0 && t[e - 1] == '#') --e;
  if (e == 0) {
    t = {};
  } else if (e < t.size() && is_hspace(t[e - 1])) {
    t = trim(t.substr(0, e));
  }
  *text = t;
  return static_cast<int>(level);
}

// "References" blocks (and the "Key References for ..." lists of PDQ
// summaries) are bibliography, not prose.
bool is_references_heading(std::string_view text) {
  return text == "References" || text == "Selected References" ||
         text.starts_with("Key References");
}

// A line holding nothing but a navigation link: "[Go to Patient Version](...)".
bool is_nav_line(std::string_view line) {
  const std::string_view t = trim(line);
  if (t.empty() || t[0] != '[') return false;
  const Bracket b = scan_bracket(t, 0);
  if (!b.link || b.end != t.size()) return false;
  const std::string_view text = trim(t.substr(b.text_begin, b.text_end - b.text_begin));
  static constexpr std::string_view kNav[] = {"Go to ",   "View all ",      "View more ",
                                              "Enlarge ", "View and Print ", "Back to top"};
  for (const std::string_view p : kNav) {
    if (text.starts_with(p)) return true;
  }
  return false;
}

bool is_table_row(std::string_view line) {
  const std::string_view t = trim(line);
  return !t.empty() && t[0] == '|';
}

// "| a | b |" -> "a | b" (empty cells dropped). Returns false, appending
// nothing, for a delimiter row ("| --- | :-: |") or a row of empty cells.
bool flatten_table_row(std::string_view line, std::string* out) {
  std::string_view t = trim(line);
  t.remove_prefix(1);
  bool delimiter_row = true;
  bool any_cell = false;
  const size_t mark = out->size();
  size_t cell_begin = 0;
  for (size_t j = 0; j <= t.size(); ++j) {
    if (j < t.size() && t[j] == '\\') {
      ++j;
      continue;
    }
    if (j < t.size() && t[j] != '|') continue;
    const std::string_view cell = trim(t.substr(cell_begin, j - cell_begin));
    cell_begin = j + 1;
    if (cell.empty()) continue;
    const std::string_view dashes = cell.substr(cell.front() == ':' ? 1 : 0);
    const bool is_dashes = !dashes.empty() &&
                           dashes.find_first_not_of("-:") == std::string_view::npos &&
                           dashes.find('-') != std::string_view::npos;
    delimiter_row &= is_dashes;
    if (any_cell) out->append(" | ");
    out->append(cell);
    any_cell = true;
  }
  if (!any_cell || delimiter_row) {
    out->resize(mark);
    return false;
  }
  return true;
}


}  // namespace medsearch::text::internal
