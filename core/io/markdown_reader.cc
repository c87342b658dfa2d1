// markdown_reader.cc: Markdown trees with YAML front matter
// (read_markdown_tree, parse_markdown_document): the front matter's YAML
// subset, a page's fields and provenance, and the parallel walk of a tree.
// BEIR JSONL and read_corpus are in corpus_reader.cc.
#include <medsearch/corpus.h>

#include "core/io/corpus_reader_impl.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

namespace medsearch::io {
namespace fs = std::filesystem;
using namespace internal;

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A parse failure at a 1-based line of the input.
struct LineError {
  size_t line = 0;
  std::string reason;
};

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF), or npos.
size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

size_t line_of_offset(std::string_view s, size_t offset) {
  return 1 + static_cast<size_t>(std::count(s.begin(), s.begin() + offset, '\n'));
}

// ---------------------------------------------------------------------------
// Front matter: the YAML subset the corpus uses. Top-level `key: value`
// pairs; values are plain, 'single-quoted' or "double-quoted" scalars (which
// may continue on indented lines, folded with one space), block lists
// (`key:` then `- item` lines) or flow lists (`[a, b]`). Anything else
// (nested maps, block scalars `|` / `>`, anchors, tags) is rejected.

struct FrontMatterValue {
  size_t line = 0;  // where the key is
  bool is_list = false;
  std::string scalar;               // raw (still quoted) text, folded over continuation lines
  std::vector<std::string> items;   // raw list items
  std::vector<size_t> item_lines;
};

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
         c == '-' || c == '.';
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes one scalar (already trimmed). Returns an error reason, or "" on success.
std::string decode_scalar(std::string_view raw, std::string* out) {
  out->clear();
  if (raw.empty()) return {};
  if (raw.front() == '\'') {
    if (raw.size() < 2 || raw.back() != '\'') return "unterminated single-quoted string";
    const std::string_view in = raw.substr(1, raw.size() - 2);
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '\'') {
        if (i + 1 >= in.size() || in[i + 1] != '\'') return "stray quote in single-quoted string";
        ++i;
      }
      out->push_back(in[i]);
    }
    return {};
  }
  if (raw.front() == '"') {
    if (raw.size() < 2 || raw.back() != '"') return "unterminated double-quoted string";
    const std::string_view in = raw.substr(1, raw.size() - 2);
    for (size_t i = 0; i < in.size(); ++i) {
      const char c = in[i];
      if (c == '"') return "stray quote in double-quoted string";
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (++i >= in.size()) return "unterminated double-quoted string";
      switch (in[i]) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case ' ': out->push_back(' '); break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = in[i] == 'x' ? 2 : (in[i] == 'u' ? 4 : 8);
          uint32_t cp = 0;
          for (size_t k = 1; k <= digits; ++k) {
            if (i + k >= in.size()) return "truncated escape in double-quoted string";
            const char h = in[i + k];
            uint32_t v;
            if (is_digit(h)) {
              v = h - '0';
            } else if (h >= 'a' && h <= 'f') {
              v = h - 'a' + 10;
            } else if (h >= 'A' && h <= 'F') {
              v = h - 'A' + 10;
            } else {
              return "bad hex digit in escape";
            }
            cp = cp * 16 + v;
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return "escape is not a code point";
          append_utf8(cp, out);
          i += digits;
          break;
        }
        default:
          return std::string("unsupported escape '\\") + in[i] + "'";
      }
    }
    return {};
  }
  // Plain scalar. " #" starts a comment; indicator characters that would
  // start a YAML construct outside this subset are rejected.
  static constexpr std::string_view kIndicators = "{}|>&*!%@`";
  if (kIndicators.find(raw.front()) != std::string_view::npos) {
    return std::string("unsupported YAML value starting with '") + raw.front() + "'";
  }
  std::string_view v = raw;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && is_hspace(v[i - 1])) {
      v = trim(v.substr(0, i));
      break;
    }
  }
  if (v == "~" || v == "null" || v == "Null" || v == "NULL") return {};
  out->assign(v);
  return {};
}

// Splits a one-line flow list "[a, 'b', "c"]" into raw items.
std::string split_flow_list(std::string_view raw, std::vector<std::string>* items) {
  if (raw.back() != ']') return "unterminated flow list";
  std::string_view in = trim(raw.substr(1, raw.size() - 2));
  size_t i = 0;
  while (i < in.size()) {
    size_t j = i;
    if (in[i] == '\'' || in[i] == '"') {
      const char q = in[i];
      j = i + 1;
      while (j < in.size()) {
        if (in[j] == '\\' && q == '"') {
          j += 2;
        } else if (in[j] == q && q == '\'' && j + 1 < in.size() && in[j + 1] == '\'') {
          j += 2;
        } else if (in[j] == q) {
          break;
        } else {
          ++j;
        }
      }
      if (j >= in.size()) return "unterminated string in flow list";
      ++j;
    }
    while (j < in.size() && in[j] != ',') ++j;
    const std::string_view item = trim(in.substr(i, j - i));
    if (item.empty()) return "empty item in flow list";
    if (item.front() == '[' || item.front() == '{') return "nested flow collections are not supported";
    items->emplace_back(item);
    i = j + 1;
  }
  return {};
}

bool is_iso_date(std::string_view v) {
  if (v.size() < 10 || v[4] != '-' || v[7] != '-') return false;
  for (const size_t k : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!is_digit(v[k])) return false;
  }
  const int month = (v[5] - '0') * 10 + (v[6] - '0');
  const int day = (v[8] - '0') * 10 + (v[9] - '0');
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  return v.size() == 10 || v[10] == 'T' || v[10] == ' ';  // a timestamp keeps its date
}

// The front matter's audienceLevel as a filter value: "hp" for health
// professionals (however spelled), "patient", else none (the filter knows only these two).
std::string normalize_audience(std::string_view level) {
  std::string v;
  for (char c : trim(level)) {
    if (c == ' ' || c == '_' || c == '-') continue;
    v.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
  if (v == "hp" || v == "healthprofessional" || v == "healthprofessionals") return "hp";
  if (v == "patient" || v == "patients") return "patient";
  return {};
}

// Parses front matter + body. On failure fills *err and returns false.
bool parse_markdown(std::string_view text, Document* doc, LineError* err) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    *err = {line_of_offset(text, bad), "invalid UTF-8"};
    return false;
  }
  auto fail = [&](size_t line, std::string reason) {
    *err = {line, std::move(reason)};
    return false;
  };

  std::vector<std::pair<std::string, FrontMatterValue>> entries;
  std::string_view body = text;
  LineCursor cursor(text);
  std::string_view line;
  if (cursor.next(&line) && line.starts_with("---") && trim(line) == "---") {
    bool closed = false;
    FrontMatterValue* current = nullptr;  // the entry continuation lines belong to
    while (cursor.next(&line)) {
      const size_t ln = cursor.number();
      const std::string_view t = trim(line);
      if ((line.starts_with("---") && t == "---") || (line.starts_with("...") && t == "...")) {
        closed = true;
        break;
      }
      if (t.empty() || line.front() == '#') continue;  // blank line or comment
      const bool indented = is_hspace(line.front());
      const bool list_item = t == "-" || t.starts_with("- ");
      if (indented && current != nullptr) {
        if (!current->is_list && (!current->scalar.empty() || !list_item)) {
          // Continuation of a multi-line scalar: folded with one space.
          if (!current->scalar.empty()) current->scalar.push_back(' ');
          current->scalar.append(t);
          continue;
        }
        if (current->is_list && !list_item && !current->items.empty()) {
          current->items.back().push_back(' ');  // continuation of a list item
          current->items.back().append(t);
          continue;
        }
      }
      if (list_item) {
        if (current == nullptr) return fail(ln, "list item without a 'key:' line before it");
        if (!current->scalar.empty()) return fail(ln, "list item after a single value");
        current->is_list = true;
        current->items.emplace_back(trim(t.substr(1)));
        current->item_lines.push_back(ln);
        continue;
      }
      if (indented) return fail(ln, "unexpected indented line (nested YAML is not supported)");
      size_t k = 0;
      while (k < line.size() && is_key_char(line[k])) ++k;
      if (k == 0 || k >= line.size() || line[k] != ':' ||
          (k + 1 < line.size() && !is_hspace(line[k + 1]))) {
        return fail(ln, "expected 'key: value' or '- item', got '" +
                            std::string(t.substr(0, 60)) + "'");
      }
      std::string key(line.substr(0, k));
      for (const auto& [other, unused] : entries) {
        if (other == key) return fail(ln, "duplicate key '" + key + "'");
      }
      FrontMatterValue value;
      value.line = ln;
      const std::string_view rest = trim(line.substr(k + 1));
      if (!rest.empty() && rest.front() == '[') {
        value.is_list = true;
        if (std::string why = split_flow_list(rest, &value.items); !why.empty()) {
          return fail(ln, key + ": " + why);
        }
        value.item_lines.assign(value.items.size(), ln);
      } else {
        value.scalar.assign(rest);
      }
      const bool flow_list = value.is_list;
      entries.emplace_back(std::move(key), std::move(value));
      current = flow_list ? nullptr : &entries.back().second;  // a flow list is complete
    }
    if (!closed) return fail(1, "unterminated front matter (no closing '---')");
    body = text.substr(cursor.offset());
  }

  // Keep the fields we use, decoded and checked.
  std::string decoded, audience_level;
  for (auto& [key, value] : entries) {
    const bool want_scalar = key == "title" || key == "url" || key == "lastReviewed";
    if (value.is_list) {
      if (want_scalar) return fail(value.line, key + ": expected a single value, got a list");
      std::vector<std::string> items;
      for (size_t i = 0; i < value.items.size(); ++i) {
        if (std::string why = decode_scalar(value.items[i], &decoded); !why.empty()) {
          return fail(value.item_lines[i], key + ": " + why);
        }
        items.push_back(decoded);
      }
      if (!items.empty()) doc->metadata.push_back({key, items});
      if (key == "tags") doc->tags = std::move(items);
      continue;
    }
    if (std::string why = decode_scalar(value.scalar, &decoded); !why.empty()) {
      return fail(value.line, key + ": " + why);
    }
    if (!decoded.empty()) doc->metadata.push_back({key, {decoded}});
    if (key == "title") {
      doc->title = decoded;
    } else if (key == "url") {
      doc->url = decoded;
    } else if (key == "lastReviewed") {
      if (!decoded.empty() && !is_iso_date(decoded)) {
        return fail(value.line, "lastReviewed: expected a YYYY-MM-DD date, got '" + decoded + "'");
      }
      doc->last_reviewed = decoded.substr(0, std::min<size_t>(decoded.size(), 10));
    } else if (key == "audienceLevel") {
      audience_level = decoded;
    } else if (key == "tags" && !decoded.empty()) {
      return fail(value.line, "tags: expected a list");
    }
  }

  // Body, with CRLF line ends made LF.
  doc->body.clear();
  if (body.find('\r') == std::string_view::npos) {
    doc->body.assign(body);
  } else {
    doc->body.reserve(body.size());
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') continue;
      doc->body.push_back(body[i]);
    }
  }
  doc->format = DocFormat::kMarkdown;

  if (doc->title.empty()) {  // no title in the front matter: the first "# " heading
    LineCursor lines(doc->body);
    while (lines.next(&line)) {
      if (line.starts_with("# ")) {
        doc->title.assign(trim(line.substr(2)));
        break;
      }
    }
  }
  derive_from_url(doc->url, &doc->audience, &doc->cancer_type);
  if (doc->audience.empty()) doc->audience = normalize_audience(audience_level);
  return true;
}

std::string located(std::string_view file, const LineError& e) {
  return std::string(file) + ":" + std::to_string(e.line) + ": " + e.reason;
}

// Reads a whole file. kNotFound if it does not exist, kIoError otherwise.
Status read_file(const fs::path& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int e = errno;
    if (e == ENOENT) return Status::not_found(path.string() + ": no such file");
    return Status::io_error(path.string() + ": " + std::strerror(e));
  }
  out->clear();
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::io_error(path.string() + ": read error");
  return Status::ok();
}
}  // namespace

void derive_from_url(std::string_view url, std::string* audience, std::string* cancer_type) {
  audience->clear();
  cancer_type->clear();
  std::string_view path = url;
  if (const size_t scheme = path.find("://"); scheme != std::string_view::npos) {
    const size_t slash = path.find('/', scheme + 3);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  path = path.substr(0, std::min(path.find('?'), path.find('#')));
  size_t index = 0;
  std::string_view first;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(pos, end - pos);
    pos = end + 1;
    if (seg.empty()) continue;
    if (index == 0) first = seg;
    if (index == 1 && first == "types") cancer_type->assign(seg);
    if (audience->empty() && (seg == "hp" || seg == "patient")) audience->assign(seg);
    ++index;
  }
}

Status parse_markdown_document(std::string_view text, Document* doc) {
  LineError err;
  if (!parse_markdown(text, doc, &err)) {
    return Status::corrupt("line " + std::to_string(err.line) + ": " + err.reason);
  }
  return Status::ok();
}

Result<std::vector<Document>> read_markdown_tree(const fs::path& root, const std::string& corpus,
                                                 const ReadOptions& options, ReadReport* report) {
  std::error_code ec;
  if (!fs::exists(root, ec)) return Status::not_found(root.string() + ": no such directory");
  if (!fs::is_directory(root, ec)) return Status::invalid_argument(root.string() + ": not a directory");

  std::vector<std::string> rel_paths;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Status::io_error(root.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::io_error(root.string() + ": " + ec.message());
    if (it->is_regular_file(ec) && it->path().extension() == ".md") {
      rel_paths.push_back(it->path().lexically_relative(root).generic_string());
    }
  }
  if (ec) return Status::io_error(root.string() + ": " + ec.message());
  if (rel_paths.empty()) return Status::not_found(root.string() + ": no *.md files");
  std::sort(rel_paths.begin(), rel_paths.end());

  const size_t n = rel_paths.size();
  std::vector<Document> docs(n);
  std::vector<Status> errors(n);
  std::vector<char> malformed(n, 0);  // errors[i] is a parse error (skippable)
  tbb::parallel_for(tbb::blocked_range<size_t>(0, n), [&](const tbb::blocked_range<size_t>& r) {
    std::string text;
    for (size_t i = r.begin(); i != r.end(); ++i) {
      const std::string& rel = rel_paths[i];
      if (Status st = read_file(root / rel, &text); !st.is_ok()) {
        errors[i] = Status::io_error(st.message());
        continue;
      }
      Document& doc = docs[i];
      LineError err;
      if (!parse_markdown(text, &doc, &err)) {
        errors[i] = Status::corrupt(located(rel, err));
        malformed[i] = 1;
        continue;
      }
      doc.doc_id = rel;
      doc.corpus = corpus;
      if (doc.title.empty()) doc.title = fs::path(rel).stem().string();
    }
  });

  std::vector<Document> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].is_ok()) {
      if (!malformed[i] || !options.skip_malformed) return errors[i];
      record_skip(report, errors[i].message());
      continue;
    }
    out.push_back(std::move(docs[i]));
  }
  if (report != nullptr) report->documents = out.size();
  return out;
}

}  // namespace medsearch::io
