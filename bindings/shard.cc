// Python surface of include/medsearch/shard.h: what medsearch.distributed
// (python/medsearch/distributed.py) runs on Ray. Shards and coordinator
// exchange bytes (plans, answers) and plain dicts (passages), which Ray moves
// between processes without knowing these types; CollectionStats pickles.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <medsearch/shard.h>

#include "bindings/search.h"
#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {

std::shared_ptr<const embed::Embedder> embedder_of(const py::handle& obj);  // bindings/encoder.cc

namespace {

using StatsPtr = std::shared_ptr<CollectionStats>;

py::dict passage_dict(const Passage& p) {
  py::dict d;
  d["number"] = p.number;
  d["passage_id"] = p.passage_id;
  d["doc_id"] = p.doc_id;
  d["corpus"] = p.corpus;
  d["title"] = p.title;
  d["url"] = p.url;
  d["heading_path"] = p.heading_path;
  d["begin"] = p.begin;
  d["end"] = p.end;
  d["text"] = p.text;
  d["audience"] = p.audience;
  d["cancer_type"] = p.cancer_type;
  d["last_reviewed"] = p.last_reviewed;
  d["tags"] = p.tags;
  d["meta_json"] = p.meta_json;
  py::list meta;
  for (const auto& f : p.metadata) meta.append(py::make_tuple(f.key, f.values));
  d["metadata"] = meta;
  return d;
}

Passage passage_of(const py::dict& d) {
  Passage p;
  p.number = d["number"].cast<uint32_t>();
  p.passage_id = d["passage_id"].cast<std::string>();
  p.doc_id = d["doc_id"].cast<std::string>();
  p.corpus = d["corpus"].cast<std::string>();
  p.title = d["title"].cast<std::string>();
  p.url = d["url"].cast<std::string>();
  p.heading_path = d["heading_path"].cast<std::vector<std::string>>();
  p.begin = d["begin"].cast<uint32_t>();
  p.end = d["end"].cast<uint32_t>();
  p.text = d["text"].cast<std::string>();
  p.audience = d["audience"].cast<std::string>();
  p.cancer_type = d["cancer_type"].cast<std::string>();
  p.last_reviewed = d["last_reviewed"].cast<std::string>();
  p.tags = d["tags"].cast<std::vector<std::string>>();
  p.meta_json = d["meta_json"].cast<std::string>();
  for (auto item : d["metadata"]) {
    auto t = item.cast<py::tuple>();
    p.metadata.push_back({t[0].cast<std::string>(), t[1].cast<std::vector<std::string>>()});
  }
  return p;
}

StatsPtr stats_from_bytes(const py::bytes& bytes, const std::string& name) {
  const std::string data = bytes;
  return std::make_shared<CollectionStats>(unwrap(CollectionStats::parse(data, name)));
}

// One shard's searcher (ShardSearcher) and the snapshot its passages come from.
struct PyShard {
  std::shared_ptr<const ShardSearcher> searcher;
};

// A merged answer before its passages are fetched.
struct PyMerged {
  ShardedResponse response;
  bool reranked = false;
};

struct PyCoordinator {
  std::shared_ptr<const Coordinator> coordinator;
  std::shared_ptr<const embed::Embedder> embedder;  // may be null
};

}  // namespace

void init_shard(py::module_& m) {
  m.def("shard_of", &shard_of, py::arg("doc_id"), py::arg("shards"),
        "The shard (of `shards`) a document belongs to: a stable hash of its doc_id.");
  m.def(
      "build_shard",
      [](const py::object& corpora, uint32_t shard, uint32_t shards, bool skip_malformed, uint32_t max_tokens, float k1,
         float b, float heading_weight, const std::optional<py::function>& progress, const py::object& encoder,
         uint32_t exact_below, uint32_t threads) {
        auto [index, positions] = build_index(corpora, skip_malformed, max_tokens, k1, b, heading_weight, progress,
                                              encoder, std::make_pair(shard, shards), exact_below, threads);
        return py::make_tuple(index, positions);
      },
      py::arg("corpora"), py::arg("shard"), py::arg("shards"), py::kw_only(), py::arg("skip_malformed") = false,
      py::arg("max_tokens") = 220, py::arg("k1") = 0.9f, py::arg("b") = 0.4f, py::arg("heading_weight") = 0.4f,
      py::arg("progress") = py::none(), py::arg("encoder") = py::none(),
      py::arg("exact_below") = BuildOptions{}.exact_below, py::arg("threads") = 0,
      "Index.build() of the documents of one shard (shard_of(doc_id, shards) == shard): (index, positions),\n"
      "positions[d] being document d's position in the corpora as read (the collection's order).\n"
      "threads > 0: build on that many threads (a task's share of the machine), else on all.");

  py::class_<CollectionStats, StatsPtr>(m, "CollectionStats",
                                        "What BM25 and the corpus-wide features count over a collection of shards.")
      .def_static(
          "of", [](const Index& index) { return std::make_shared<CollectionStats>(CollectionStats::of(*index.snapshot())); },
          py::arg("index"), "The statistics of one index (a shard).")
      .def_static(
          "merge",
          [](const std::vector<StatsPtr>& parts) {
            std::vector<CollectionStats> copies;
            for (const auto& p : parts) copies.push_back(*p);
            return std::make_shared<CollectionStats>(unwrap(CollectionStats::merge(copies)));
          },
          py::arg("parts"), "The statistics of shards together (version 0).")
      .def_static(
          "load", [](const std::filesystem::path& path) { return std::make_shared<CollectionStats>(unwrap(CollectionStats::load(path))); },
          py::arg("path"))
      .def("save", [](const CollectionStats& self, const std::filesystem::path& path) { check(self.save(path)); },
           py::arg("path"), "Atomic and checksummed.")
      .def("to_bytes", [](const CollectionStats& self) { return py::bytes(self.serialize()); })
      .def_static("from_bytes", [](const py::bytes& b) { return stats_from_bytes(b, "collection statistics"); })
      .def(py::pickle([](const CollectionStats& self) { return py::bytes(self.serialize()); },
                      [](const py::bytes& b) { return stats_from_bytes(b, "pickled collection statistics"); }))
      .def_readwrite("version", &CollectionStats::version)
      .def_readonly("shards", &CollectionStats::shards)
      .def_readonly("documents", &CollectionStats::documents)
      .def_readonly("passages", &CollectionStats::passages)
      .def_readonly("dim", &CollectionStats::dim)
      .def_readonly("model_id", &CollectionStats::model_id)
      .def_property_readonly("num_terms", [](const CollectionStats& self) { return self.terms.size(); })
      .def("__repr__", [](const CollectionStats& self) {
        return "<CollectionStats v" + std::to_string(self.version) + ": " + std::to_string(self.shards) + " shards, " +
               std::to_string(self.documents) + " documents, " + std::to_string(self.passages) + " passages>";
      });

  py::class_<PyShard>(m, "ShardSearcher", "One shard of a collection: its index searched with the collection's statistics.")
      .def(py::init([](uint32_t shard, const Index& index, const StatsPtr& stats, std::vector<uint64_t> order) {
             return PyShard{unwrap(ShardSearcher::create(shard, index.snapshot(), std::make_shared<const CollectionStats>(*stats),
                                                         std::move(order)))};
           }),
           py::arg("shard"), py::arg("index"), py::arg("stats"), py::arg("order"),
           "order[d]: document d's position in the collection (ascending).")
      .def(
          "answer",
          [](const PyShard& self, const py::bytes& plan) {
            const std::string bytes = plan;
            Result<std::string> answer = Status::internal("not answered");
            {
              py::gil_scoped_release release;
              answer = self.searcher->answer(bytes);
            }
            return py::bytes(unwrap(std::move(answer)));
          },
          py::arg("plan"), "This shard's answer (bytes) to a Coordinator's plan (bytes).")
      .def(
          "passages",
          [](const PyShard& self, const std::vector<uint32_t>& numbers, uint64_t generation) {
            const Snapshot& snapshot = self.searcher->snapshot();
            if (generation != snapshot.generation()) {
              raise(Status::stale("shard " + std::to_string(self.searcher->shard()) + " holds generation " +
                                  std::to_string(snapshot.generation()) + ", the hits are of generation " +
                                  std::to_string(generation)));
            }
            py::list out;
            for (uint32_t p : numbers) {
              if (p >= snapshot.num_passages()) throw py::index_error("passage number out of range");
              out.append(passage_dict(snapshot.passage(p)));
            }
            return out;
          },
          py::arg("numbers"), py::arg("generation"), "The passages (dicts) of hits found in this generation.")
      .def_property_readonly("shard", [](const PyShard& self) { return self.searcher->shard(); })
      .def_property_readonly("generation", [](const PyShard& self) { return self.searcher->snapshot().generation(); })
      .def_property_readonly("stats_version", [](const PyShard& self) { return self.searcher->stats().version; });

  py::class_<PyMerged>(m, "MergedResponse", "A sharded search's hits before their passages are fetched.")
      .def_property_readonly("locations",
                             [](const PyMerged& self) {
                               std::vector<std::pair<uint32_t, uint32_t>> out;
                               for (const auto& h : self.response.hits) out.emplace_back(h.shard, h.hit.passage);
                               return out;
                             },
                             "(shard, passage number) of each hit, best first")
      .def_property_readonly("generations", [](const PyMerged& self) { return self.response.generations; })
      .def_property_readonly("mode", [](const PyMerged& self) { return std::string(mode_name(self.response.mode)); })
      .def_property_readonly("coverage", [](const PyMerged& self) { return self.response.coverage; });

  py::class_<PyCoordinator>(m, "Coordinator", "Plans a query once for every shard and merges their answers.")
      .def(py::init([](const StatsPtr& stats, const py::object& encoder) {
             std::shared_ptr<const embed::Embedder> embedder;
             if (!encoder.is_none()) embedder = embedder_of(encoder);
             return PyCoordinator{std::make_shared<const Coordinator>(std::make_shared<const CollectionStats>(*stats), embedder),
                                  embedder};
           }),
           py::arg("stats"), py::arg("encoder") = py::none())
      .def(
          "plan",
          [](const PyCoordinator& self, const std::string& query, int64_t k, const std::optional<py::dict>& filters,
             const std::string& level, const std::string& mode,
             const std::optional<py::array_t<float, py::array::c_style | py::array::forcecast>>& query_vector,
             const PipelineArgs& pipeline) {
            SearchOptions opt = make_options(k, static_cast<uint32_t>(self.coordinator->stats().passages), filters, level);
            opt.mode = self.coordinator->resolve_mode(unwrap(parse_mode(mode)));
            pipeline.apply(&opt);
            opt.explain = true;  // the shards fill the hits' parts: no second round to explain them
            if (query_vector) {
              if (query_vector->ndim() != 1) throw py::value_error("query_vector must be 1-d");
              opt.query_vector = std::span<const float>(query_vector->data(), static_cast<size_t>(query_vector->size()));
            }
            Result<std::string> plan = Status::internal("not planned");
            {
              py::gil_scoped_release release;
              // Index.search explains bm25 hits with the query's cosine when it can embed the query
              // (Hit.dense_score): so do the shards, given the vector.
              std::vector<float> explaining;
              const uint32_t dim = self.coordinator->stats().dim;
              if (opt.mode == SearchMode::kBm25 && opt.query_vector.empty() && dim && self.embedder &&
                  self.embedder->dim() == dim && !query.empty()) {
                explaining.resize(dim);
                const std::string_view texts[1] = {query};
                if (self.embedder->embed(texts, embed::TextKind::kQuery, explaining).is_ok()) opt.query_vector = explaining;
              }
              plan = self.coordinator->plan(query, opt);
            }
            return py::bytes(unwrap(std::move(plan)));
          },
          py::arg("query"), py::arg("k") = 10, py::arg("filters") = py::none(), py::arg("level") = "passage",
          py::arg("mode") = "auto", py::arg("query_vector") = py::none(), py::kw_only(),
          py::arg("pipeline") = PipelineArgs{}, "The query as every shard needs it (bytes); arguments as Index.search().")
      .def(
          "merge",
          [](const PyCoordinator& self, const py::bytes& plan, const std::vector<py::bytes>& answers) {
            const std::string plan_bytes = plan;
            std::vector<std::string> answer_bytes(answers.begin(), answers.end());
            Result<ShardedResponse> merged = Status::internal("not merged");
            {
              py::gil_scoped_release release;
              merged = self.coordinator->merge(plan_bytes, answer_bytes);
            }
            PyMerged out{unwrap(std::move(merged))};
            out.reranked = out.response.mode == SearchMode::kRerank;
            return out;
          },
          py::arg("plan"), py::arg("answers"), "One answer per shard, any order.")
      .def(
          "results",
          [](const PyCoordinator& self, const PyMerged& merged, const std::vector<py::dict>& passages) {
            if (passages.size() != merged.response.hits.size()) throw py::value_error("one passage per hit");
            // Hits of a sharded search carry their passage and parts: no snapshot to read or explain from.
            auto info = std::make_shared<QueryInfo>();
            info->reranked = merged.reranked;
            std::vector<PyHit> hits;
            for (size_t i = 0; i < passages.size(); ++i) {
              PyHit h{nullptr, merged.response.hits[i].hit, info, self.coordinator->reranker(), nullptr, true};
              h.materialized = std::make_shared<const Passage>(passage_of(passages[i]));
              hits.push_back(std::move(h));
            }
            return results(std::move(hits), merged.response.coverage, mode_name(merged.response.mode));
          },
          py::arg("merged"), py::arg("passages"), "medsearch.Results of the merged hits and their fetched passages.")
      .def_property_readonly("stats_version", [](const PyCoordinator& self) { return self.coordinator->stats().version; });
}

}  // namespace medsearch::bindings
