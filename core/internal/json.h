// json.h: the one JSON string escaper and a small JSON writer (manifests, CLI output).
#pragma once

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace medsearch::internal {

// `s` as the inside of a JSON string literal (no surrounding quotes).
inline std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace medsearch::internal

namespace medsearch::internal {

// A small JSON writer for the files medsearch writes (index manifests):
// objects and arrays nest, one member or element per line, two spaces of
// indentation. A float is written in the shortest form that reads back as
// the same float ("0.9", not "0.899999976" or "0.900000").
//
//   JsonWriter w;
//   w.begin_object().key("version").value(2).key("corpora").begin_array().value("nci-pdq").end_array();
//   std::string text = w.end_object().str();
class JsonWriter {
 public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  // The next value's member name (inside an object only).
  JsonWriter& key(std::string_view name) {
    separate();
    out_ += '"';
    out_ += json_escape(name);
    out_ += "\": ";
    keyed_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) { return raw("\"" + json_escape(s) + "\""); }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) { return raw(b ? "true" : "false"); }
  JsonWriter& value(uint64_t n) { return raw(std::to_string(n)); }
  JsonWriter& value(uint32_t n) { return raw(std::to_string(n)); }
  JsonWriter& value(int n) { return raw(std::to_string(n)); }
  JsonWriter& value(float f) {
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof(buf), f).ptr;  // shortest form that reads back as f
    return raw(std::string_view(buf, static_cast<size_t>(end - buf)));
  }
  // The document, ending in a newline.
  std::string str() const { return out_ + "\n"; }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    counts_.push_back(0);
    return *this;
  }
  JsonWriter& close(char c) {
    const bool empty = counts_.back() == 0;
    counts_.pop_back();
    if (!empty) newline();
    out_ += c;
    return *this;
  }
  JsonWriter& raw(std::string_view text) {
    separate();
    out_ += text;
    return *this;
  }
  // Before a member name or a value: the comma and line break, unless the
  // value follows its member name.
  void separate() {
    if (keyed_) {
      keyed_ = false;
      return;
    }
    if (counts_.empty()) return;
    if (counts_.back()++ > 0) out_ += ',';
    newline();
  }
  void newline() {
    out_ += '\n';
    out_.append(2 * counts_.size(), ' ');
  }
  std::string out_;
  std::vector<size_t> counts_;  // members or elements written, per open object or array
  bool keyed_ = false;
};

}  // namespace medsearch::internal
