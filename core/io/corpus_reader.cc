// corpus_reader.cc: BEIR JSONL (read_beir_jsonl), and read_corpus, which
// picks the reader for a path. Markdown trees with YAML front matter are in
// markdown_reader.cc.
#include <medsearch/corpus.h>

#include "core/io/corpus_reader_impl.h"

#include <simdjson.h>

#include <cstdint>
#include <system_error>
#include <unordered_set>
#include <utility>

namespace medsearch::io {
namespace fs = std::filesystem;
using namespace internal;

namespace {

// The corpus name for `path` when none is given.
std::string default_corpus_name(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) p = path.lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing separator
  if (p.filename() == "corpus.jsonl") return p.parent_path().filename().string();
  if (p.extension() == ".jsonl") return p.stem().string();
  return p.filename().string();
}

}  // namespace

Result<std::vector<Document>> read_beir_jsonl(const fs::path& file, const std::string& corpus,
                                              const ReadOptions& options, ReadReport* report) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return Status::not_found(file.string() + ": no such file");
  simdjson::padded_string json;
  if (const auto error = simdjson::padded_string::load(file.string()).get(json)) {
    return Status::io_error(file.string() + ": " + simdjson::error_message(error));
  }
  const std::string name = file.string();
  const std::string_view text(json.data(), json.size());

  std::vector<Document> out;
  std::unordered_set<std::string> seen;
  simdjson::dom::parser parser;
  LineCursor cursor(text);
  std::string_view line;
  // Each line is parsed in place: the bytes after it (the rest of the file,
  // then padded_string's padding) serve as simdjson's readable padding.
  while (cursor.next(&line)) {
    if (trim(line).empty()) continue;
    const size_t ln = cursor.number();
    std::string why;
    Document doc;
    do {
      simdjson::dom::element root;
      if (const auto error = parser.parse(line.data(), line.size(), false).get(root)) {
        why = std::string("malformed JSON (") + simdjson::error_message(error) + ")";
        break;
      }
      simdjson::dom::object obj;
      if (root.get_object().get(obj)) {
        why = "expected a JSON object";
        break;
      }
      simdjson::dom::element id;
      if (obj["_id"].get(id)) {
        why = "missing \"_id\"";
        break;
      }
      std::string_view sv;
      int64_t i64;
      uint64_t u64;
      if (!id.get_string().get(sv)) {
        doc.doc_id.assign(sv);
      } else if (!id.get_int64().get(i64)) {
        doc.doc_id = std::to_string(i64);
      } else if (!id.get_uint64().get(u64)) {
        doc.doc_id = std::to_string(u64);
      } else {
        why = "\"_id\" must be a string or an integer";
        break;
      }
      if (doc.doc_id.empty()) {
        why = "empty \"_id\"";
        break;
      }
      simdjson::dom::element field;
      if (obj["text"].get(field)) {
        why = "missing \"text\"";
        break;
      }
      if (field.get_string().get(sv)) {
        why = "\"text\" must be a string";
        break;
      }
      doc.body.assign(sv);
      if (!obj["title"].get(field) && !field.is_null()) {  // absent or null: no title
        if (field.get_string().get(sv)) {
          why = "\"title\" must be a string";
          break;
        }
        doc.title.assign(sv);
      }
      // BEIR's "metadata" (some exports say "meta"): kept as JSON text, and
      // its scalar and list-of-scalar members as filterable fields.
      simdjson::dom::element meta_field, metadata_field;
      const bool has_meta = !obj["meta"].get(meta_field) && !meta_field.is_null();
      const bool has_metadata = !obj["metadata"].get(metadata_field) && !metadata_field.is_null();
      if (has_meta && has_metadata) {
        why = "both \"meta\" and \"metadata\"";
        break;
      }
      if (has_meta || has_metadata) {
        field = has_meta ? meta_field : metadata_field;
        const char* name = has_meta ? "\"meta\"" : "\"metadata\"";
        simdjson::dom::object members;
        if (field.get(members)) {
          why = std::string(name) + " must be an object";
          break;
        }
        doc.meta_json = simdjson::minify(field);
        for (auto [key, value] : members) {
          MetaField f{std::string(key), {}};
          auto add = [&f](simdjson::dom::element v) {
            std::string_view s;
            if (!v.get(s)) {
              f.values.emplace_back(s);
            } else if (v.is_number() || v.is_bool()) {
              f.values.push_back(simdjson::minify(v));
            }  // null, objects and arrays in arrays: not filterable values
          };
          simdjson::dom::array items;
          if (!value.get(items)) {
            for (auto item : items) add(item);
          } else {
            add(value);
          }
          if (!f.values.empty()) doc.metadata.push_back(std::move(f));
        }
      }
    } while (false);
    if (why.empty() && !seen.insert(doc.doc_id).second) {
      why = "duplicate \"_id\" '" + doc.doc_id + "'";
    }
    if (!why.empty()) {
      std::string message = name + ":" + std::to_string(ln) + ": " + why;
      if (!options.skip_malformed) return Status::corrupt(std::move(message));
      record_skip(report, std::move(message));
      continue;
    }
    doc.corpus = corpus;
    doc.format = DocFormat::kPlain;
    out.push_back(std::move(doc));
  }
  if (report != nullptr) report->documents = out.size();
  return out;
}

Result<std::vector<Document>> read_corpus(const fs::path& path, std::string corpus,
                                          const ReadOptions& options, ReadReport* report) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) return Status::not_found(path.string() + ": no such file or directory");
  if (corpus.empty()) corpus = default_corpus_name(path);
  if (fs::is_directory(st)) {
    const fs::path jsonl = path / "corpus.jsonl";
    if (fs::is_regular_file(jsonl, ec)) return read_beir_jsonl(jsonl, corpus, options, report);
    return read_markdown_tree(path, corpus, options, report);
  }
  if (path.extension() == ".jsonl") return read_beir_jsonl(path, corpus, options, report);
  return Status::invalid_argument(path.string() +
                                  ": not a corpus (expected a directory or a *.jsonl file)");
}

}  // namespace medsearch::io
