// markdown_clean.h: Markdown cleaning for the chunker, one section or one
// raw line at a time (markdown_clean.cc): inline markup (links, images,
// citations, emphasis, escapes, autolinks), headings, navigation lines,
// "References" blocks and table rows. Also the byte-level helpers that both
// it and the passage cutting in chunker.cc use. Not installed; the rules
// they implement are listed in chunker.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace medsearch::text::internal {

inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool is_hspace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
// Letters, digits and any non-ASCII byte (part of a UTF-8 letter, mostly).
inline bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}
inline bool is_ascii_punct(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 33 && u <= 47) || (u >= 58 && u <= 64) || (u >= 91 && u <= 96) ||
         (u >= 123 && u <= 126);
}
inline char ascii_lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

inline bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
  }
  return true;
}
inline bool equals_icase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_icase(a, b);
}

// Appends s (one section's raw lines, or a heading's text) to *out without
// its inline markup. depth: 0 (it counts nested link texts).
void clean_inline(std::string_view s, std::string* out, int depth);

// One raw line at a time; each is described at its definition.
int parse_heading(std::string_view line, std::string_view* text);  // level, 0 if none
bool is_references_heading(std::string_view text);
bool is_nav_line(std::string_view line);
bool is_table_row(std::string_view line);
bool flatten_table_row(std::string_view line, std::string* out);

}  // namespace medsearch::text::internal
