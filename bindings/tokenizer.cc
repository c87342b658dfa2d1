// Python surface of core/embed/wordpiece.h: WordPieceTokenizer.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <medsearch/tokenizer.h>

#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {
namespace {

size_t check_max_tokens(int64_t max_tokens) {
  if (max_tokens < 2) throw py::value_error("max_tokens must be at least 2 ([CLS] and [SEP])");
  return static_cast<size_t>(max_tokens);
}

py::list to_list(const std::vector<int32_t>& ids) {
  py::list out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) out[i] = py::int_(ids[i]);
  return out;
}

}  // namespace

void init_tokenizer(py::module_& m) {
  using embed::WordPieceTokenizer;
  py::class_<WordPieceTokenizer>(m, "WordPieceTokenizer",
                                 "BERT's uncased WordPiece tokenizer, id-for-id identical to Hugging Face\n"
                                 "`tokenizers` (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP]).")
      .def(py::init([](const std::filesystem::path& vocab_file) {
             Result<WordPieceTokenizer> tok = Status::internal("not loaded");
             {
               py::gil_scoped_release release;
               tok = WordPieceTokenizer::load(vocab_file);
             }
             return unwrap(std::move(tok));
           }),
           py::arg("vocab_file"), "Load a BERT vocab.txt (one token per line; line number = id).")
      .def(
          "encode",
          [](const WordPieceTokenizer& self, const std::string& text, int64_t max_tokens) {
            const size_t limit = check_max_tokens(max_tokens);
            std::vector<int32_t> ids;
            {
              py::gil_scoped_release release;
              self.encode(text, limit, &ids);
            }
            return to_list(ids);
          },
          py::arg("text"), py::arg("max_tokens") = 512,
          "[CLS] pieces... [SEP] as ids; truncated to at most max_tokens ids in all.")
      .def(
          "encode_batch",
          [](const WordPieceTokenizer& self, const std::vector<std::string>& texts, int64_t max_tokens) {
            const size_t limit = check_max_tokens(max_tokens);
            std::vector<std::vector<int32_t>> ids;
            {
              py::gil_scoped_release release;
              std::vector<std::string_view> views(texts.begin(), texts.end());
              self.encode_batch(views, limit, &ids);
            }
            py::list out(ids.size());
            for (size_t i = 0; i < ids.size(); ++i) out[i] = to_list(ids[i]);
            return out;
          },
          py::arg("texts"), py::arg("max_tokens") = 512,
          "encode() of each text; runs in parallel without the GIL.")
      .def("tokenize", &WordPieceTokenizer::tokenize, py::arg("text"),
           "The word pieces as strings, without [CLS]/[SEP] and without truncation.")
      .def("token_to_id",
           [](const WordPieceTokenizer& self, const std::string& token) -> std::optional<int32_t> {
             const int32_t id = self.token_to_id(token);
             if (id < 0) return std::nullopt;
             return id;
           },
           py::arg("token"), "The id of a vocabulary entry, or None.")
      .def_property_readonly("vocab_size", &WordPieceTokenizer::vocab_size,
                             "Number of lines of vocab.txt (the model's embedding rows).")
      .def("__repr__", [](const WordPieceTokenizer& self) {
        return "<WordPieceTokenizer vocab_size=" + std::to_string(self.vocab_size()) + ">";
      });
}

}  // namespace medsearch::bindings
