// Python surface of core/embed: Encoder (the BERT sentence encoder).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <medsearch/encoder.h>
#include <medsearch/precomputed.h>

#include "bindings/arena.h"
#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {
namespace {

// Owns the encoder and remembers where it came from.
struct PyEncoder {
  std::shared_ptr<const embed::BertEncoder> encoder;
  std::filesystem::path model_dir;
};

embed::TextKind parse_kind(const std::string& kind) {
  if (kind == "passage") return embed::TextKind::kPassage;
  if (kind == "query") return embed::TextKind::kQuery;
  throw py::value_error("kind must be 'passage' or 'query', got '" + kind + "'");
}

struct PyPrecomputed {
  std::shared_ptr<const embed::PrecomputedEmbedder> embedder;
};

using FloatRows = py::array_t<float, py::array::c_style | py::array::forcecast>;

// One table of PrecomputedEmbedder: the rows stay in the numpy array (no copy
// when it is float32 and C-contiguous; other dtypes are converted once).
embed::PrecomputedEmbedder::Table table_of(std::vector<std::string> texts, const FloatRows& vectors,
                                           const char* what, uint32_t* dim) {
  if (vectors.ndim() != 2) {
    throw py::value_error(std::string(what) + " must be a 2-D array (n, dim), got " + std::to_string(vectors.ndim()) +
                          " dimension(s)");
  }
  if (static_cast<size_t>(vectors.shape(0)) != texts.size()) {
    throw py::value_error(std::string(what) + " has " + std::to_string(vectors.shape(0)) + " rows for " +
                          std::to_string(texts.size()) + " texts");
  }
  const auto d = static_cast<uint32_t>(vectors.shape(1));
  if (*dim != 0 && d != *dim) {
    throw py::value_error(std::string(what) + " has dimension " + std::to_string(d) + ", the passage vectors " +
                          std::to_string(*dim));
  }
  *dim = d;
  return {std::move(texts), std::span<const float>(vectors.data(), static_cast<size_t>(vectors.size()))};
}

}  // namespace

std::shared_ptr<const embed::Embedder> embedder_of(const py::handle& obj) {
  if (py::isinstance<PyEncoder>(obj)) return obj.cast<const PyEncoder&>().encoder;
  if (py::isinstance<PyPrecomputed>(obj)) return obj.cast<const PyPrecomputed&>().embedder;
  throw py::type_error("encoder must be a medsearch.Encoder or medsearch.PrecomputedEmbedder, got " +
                       std::string(py::str(py::type::of(obj))));
}

void init_encoder(py::module_& m) {
  py::class_<PyEncoder>(m, "Encoder",
                        "The sentence encoder (MiniLM-L6 BERT in C++/Eigen; default medsearch-MiniLM-L6-v1): texts -> L2-normalised vectors.")
      .def(py::init([](const std::optional<std::string>& model, const std::optional<std::filesystem::path>& model_dir,
                       const std::optional<std::string>& precision) {
             if (model && model_dir) throw py::value_error("give model or model_dir, not both");
             const embed::Precision p =
                 unwrap(precision ? embed::parse_precision(*precision) : embed::default_precision());
             PyEncoder e;
             e.model_dir = model_dir ? *model_dir : model ? unwrap(embed::model_dir(*model)) : embed::default_model_dir();
             Result<std::unique_ptr<embed::BertEncoder>> loaded = Status::internal("not loaded");
             {
               py::gil_scoped_release release;
               loaded = embed::BertEncoder::load(e.model_dir, p);
             }
             e.encoder = unwrap(std::move(loaded));
             return e;
           }),
           py::arg("model") = py::none(), py::arg("model_dir") = py::none(), py::arg("precision") = py::none(),
           "Load the encoder `model` (a name this build knows, e.g. 'all-MiniLM-L6-v2', from the cache\n"
           "that tools/fetch_model.sh fills) or the one in model_dir (default: $MEDSEARCH_MODEL_DIR, else\n"
           "the default model). precision: 'float32', 'bfloat16' (Intel AMX, ~2.6x faster,\n"
           "cosine >= 0.999 to float32) or 'auto' (bfloat16 where available); default\n"
           "$MEDSEARCH_ENCODER_PRECISION, else 'auto'. Raises FileNotFoundError / CorruptIndexError\n"
           "with a fix, ValueError for a precision this machine cannot run.")
      .def_static(
          "for_model_id",
          [](const std::string& model_id) {
            PyEncoder e;
            Result<std::unique_ptr<embed::BertEncoder>> loaded = Status::internal("not loaded");
            {
              py::gil_scoped_release release;
              loaded = embed::encoder_for(model_id);
            }
            e.encoder = unwrap(std::move(loaded));
            e.model_dir = embed::model_dir_for(model_id);
            return e;
          },
          py::arg("model_id"),
          "The installed encoder of the model whose vectors an index holds (its stats()['model_id']);\n"
          "what Index.load(encoder='auto') attaches. Raises as Encoder() when it is not installed.")
      .def(
          "embed",
          [](const PyEncoder& self, const std::vector<std::string>& texts, const std::string& kind,
             std::optional<int> threads) {
            const embed::TextKind k = parse_kind(kind);
            check_threads(threads);
            const size_t dim = self.encoder->dim();
            py::array_t<float> out({texts.size(), dim});
            float* data = out.mutable_data();
            Status st;
            {
              py::gil_scoped_release release;
              std::vector<std::string_view> views(texts.begin(), texts.end());
              in_arena(threads, [&] { st = self.encoder->embed(views, k, std::span<float>(data, texts.size() * dim)); });
            }
            check(st);
            return out;
          },
          py::arg("texts"), py::arg("kind") = "passage", py::arg("threads") = py::none(),
          "Embed texts -> float32 array (n, dim), rows L2-normalised. kind: 'passage' or 'query'.\n"
          "threads: at most this many threads (default: all cores).")
      .def(
          "tokenize",
          [](const PyEncoder& self, const std::string& text) {
            return self.encoder->tokenizer().encode(text, self.encoder->config().max_seq_length);
          },
          py::arg("text"), "Token ids as the model sees them: [CLS] ... [SEP], truncated at the model's limit.")
      .def_property_readonly("dim", [](const PyEncoder& self) { return self.encoder->dim(); })
      .def_property_readonly("model_dir", [](const PyEncoder& self) { return self.model_dir; })
      .def_property_readonly("model_id", [](const PyEncoder& self) { return self.encoder->model_id(); })
      .def_property_readonly("precision",
                             [](const PyEncoder& self) { return embed::precision_name(self.encoder->precision()); })
      .def_property_readonly("max_tokens", [](const PyEncoder& self) { return self.encoder->config().max_seq_length; })
      .def("__repr__", [](const PyEncoder& self) {
        return "<Encoder " + self.encoder->model_id() + " " + embed::precision_name(self.encoder->precision()) + ">";
      });

  py::class_<PyPrecomputed>(m, "PrecomputedEmbedder",
                            "Vectors computed by a model of your own, looked up by text: pass it wherever an\n"
                            "Encoder goes (Index.build(..., encoder=...), Index.attach_encoder).")
      .def(py::init([](std::vector<std::string> texts, const FloatRows& vectors, const std::string& model_id,
                       std::optional<std::vector<std::string>> query_texts,
                       const std::optional<FloatRows>& query_vectors) {
             if (query_texts.has_value() != query_vectors.has_value()) {
               throw py::value_error("query_texts and query_vectors go together");
             }
             uint32_t dim = 0;
             auto passages = table_of(std::move(texts), vectors, "vectors", &dim);
             embed::PrecomputedEmbedder::Table queries;
             if (query_texts) queries = table_of(std::move(*query_texts), *query_vectors, "query_vectors", &dim);
             // The arrays stay alive (and unconverted) as long as the embedder.
             auto* arrays = new py::tuple(py::make_tuple(vectors, query_vectors ? py::object(*query_vectors) : py::none()));
             std::shared_ptr<const void> owner(arrays, [](const py::tuple* t) {
               py::gil_scoped_acquire gil;
               delete t;
             });
             Result<std::unique_ptr<embed::PrecomputedEmbedder>> made = Status::internal("not made");
             {
               py::gil_scoped_release release;
               made = embed::PrecomputedEmbedder::create(dim, model_id, std::move(passages), std::move(queries), owner);
             }
             return PyPrecomputed{unwrap(std::move(made))};
           }),
           py::arg("texts"), py::arg("vectors"), py::arg("model_id"), py::arg("query_texts") = py::none(),
           py::arg("query_vectors") = py::none(),
           "texts[i] has vectors[i] (float32 (n, dim), used in place; other dtypes are converted once).\n"
           "Passages are looked up by their Index.embedding_text(p); queries (optional, same dim) by\n"
           "their text. Rows are L2-normalised when served. ValueError for shapes, NaN/inf or zero\n"
           "rows, or a text given twice.")
      .def(
          "embed",
          [](const PyPrecomputed& self, const std::vector<std::string>& texts, const std::string& kind) {
            const embed::TextKind k = parse_kind(kind);
            const size_t dim = self.embedder->dim();
            py::array_t<float> out({texts.size(), dim});
            std::vector<std::string_view> views(texts.begin(), texts.end());
            check(self.embedder->embed(views, k, std::span<float>(out.mutable_data(), texts.size() * dim)));
            return out;
          },
          py::arg("texts"), py::arg("kind") = "passage",
          "The vectors of texts (n, dim), L2-normalised; ValueError for a text without one.")
      .def_property_readonly("dim", [](const PyPrecomputed& self) { return self.embedder->dim(); })
      .def_property_readonly("model_id", [](const PyPrecomputed& self) { return self.embedder->model_id(); })
      .def("__len__", [](const PyPrecomputed& self) { return self.embedder->size(embed::TextKind::kPassage); })
      .def("__repr__", [](const PyPrecomputed& self) {
        return "<PrecomputedEmbedder " + self.embedder->model_id() + " dim " + std::to_string(self.embedder->dim()) +
               ", " + std::to_string(self.embedder->size(embed::TextKind::kPassage)) + " passages, " +
               std::to_string(self.embedder->size(embed::TextKind::kQuery)) + " queries>";
      });
}

}  // namespace medsearch::bindings
