// corpus_reader_impl.h: what the two corpus readers share: markdown_reader.cc
// (Markdown trees with YAML front matter) and corpus_reader.cc (BEIR JSONL,
// and read_corpus, which picks one). Not installed.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <medsearch/corpus.h>

namespace medsearch::io::internal {

inline bool is_hspace(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (is_hspace(s[b]) || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (is_hspace(s[e - 1]) || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

// Iterates the lines of a buffer: "a\nb\n" and "a\nb" are both {"a", "b"}.
// The '\n' and a '\r' before it are not part of a line.
class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {}
  bool next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    const void* nl = std::memchr(text_.data() + pos_, '\n', text_.size() - pos_);
    const size_t end = nl ? static_cast<const char*>(nl) - text_.data() : text_.size();
    *line = text_.substr(pos_, end - pos_);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    pos_ = nl ? end + 1 : end;
    ++number_;
    return true;
  }
  size_t number() const { return number_; }  // 1-based number of the last line returned
  size_t offset() const { return pos_; }      // start of the next line

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

inline void record_skip(ReadReport* report, std::string message) {
  if (report == nullptr) return;
  ++report->skipped;
  report->messages.push_back(std::move(message));
}

}  // namespace medsearch::io::internal
