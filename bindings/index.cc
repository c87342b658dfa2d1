// Python surface of core/index/index.h: Index and Hit.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include <medsearch/corpus.h>
#include <medsearch/encoder.h>
#include <medsearch/index.h>
#include <medsearch/shard.h>

#include "bindings/search.h"
#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {

std::shared_ptr<const embed::Embedder> embedder_of(const py::handle& obj);  // bindings/encoder.cc

namespace {

std::vector<PyHit> wrap(SearchResponse response, std::shared_ptr<const QueryInfo> query) {
  std::vector<PyHit> out;
  out.reserve(response.hits.size());
  for (const auto& h : response.hits) {
    // The reranker lives as long as the snapshot (an aliasing pointer).
    std::shared_ptr<const rank::Reranker> reranker(response.snapshot, &response.snapshot->reranker());
    out.push_back(PyHit{response.snapshot, h, query, std::move(reranker), nullptr});
  }
  return out;
}

py::object feature_dict(const rank::FeatureVector& values) {
  py::dict d;
  for (uint32_t i = 0; i < values.size(); ++i) d[py::str(std::string(rank::feature_names()[i]))] = values[i];
  return d;
}

// The encoder argument: an Encoder, None, or "auto" (the encoder of the model
// the index's vectors were made with, when it is installed).
void attach(Index& index, const py::object& encoder) {
  if (encoder.is_none()) return;
  if (py::isinstance<py::str>(encoder)) {
    if (encoder.cast<std::string>() != "auto") throw py::value_error("encoder must be an Encoder, None or 'auto'");
    if (!index.has_vectors()) return;
    auto loaded = embed::encoder_for(index.stats().model_id);
    if (!loaded) return;  // searches that need the encoder say so
    check(index.attach_embedder(std::shared_ptr<const embed::Embedder>(std::move(loaded).value())));
    return;
  }
  check(index.attach_embedder(embedder_of(encoder)));
}

std::vector<std::string> as_string_list(const py::handle& value, const char* key) {
  // str -> std::string raises UnicodeEncodeError (a ValueError) on lone surrogates.
  if (py::isinstance<py::str>(value)) return {std::string(py::reinterpret_borrow<py::str>(value))};
  try {
    return value.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw py::value_error(std::string("filter '") + key + "' takes a string or a list of strings");
  }
}

// A metadata value as the text the core compares: a str as it is, a number
// as Python writes it (2011, 1.5), a bool as "true"/"false".
std::string metadata_text(const py::handle& v, const std::string& key) {
  if (py::isinstance<py::str>(v)) return std::string(py::reinterpret_borrow<py::str>(v));
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>() ? "true" : "false";
  if (py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v)) return std::string(py::str(v));
  throw py::value_error("metadata '" + key + "' takes strings, numbers or lists of them");
}

std::vector<std::string> metadata_texts(const py::handle& v, const std::string& key) {
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    std::vector<std::string> out;
    for (auto item : v) out.push_back(metadata_text(item, key));
    return out;
  }
  return {metadata_text(v, key)};
}

// A Python mapping -> io::Document (Index.add).
// Document fields that take a string, by their Python key.
constexpr std::pair<std::string_view, std::string io::Document::*> kTextFields[] = {
    {"doc_id", &io::Document::doc_id},           {"corpus", &io::Document::corpus},
    {"title", &io::Document::title},             {"body", &io::Document::body},
    {"url", &io::Document::url},                 {"last_reviewed", &io::Document::last_reviewed},
    {"audience", &io::Document::audience},       {"cancer_type", &io::Document::cancer_type},
    {"meta_json", &io::Document::meta_json},
};

io::Document python_document(const py::handle& item) {
  if (!py::isinstance<py::dict>(item)) throw py::value_error("each document is a dict (doc_id, body, ...)");
  io::Document d;
  d.format = io::DocFormat::kPlain;
  for (auto [key_obj, value] : item.cast<py::dict>()) {
    const std::string key = py::str(key_obj);
    auto text = [&]() -> std::string {
      if (!py::isinstance<py::str>(value)) throw py::value_error("document field '" + key + "' takes a string");
      return std::string(py::reinterpret_borrow<py::str>(value));
    };
    const auto field = std::find_if(std::begin(kTextFields), std::end(kTextFields),
                                    [&](const auto& f) { return f.first == key; });
    if (field != std::end(kTextFields)) {
      d.*(field->second) = text();
    } else if (key == "tags") {
      d.tags = as_string_list(value, "tags");
    } else if (key == "metadata") {
      if (!py::isinstance<py::dict>(value)) throw py::value_error("metadata takes a dict {key: value or [values]}");
      for (auto [k, v] : value.cast<py::dict>()) {
        const std::string name = py::str(k);
        d.metadata.push_back({name, metadata_texts(v, name)});
      }
    } else if (key == "format") {
      const std::string f = text();
      if (f == "markdown") {
        d.format = io::DocFormat::kMarkdown;
      } else if (f != "plain") {
        throw py::value_error("format must be 'markdown' or 'plain', got '" + f + "'");
      }
    } else {
      throw py::value_error("unknown document field '" + key +
                            "' (use doc_id, corpus, title, body, format, url, last_reviewed, audience, "
                            "cancer_type, tags, meta_json, metadata)");
    }
  }
  return d;
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

// A medsearch.Results (a list of hits with .coverage and .mode; python/medsearch/_results.py).
py::object results(std::vector<PyHit> hits, float coverage, const char* mode) {
  // Looked up per call (a dict lookup): a cached handle would outlive the interpreter's teardown.
  py::object cls = py::module_::import("medsearch._results").attr("Results");
  return cls(py::cast(std::move(hits)), coverage, mode);
}

// k is taken as int64 so that k <= 0 is a ValueError (not a TypeError) and a huge k is
// clamped to the passage count: no search returns more, and the core never sees a k whose
// multiples (doc level: 8k, rerank depth: 3k) overflow uint32.
SearchOptions make_options(int64_t k, uint32_t num_passages, const std::optional<py::dict>& filters,
                           const std::string& level) {
  SearchOptions o;
  if (k < 1) throw py::value_error("k must be at least 1, got " + std::to_string(k));
  o.k = static_cast<uint32_t>(std::clamp<int64_t>(k, 1, std::max<int64_t>(1, num_passages)));
  o.level = unwrap(parse_level(level));
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
        o.filters.reviewed_after = std::string(py::reinterpret_borrow<py::str>(value));
      } else if (py::isinstance<py::dict>(value)) {  // a range: {"min": 2010, "max": 2015}
        MetadataFilter m{key, {}, {}, {}};
        for (auto [bound, v] : value.cast<py::dict>()) {
          const std::string b = py::str(bound);
          if (b != "min" && b != "max") throw py::value_error("filter '" + key + "': a range takes 'min' and 'max'");
          (b == "min" ? m.min : m.max) = metadata_text(v, key);
        }
        o.filters.metadata.push_back(std::move(m));
      } else {  // any metadata key: a value or a list of values
        o.filters.metadata.push_back(MetadataFilter{key, metadata_texts(value, key), {}, {}});
      }
    }
  }
  return o;
}

// Index.build() and, for one shard of a collection (shard = {i, n}: the
// documents with shard_of(doc_id, n) == i), distributed builds: the index
// and each document's position in the corpora as read.
std::pair<std::shared_ptr<Index>, std::vector<uint64_t>> build_index(
    const py::object& corpora, bool skip_malformed, uint32_t max_tokens, float k1, float b, float heading_weight,
    const std::optional<py::function>& progress, const py::object& encoder, std::optional<std::pair<uint32_t, uint32_t>> shard,
    uint32_t exact_below, uint32_t threads) {
  const auto specs = corpus_specs(corpora);
  std::shared_ptr<const embed::Embedder> embedder;
  if (!encoder.is_none()) embedder = embedder_of(encoder);
  BuildOptions opt;
  opt.markdown_chunker.max_tokens = max_tokens;
  opt.bm25 = {k1, b, heading_weight};
  opt.exact_below = exact_below;
  check(validate(opt));  // before reading the corpora
  if (shard && shard->first >= shard->second) throw py::value_error("shard must be in [0, shards)");
  ProgressFn report;
  if (progress) {
    report = [&progress](std::string_view stage, size_t done, size_t total) {
      py::gil_scoped_acquire gil;
      (*progress)(std::string(stage), done, total);
    };
  }
  Result<std::unique_ptr<Index>> index = Status::internal("not built");
  std::vector<uint64_t> positions;
  {
    py::gil_scoped_release release;
    std::vector<io::Document> docs;
    io::ReadOptions ropt{.skip_malformed = skip_malformed};
    Status st;
    uint64_t position = 0;
    for (const auto& [name, path] : specs) {
      auto read = io::read_corpus(path, name, ropt, nullptr);
      if (!read) {
        st = read.status();
        break;
      }
      for (auto& d : *read) {
        const uint64_t at = position++;
        if (shard && shard_of(d.doc_id, shard->second) != shard->first) continue;
        positions.push_back(at);
        docs.push_back(std::move(d));
      }
    }
    if (st.is_ok() && shard && docs.empty()) {
      st = Status::invalid_argument("shard " + std::to_string(shard->first) + " of " + std::to_string(shard->second) +
                                    " would hold no documents: use fewer shards");
    }
    if (!st.is_ok()) {
      index = st;
    } else if (threads) {  // a Ray task's share of the machine
      tbb::task_arena arena(static_cast<int>(threads));
      arena.execute([&] { index = Index::build(std::move(docs), opt, report, embedder); });
    } else {
      index = Index::build(std::move(docs), opt, report, embedder);
    }
  }
  return {std::shared_ptr<Index>(unwrap(std::move(index))), std::move(positions)};
}

void init_index(py::module_& m) {
  py::class_<PipelineArgs>(m, "Pipeline",
                           "Options of the hybrid and rerank modes: Index.search(..., pipeline=Pipeline(mmr=0.8)).")
      .def(py::init([](const std::string& fusion, std::optional<float> bm25_weight, uint32_t candidates,
                       uint32_t rerank_depth, uint32_t max_per_doc, float mmr) {
             PipelineArgs a{fusion, bm25_weight, candidates, rerank_depth, max_per_doc, mmr};
             SearchOptions probe;
             a.apply(&probe);  // the fusion name and candidates
             check(validate(probe));  // now, not at the first search
             return a;
           }),
           py::kw_only(), py::arg("fusion") = "convex", py::arg("bm25_weight") = py::none(),
           py::arg("candidates") = SearchOptions{}.candidates, py::arg("rerank_depth") = SearchOptions{}.rerank_depth,
           py::arg("max_per_doc") = SearchOptions{}.max_per_doc, py::arg("mmr") = SearchOptions{}.mmr,
           "fusion: 'convex' (min-max normalised scores, bm25_weight for BM25, default 0.5) or 'rrf';\n"
           "candidates per retriever; rerank_depth: fused candidates the reranker rescores; max_per_doc:\n"
           "passage level, at most this many passages of a document (0: any); mmr: diversity, 1 = by score\n"
           "only, lower pushes near-duplicate passages down.")
      .def_readonly("fusion", &PipelineArgs::fusion)
      .def_readonly("bm25_weight", &PipelineArgs::bm25_weight)
      .def_readonly("candidates", &PipelineArgs::candidates)
      .def_readonly("rerank_depth", &PipelineArgs::rerank_depth)
      .def_readonly("max_per_doc", &PipelineArgs::max_per_doc)
      .def_readonly("mmr", &PipelineArgs::mmr);
  m.def("feature_names", [] {
    std::vector<std::string> names;
    for (auto n : rank::feature_names()) names.emplace_back(n);
    return names;
  }, "Names of the reranker's features, in the order Index.candidate_pool() returns them.");
  // Hits hold their index and materialise text and metadata on first access,
  // so a search costs no string copies the caller does not read.
  py::class_<PyHit>(m, "Hit", "One ranked passage with its provenance (text and metadata load on first access).")
      .def_property_readonly("score", [](const PyHit& h) { return h.hit.score; },
                             "Ranking score: BM25 (body + weighted heading), cosine (dense) or fused (hybrid)")
      .def_property_readonly("body_score", [](const PyHit& h) { return h.parts().body_score; }, "BM25 of the passage body")
      .def_property_readonly("heading_score", [](const PyHit& h) { return h.parts().heading_score; },
                             "BM25 of the title/heading path, before its weight")
      .def_property_readonly("dense_score", [](const PyHit& h) { return h.parts().dense_score; },
                             "Cosine of query and passage vectors (0 without vectors)")
      .def_property_readonly("number", [](const PyHit& h) { return h.hit.passage; },
                             "Passage number in the index generation the hit was found in")
      .def_property_readonly(
          "features",
          [](const PyHit& h) -> py::object { return h.hit.has_features ? feature_dict(h.hit.features) : py::none(); },
          "Hybrid/rerank modes: the reranker's features of this passage (name -> value), else None")
      .def_property_readonly(
          "contributions",
          [](const PyHit& h) -> py::object {
            if (!h.hit.has_features || !h.query || !h.query->reranked) return py::none();
            return feature_dict(h.reranker->contributions(h.hit.features));
          },
          "Rerank mode: each feature's part of the score (name -> contribution); they sum to\n"
          "score - Index.reranker_base. None in other modes.")
      .def_property_readonly("passage_id", [](const PyHit& h) { return h.full().passage_id; })
      .def_property_readonly("doc_id", [](const PyHit& h) { return h.full().doc_id; })
      .def_property_readonly("corpus", [](const PyHit& h) { return h.full().corpus; })
      .def_property_readonly("title", [](const PyHit& h) { return h.full().title; })
      .def_property_readonly("url", [](const PyHit& h) { return h.full().url; })
      .def_property_readonly("heading_path", [](const PyHit& h) { return h.full().heading_path; })
      .def_property_readonly("span", [](const PyHit& h) { return py::make_tuple(h.full().begin, h.full().end); },
                             "(begin, end) byte offsets into the document's clean text")
      .def_property_readonly("text", [](const PyHit& h) { return h.full().text; })
      .def_property_readonly("audience", [](const PyHit& h) { return h.full().audience; })
      .def_property_readonly("cancer_type", [](const PyHit& h) { return h.full().cancer_type; })
      .def_property_readonly("last_reviewed", [](const PyHit& h) { return h.full().last_reviewed; })
      .def_property_readonly("tags", [](const PyHit& h) { return h.full().tags; })
      .def_property_readonly("meta_json", [](const PyHit& h) { return h.full().meta_json; })
      .def_property_readonly("metadata", [](const PyHit& h) {
        py::dict d;
        for (const auto& f : h.full().metadata) d[py::str(f.key)] = f.values;
        return d;
      }, "The document's metadata fields (front matter, JSONL metadata): {key: [values]}")
      .def("__repr__", [](const PyHit& h) {
        return "<Hit " + h.full().passage_id + " score=" + std::to_string(h.hit.score) + ">";
      });

  py::class_<Index, std::shared_ptr<Index>>(m, "Index", "A passage index over one or more corpora (BM25, dense, hybrid).")
      .def_static(
          "build",
          [](const py::object& corpora, bool skip_malformed, uint32_t max_tokens, float k1, float b,
             float heading_weight, const std::optional<py::function>& progress, const py::object& encoder,
             uint32_t exact_below) {
            return build_index(corpora, skip_malformed, max_tokens, k1, b, heading_weight, progress, encoder, {},
                               exact_below, 0).first;
          },
          py::arg("corpora"), py::kw_only(), py::arg("skip_malformed") = false, py::arg("max_tokens") = 220,
          py::arg("k1") = 0.9f, py::arg("b") = 0.4f, py::arg("heading_weight") = 0.4f,
          py::arg("progress") = py::none(), py::arg("encoder") = py::none(),
          py::arg("exact_below") = BuildOptions{}.exact_below,
          "Read, chunk and index corpora: a path, a (name, path) pair, a list of these, or {name: path}.\n"
          "A path is a Markdown tree, a BEIR corpus.jsonl or a folder holding one.\n"
          "progress(stage, done, total) is called during the build. With an Encoder, passages are also\n"
          "embedded and a dense index is built (search modes 'dense' and 'hybrid'): exact (flat) below\n"
          "exact_below passages, else HNSW.")
      .def_static(
          "load",
          [](const std::filesystem::path& path, const py::object& encoder) {
            Result<std::unique_ptr<Index>> index = Status::internal("not loaded");
            {
              py::gil_scoped_release release;
              index = Index::load(path);
            }
            // Load takes nothing but a path: an invalid value comes from the files (e.g. NaN in a
            // checksum-valid vectors.bin rejected by the dense index build), so it is corruption.
            if (!index && index.status().code() == StatusCode::kInvalidArgument) {
              raise(Status::corrupt(path.string() + ": " + index.status().message()));
            }
            std::shared_ptr<Index> loaded = unwrap(std::move(index));
            attach(*loaded, encoder);
            return loaded;
          },
          py::arg("path"), py::arg("encoder") = "auto",
          "Load an index saved with save(); raises on missing or corrupt files. encoder: an Encoder for\n"
          "query texts, None, or 'auto' (the installed default model, when the index holds its vectors).")
      .def("attach_encoder", [](Index& self, const py::object& encoder) { attach(self, encoder); },
           py::arg("encoder"), "Embed query texts with this Encoder (its model must match the index's vectors).")
      .def(
          "attach_vectors",
          [](Index& self, py::array_t<float, py::array::c_style | py::array::forcecast> vectors,
             const std::string& model_id) {
            if (vectors.ndim() != 2) throw py::value_error("vectors must be a 2-d array (passages, dim)");
            if (static_cast<size_t>(vectors.shape(0)) != self.num_passages()) {
              throw py::value_error("vectors has " + std::to_string(vectors.shape(0)) + " rows, the index " +
                                    std::to_string(self.num_passages()) + " passages");
            }
            const auto dim = static_cast<uint32_t>(vectors.shape(1));
            std::span<const float> rows(vectors.data(), static_cast<size_t>(vectors.size()));
            Status st;
            {
              py::gil_scoped_release release;
              st = self.attach_vectors(rows, dim, model_id);
            }
            check(st);
          },
          py::arg("vectors"), py::arg("model_id") = "custom",
          "Bring your own passage vectors: float32 (len(index), dim), row p for passage p (embed\n"
          "index.embedding_text(p)); float64 is converted, which copies. Then search with query_vector=...,\n"
          "or attach an encoder whose model_id matches.")
      .def("embedding_text", [](const Index& self, uint32_t p) {
            const auto snapshot = self.snapshot();
            if (p >= snapshot->num_passages()) throw py::index_error("passage number out of range");
            return snapshot->embedding_text(p);
          }, py::arg("number"), "The text passage `number` is embedded as: heading path (or title), then body.")
      .def_property_readonly("has_vectors", &Index::has_vectors)
      .def(
          "vectors",
          [](const Index& self) {
            // A view of the current snapshot's rows, which the array keeps alive.
            auto snapshot = std::make_unique<std::shared_ptr<const Snapshot>>(self.snapshot());
            if (!(*snapshot)->has_vectors()) throw py::value_error("this index has no passage vectors");
            const auto dim = static_cast<py::ssize_t>((*snapshot)->dim());
            const auto n = static_cast<py::ssize_t>((*snapshot)->num_passages());
            const float* data = (*snapshot)->vectors().data();
            py::capsule owner(snapshot.release(),
                              [](void* v) { delete static_cast<std::shared_ptr<const Snapshot>*>(v); });
            py::array_t<float> out({n, dim}, {dim * static_cast<py::ssize_t>(sizeof(float)),
                                              static_cast<py::ssize_t>(sizeof(float))},
                                   data, owner);
            py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
            return out;
          },
          "The passage vectors, (len(index), dim) float32, row p for passage p: a read-only view of the\n"
          "current generation's rows (add() and remove() leave it as it is).")
      .def(
          "doc_number",
          [](const Index& self, uint32_t p) {
            const auto snapshot = self.snapshot();
            if (p >= snapshot->num_passages()) throw py::index_error("passage number out of range");
            return snapshot->document_of(p);
          },
          py::arg("number"), "The document number of passage `number` (passages of a document are contiguous).")
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
          [](const std::shared_ptr<Index>& self, const std::string& query, int64_t k,
             const std::optional<py::dict>& filters, const std::string& level, const std::string& mode,
             const std::optional<py::array_t<float, py::array::c_style | py::array::forcecast>>& query_vector,
             const PipelineArgs& pipeline) {
            // One snapshot from the options to the hits.
            const auto snapshot = self->snapshot();
            SearchOptions opt = make_options(k, snapshot->num_passages(), filters, level);
            opt.mode = snapshot->resolve_mode(unwrap(parse_mode(mode)));
            pipeline.apply(&opt);
            if (query_vector) {
              if (query_vector->ndim() != 1) throw py::value_error("query_vector must be 1-d");
              opt.query_vector = std::span<const float>(query_vector->data(), static_cast<size_t>(query_vector->size()));
            }
            auto info = std::make_shared<QueryInfo>();
            info->text = query;
            info->vector.assign(opt.query_vector.begin(), opt.query_vector.end());
            info->reranked = opt.mode == SearchMode::kRerank;
            Result<SearchResponse> response = Status::internal("not searched");
            {
              py::gil_scoped_release release;
              response = snapshot->search(query, opt);
            }
            auto r = unwrap(std::move(response));
            const float coverage = r.coverage;
            const SearchMode answered = r.mode;
            return results(wrap(std::move(r), std::move(info)), coverage, mode_name(answered));
          },
          py::arg("query"), py::arg("k") = 10, py::arg("filters") = py::none(), py::arg("level") = "passage",
          py::arg("mode") = "auto", py::arg("query_vector") = py::none(), py::kw_only(),
          py::arg("pipeline") = PipelineArgs{},
          "Top-k hits for a query, best first, as a list with .coverage and .mode (k > len(index) is clamped).\n"
          "filters: {'audience': 'hp'|'patient', 'cancer_type': ..., 'corpus': ..., 'reviewed_after': 'YYYY-MM-DD'}\n"
          "(strings or lists), and any metadata key: {'qtype': 'symptoms'}, {'year': {'min': 2010, 'max': 2015}}.\n"
          "level: 'passage' or 'doc'. mode: 'bm25', 'dense', 'hybrid' (fused), 'rerank'\n"
          "(fused, then the learned reranker) or 'auto' (rerank when the index has vectors, else bm25).\n"
          "query_vector: your own query embedding (float32, dim floats). pipeline: medsearch.Pipeline(...)\n"
          "options (fusion, weights, depths, diversity). .coverage: in rerank mode, the calibrated probability\n"
          "that one of the top 3 hits answers the question (NaN otherwise).")
      .def(
          "search_batch",
          [](const std::shared_ptr<Index>& self, const std::vector<std::string>& queries, int64_t k,
             const std::optional<py::dict>& filters, const std::string& level, const std::string& mode,
             const PipelineArgs& pipeline) {
            const auto snapshot = self->snapshot();
            SearchOptions opt = make_options(k, snapshot->num_passages(), filters, level);
            opt.mode = snapshot->resolve_mode(unwrap(parse_mode(mode)));
            pipeline.apply(&opt);
            Result<std::vector<SearchResponse>> responses = Status::internal("not searched");
            {
              py::gil_scoped_release release;
              responses = snapshot->search_batch(queries, opt);
            }
            py::list out;
            auto all = unwrap(std::move(responses));
            for (size_t i = 0; i < all.size(); ++i) {
              auto info = std::make_shared<QueryInfo>();
              info->text = queries[i];
              info->reranked = opt.mode == SearchMode::kRerank;
              const float coverage = all[i].coverage;
              out.append(results(wrap(std::move(all[i]), std::move(info)), coverage, mode_name(opt.mode)));
            }
            return out;
          },
          py::arg("queries"), py::arg("k") = 10, py::arg("filters") = py::none(), py::arg("level") = "passage",
          py::arg("mode") = "auto", py::kw_only(), py::arg("pipeline") = PipelineArgs{},
          "search() for many queries, in parallel (GIL released); results in query order.")
      .def(
          "set_reranker",
          [](Index& self, const std::optional<std::filesystem::path>& path) {
            if (!path) return self.set_reranker(nullptr);
            self.set_reranker(unwrap(rank::Reranker::load(*path)));
          },
          py::arg("path"),
          "Use the reranker model in `path` (JSON written by tools/train_reranker.py); None: the built-in one.\n"
          "Searches already running finish with the reranker they started with.")
      .def_property_readonly("reranker_name", [](const Index& self) { return self.snapshot()->reranker().name(); })
      .def_property_readonly("reranker_base", [](const Index& self) { return self.snapshot()->reranker().bias(); },
                             "The expected reranker score that Hit.contributions are relative to")
      .def(
          "candidate_pool",
          [](const Index& self, const std::string& query, uint32_t candidates,
             const std::vector<uint32_t>& exclude_documents) {
            SearchOptions opt;
            opt.mode = SearchMode::kRerank;
            opt.candidates = candidates;
            Result<std::vector<rank::Candidate>> pool = Status::internal("not searched");
            {
              py::gil_scoped_release release;
              pool = self.candidate_pool(query, opt, exclude_documents);
            }
            auto cands = unwrap(std::move(pool));
            const auto n = static_cast<py::ssize_t>(cands.size());
            py::array_t<uint32_t> passages(std::vector<py::ssize_t>{n});
            py::array_t<float> features(std::vector<py::ssize_t>{n, static_cast<py::ssize_t>(rank::kNumFeatures)});
            uint32_t* p = passages.mutable_data();
            float* f = features.mutable_data();
            for (size_t i = 0; i < cands.size(); ++i) {
              p[i] = cands[i].passage;
              std::copy(cands[i].features.begin(), cands[i].features.end(), f + i * rank::kNumFeatures);
            }
            return py::make_tuple(passages, features);
          },
          py::arg("query"), py::arg("candidates") = SearchOptions{}.candidates, py::arg("exclude_documents") = std::vector<uint32_t>{},
          "The hybrid/rerank candidate pool of a query before fusion: (passage numbers, features (n, F)),\n"
          "features named by medsearch.feature_names(). exclude_documents: document numbers left out, as if\n"
          "not indexed (for studying questions the corpus cannot answer).")
      .def("unknown_share", [](const Index& self, const std::string& query) { return self.snapshot()->unknown_share(query); },
           py::arg("query"), "The share of the query's analysed tokens this index does not know (a coverage feature).")
      .def("passage", [](const Index& self, uint32_t p) {
            auto snapshot = self.snapshot();
            if (p >= snapshot->num_passages()) throw py::index_error("passage number out of range");
            return PyHit{std::move(snapshot), Hit{.passage = p}, nullptr, nullptr, nullptr};
          }, py::arg("number"), "The passage with this number in the current generation (0 <= number < len(index)).")
      .def("clean_text", [](const Index& self, const std::string& doc_id) {
            return std::string(unwrap(self.snapshot()->clean_text_of(doc_id)));
          }, py::arg("doc_id"), "The cleaned text that passage spans point into.")
      .def(
          "add",
          [](Index& self, const py::iterable& documents, const std::optional<py::function>& progress) {
            std::vector<io::Document> docs;
            for (auto item : documents) docs.push_back(python_document(item));
            ProgressFn report;
            if (progress) {
              report = [&progress](std::string_view stage, size_t done, size_t total) {
                py::gil_scoped_acquire gil;
                (*progress)(std::string(stage), done, total);
              };
            }
            Status st;
            {
              py::gil_scoped_release release;
              st = self.add(std::move(docs), report);
            }
            check(st);
          },
          py::arg("documents"), py::kw_only(), py::arg("progress") = py::none(),
          "Add documents: dicts with doc_id and body, and optionally corpus, title, format ('plain', the\n"
          "default, or 'markdown'), url, last_reviewed, audience, cancer_type, tags, meta_json. They are\n"
          "chunked as at build, indexed and (with vectors) embedded with the attached encoder. Searches in\n"
          "other threads continue and see the index before or after the change, never a mix. Renumbers\n"
          "passages; hits found before keep reading the passages they were found in.")
      .def(
          "remove",
          [](Index& self, const py::object& doc_ids, const std::string& corpus) {
            const std::vector<std::string> ids = as_string_list(doc_ids, "doc_ids");
            Status st;
            {
              py::gil_scoped_release release;
              st = self.remove(ids, corpus);
            }
            check(st);
          },
          py::arg("doc_ids"), py::kw_only(), py::arg("corpus") = "",
          "Remove documents (a doc_id or a list) and their passages; corpus: where a doc_id is in several.\n"
          "An unknown doc_id raises KeyError and changes nothing. See Index.add for what searches see.")
      .def_property_readonly("generation", &Index::generation,
                             "Increases with every add() and remove() (and attach_vectors()); a hit's number belongs\n"
                             "to the generation it was found in.")
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
        d["dim"] = s.dim;
        d["model_id"] = s.model_id;
        d["dense_index"] = s.dense_index;
        return d;
      });
}

}  // namespace medsearch::bindings
