// encoder_for.cc: which encoder embeds an index's queries (encoder.h).
#include <medsearch/encoder.h>

namespace medsearch::embed {

Result<std::unique_ptr<BertEncoder>> encoder_for(std::string_view model_id, std::optional<Precision> precision) {
  if (!precision) {
    auto p = default_precision();
    if (!p) return p.status();
    precision = *p;
  }
  const std::filesystem::path dir = model_dir_for(model_id);
  auto encoder = BertEncoder::load(dir, *precision);
  if (!encoder) return encoder.status();
  if ((*encoder)->model_id() != model_id) {
    return Status::invalid_argument("the index's vectors were made by model '" + std::string(model_id) + "', but " +
                                    dir.string() + " holds '" + (*encoder)->model_id() + "'");
  }
  return encoder;
}

}  // namespace medsearch::embed
