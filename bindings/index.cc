// Python surface of core/index/index.h: Index and Hit.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings/status.h"
#include "core/index/index.h"
#include "core/io/corpus_reader.h"

namespace py = pybind11;

namespace medsearch::bindings {
namespace {

std::vector<std::string> as_string_list(const py::handle& value, const char* key) {
  if (py::isinstance<py::str>(value)) return {value.cast<std::string>()};
  try {
    return value.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw py::value_error(std::string("filter '") + key + "' takes a string or a list of strings");
  }
}

SearchOptions make_options(uint32_t k, const std::optional<py::dict>& filters, const std::string& level) {
  SearchOptions o;
  if (k < 1) throw py::value_error("k must be at least 1");
  o.k = k;
  if (level == "passage") {
    o.level = ResultLevel::kPassage;
  } else if (level == "doc" || level == "document") {
    o.level = ResultLevel::kDocument;
  } else {
    throw py::value_error("level must be 'passage' or 'doc', got '" + level + "'");
  }
  if (filters) {
    for (auto [key_obj, value] : *filters) {
      const std::string key = py::str(key_obj);
      if (key == "audience") {
        o.filters.audience = as_string_list(value, "audience");
      } else if (key == "cancer_type") {
        o.filters.cancer_type = as_string_list(value, "cancer_type");
      } else if (key == "corpus") {
        o.filters.corpus = as_string_list(value, "corpus");
      } else if (key == "reviewed_after") {
        if (!py::isinstance<py::str>(value)) throw py::value_error("reviewed_after takes a 'YYYY-MM-DD' string");
        o.filters.reviewed_after = value.cast<std::string>();
      } else {
        throw py::value_error("unknown filter '" + key + "' (use audience, cancer_type, corpus, reviewed_after)");
      }
    }
  }
  return o;
}

// corpora: "path", or ("name", "path"), or a list of either, or {name: path}.
std::vector<std::pair<std::string, std::string>> corpus_specs(const py::object& corpora) {
  std::vector<std::pair<std::string, std::string>> specs;
  auto one = [&](const py::handle& item) {
    if (py::isinstance<py::str>(item) || py::hasattr(item, "__fspath__")) {
      specs.emplace_back("", py::str(py::module_::import("os").attr("fspath")(item)));
    } else if (py::isinstance<py::tuple>(item) && py::len(item) == 2) {
      auto t = item.cast<py::tuple>();
      specs.emplace_back(py::str(t[0]), py::str(py::module_::import("os").attr("fspath")(t[1])));
    } else {
      throw py::value_error("each corpus is a path or a (name, path) pair");
    }
  };
  if (py::isinstance<py::dict>(corpora)) {
    for (auto [name, path] : corpora.cast<py::dict>()) one(py::make_tuple(name, path));
  } else if (py::isinstance<py::str>(corpora) || py::hasattr(corpora, "__fspath__")) {
    one(corpora);
  } else {
    for (auto item : corpora) one(item);
  }
  if (specs.empty()) throw py::value_error("no corpora given");
  return specs;
}

}  // namespace

void init_index(py::module_& m) {
  py::class_<SearchHit>(m, "Hit", "One ranked passage with its provenance.")
      .def_readonly("score", &SearchHit::score, "Ranking score (BM25: body + weighted heading)")
      .def_readonly("body_score", &SearchHit::body_score, "BM25 of the passage body")
      .def_readonly("heading_score", &SearchHit::heading_score, "BM25 of the title/heading path, before its weight")
      .def_readonly("passage_id", &SearchHit::passage_id)
      .def_readonly("doc_id", &SearchHit::doc_id)
      .def_readonly("corpus", &SearchHit::corpus)
      .def_readonly("title", &SearchHit::title)
      .def_readonly("url", &SearchHit::url)
      .def_readonly("heading_path", &SearchHit::heading_path)
      .def_property_readonly("span", [](const SearchHit& h) { return py::make_tuple(h.begin, h.end); },
                             "(begin, end) byte offsets into the document's clean text")
      .def_readonly("text", &SearchHit::text)
      .def_readonly("audience", &SearchHit::audience)
      .def_readonly("cancer_type", &SearchHit::cancer_type)
      .def_readonly("last_reviewed", &SearchHit::last_reviewed)
      .def_readonly("tags", &SearchHit::tags)
      .def_readonly("meta_json", &SearchHit::meta_json)
      .def("__repr__", [](const SearchHit& h) {
        return "<Hit " + h.passage_id + " score=" + std::to_string(h.score) + ">";
      });

  py::class_<Index>(m, "Index", "A passage index over one or more corpora (BM25).")
      .def_static(
          "build",
          [](const py::object& corpora, bool skip_malformed, uint32_t max_tokens, float k1, float b,
             float heading_weight, const std::optional<py::function>& progress) {
            const auto specs = corpus_specs(corpora);
            BuildOptions opt;
            opt.markdown_chunker.max_tokens = max_tokens;
            opt.bm25 = {k1, b, heading_weight};
            if (max_tokens < 16) throw py::value_error("max_tokens must be at least 16");
            if (!(k1 >= 0) || !(b >= 0 && b <= 1)) throw py::value_error("need k1 >= 0 and 0 <= b <= 1");
            ProgressFn report;
            if (progress) {
              report = [&progress](std::string_view stage, size_t done, size_t total) {
                py::gil_scoped_acquire gil;
                (*progress)(std::string(stage), done, total);
              };
            }
            Result<std::unique_ptr<Index>> index = Status::internal("not built");
            {
              py::gil_scoped_release release;
              std::vector<io::Document> docs;
              io::ReadOptions ropt{.skip_malformed = skip_malformed};
              Status st;
              for (const auto& [name, path] : specs) {
                auto read = io::read_corpus(path, name, ropt, nullptr);
                if (!read) {
                  st = read.status();
                  break;
                }
                for (auto& d : *read) docs.push_back(std::move(d));
              }
              index = st.is_ok() ? Index::build(std::move(docs), opt, report) : Result<std::unique_ptr<Index>>(st);
            }
            return unwrap(std::move(index));
          },
          py::arg("corpora"), py::kw_only(), py::arg("skip_malformed") = false, py::arg("max_tokens") = 220,
          py::arg("k1") = 0.9f, py::arg("b") = 0.4f, py::arg("heading_weight") = 0.4f,
          py::arg("progress") = py::none(),
          "Read, chunk and index corpora: a path, a (name, path) pair, a list of these, or {name: path}.\n"
          "A path is a Markdown tree, a BEIR corpus.jsonl or a folder holding one.\n"
          "progress(stage, done, total) is called during the build.")
      .def_static(
          "load",
          [](const std::filesystem::path& path) {
            Result<std::unique_ptr<Index>> index = Status::internal("not loaded");
            {
              py::gil_scoped_release release;
              index = Index::load(path);
            }
            return unwrap(std::move(index));
          },
          py::arg("path"), "Load an index saved with save(); raises on missing or corrupt files.")
      .def(
          "save",
          [](const Index& self, const std::filesystem::path& path) {
            Status st;
            {
              py::gil_scoped_release release;
              st = self.save(path);
            }
            check(st);
          },
          py::arg("path"), "Save to a directory, atomically: a failed save leaves the previous index intact.")
      .def(
          "search",
          [](const Index& self, const std::string& query, uint32_t k, const std::optional<py::dict>& filters,
             const std::string& level) {
            const SearchOptions opt = make_options(k, filters, level);
            Result<std::vector<SearchHit>> hits = Status::internal("not searched");
            {
              py::gil_scoped_release release;
              hits = self.search(query, opt);
            }
            return unwrap(std::move(hits));
          },
          py::arg("query"), py::arg("k") = 10, py::arg("filters") = py::none(), py::arg("level") = "passage",
          "Top-k hits for a query, best first. filters: {'audience': 'hp'|'patient', 'cancer_type': ...,\n"
          "'corpus': ..., 'reviewed_after': 'YYYY-MM-DD'} (strings or lists). level: 'passage' or 'doc'.")
      .def(
          "search_batch",
          [](const Index& self, const std::vector<std::string>& queries, uint32_t k,
             const std::optional<py::dict>& filters, const std::string& level) {
            const SearchOptions opt = make_options(k, filters, level);
            Result<std::vector<std::vector<SearchHit>>> hits = Status::internal("not searched");
            {
              py::gil_scoped_release release;
              hits = self.search_batch(queries, opt);
            }
            return unwrap(std::move(hits));
          },
          py::arg("queries"), py::arg("k") = 10, py::arg("filters") = py::none(), py::arg("level") = "passage",
          "search() for many queries, in parallel; results in query order.")
      .def("passage", [](const Index& self, uint32_t p) {
            if (p >= self.num_passages()) throw py::index_error("passage number out of range");
            return self.passage(p);
          }, py::arg("number"), "The passage with this internal number (0 <= number < len(index)).")
      .def("clean_text", [](const Index& self, const std::string& doc_id) {
            for (uint32_t d = 0; d < self.num_documents(); ++d) {
              if (self.doc_id(d) == doc_id) return self.clean_text(d);
            }
            throw py::key_error("unknown doc_id '" + doc_id + "'");
          }, py::arg("doc_id"), "The cleaned text that passage spans point into.")
      .def("__len__", &Index::num_passages)
      .def_property_readonly("num_documents", &Index::num_documents)
      .def("stats", [](const Index& self) {
        const IndexStats s = self.stats();
        py::dict d;
        d["documents"] = s.documents;
        d["passages"] = s.passages;
        d["terms"] = s.terms;
        d["memory_bytes"] = s.memory_bytes;
        d["corpora"] = s.corpora;
        return d;
      });
}

}  // namespace medsearch::bindings
