// Python surface of core/embed: Encoder (the BERT sentence encoder).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings/arena.h"
#include "bindings/status.h"
#include "core/embed/bert_encoder.h"

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

}  // namespace

std::shared_ptr<const embed::BertEncoder> encoder_of(const py::handle& obj) {
  if (!py::isinstance<PyEncoder>(obj)) {
    throw py::type_error("encoder must be a medsearch.Encoder, got " + std::string(py::str(py::type::of(obj))));
  }
  return obj.cast<const PyEncoder&>().encoder;
}

void init_encoder(py::module_& m) {
  py::class_<PyEncoder>(m, "Encoder",
                        "The sentence encoder (all-MiniLM-L6-v2, BERT in C++/Eigen): texts -> L2-normalised vectors.")
      .def(py::init([](const std::optional<std::string>& model, const std::optional<std::filesystem::path>& model_dir,
                       const std::optional<std::string>& precision) {
             if (model && *model != "all-MiniLM-L6-v2" && *model != "all-minilm-l6-v2") {
               throw py::value_error("unknown model '" + *model + "' (this build ships all-MiniLM-L6-v2)");
             }
             const embed::Precision p =
                 unwrap(precision ? embed::parse_precision(*precision) : embed::default_precision());
             PyEncoder e;
             e.model_dir = model_dir ? *model_dir : embed::default_model_dir();
             Result<std::unique_ptr<embed::BertEncoder>> loaded = Status::internal("not loaded");
             {
               py::gil_scoped_release release;
               loaded = embed::BertEncoder::load(e.model_dir, p);
             }
             e.encoder = unwrap(std::move(loaded));
             return e;
           }),
           py::arg("model") = py::none(), py::arg("model_dir") = py::none(), py::arg("precision") = py::none(),
           "Load the encoder from model_dir (default: $MEDSEARCH_MODEL_DIR or the cache that\n"
           "tools/fetch_model.sh fills). precision: 'float32', 'bfloat16' (Intel AMX, ~2.6x faster,\n"
           "cosine >= 0.999 to float32) or 'auto' (bfloat16 where available); default\n"
           "$MEDSEARCH_ENCODER_PRECISION, else 'auto'. Raises FileNotFoundError / CorruptIndexError\n"
           "with a fix, ValueError for a precision this machine cannot run.")
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
}

}  // namespace medsearch::bindings
