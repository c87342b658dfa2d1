// corpus_spec.cc: the text form of a corpus to read (corpus.h).
#include <medsearch/corpus.h>

namespace medsearch::io {

CorpusSpec parse_corpus_spec(std::string_view spec) {
  const std::filesystem::path whole{std::string(spec)};
  std::error_code ec;
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || std::filesystem::exists(whole, ec)) return {"", whole};
  return {std::string(spec.substr(0, eq)), std::filesystem::path(std::string(spec.substr(eq + 1)))};
}

}  // namespace medsearch::io
