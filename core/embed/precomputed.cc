// precomputed.cc: see precomputed.h.
#include <medsearch/precomputed.h>

#include <cmath>
#include <tuple>
#include <utility>

namespace medsearch::embed {
namespace {

const char* kind_name(TextKind kind) { return kind == TextKind::kQuery ? "query" : "passage"; }

// The first 60 bytes of a text, for messages.
std::string excerpt(std::string_view text) {
  if (text.size() <= 60) return std::string(text);
  size_t cut = 60;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace

Result<std::unique_ptr<PrecomputedEmbedder>> PrecomputedEmbedder::create(uint32_t dim, std::string model_id,
                                                                         Table passages, Table queries,
                                                                         std::shared_ptr<const void> owner) {
  if (dim == 0) return Status::invalid_argument("PrecomputedEmbedder: dim must be positive");
  if (model_id.empty()) return Status::invalid_argument("PrecomputedEmbedder: model_id must not be empty");
  if (passages.texts.empty() && queries.texts.empty()) {
    return Status::invalid_argument("PrecomputedEmbedder: no texts (give passage texts, query texts or both)");
  }
  std::unique_ptr<PrecomputedEmbedder> e(new PrecomputedEmbedder());
  e->dim_ = dim;
  e->model_id_ = std::move(model_id);
  e->owner_ = std::move(owner);
  for (auto [table, lookup, kind] : {std::tuple{&passages, &e->passages_, TextKind::kPassage},
                                     std::tuple{&queries, &e->queries_, TextKind::kQuery}}) {
    const size_t n = table->texts.size();
    if (table->vectors.size() != n * dim) {
      return Status::invalid_argument(std::string("PrecomputedEmbedder: ") + kind_name(kind) + " vectors have " +
                                      std::to_string(table->vectors.size()) + " floats, expected " +
                                      std::to_string(n) + " texts x " + std::to_string(dim));
    }
    lookup->vectors = table->vectors;
    lookup->rows.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      double norm = 0;
      bool finite = true;
      for (float v : table->vectors.subspan(i * dim, dim)) {
        finite = finite && std::isfinite(v);
        norm += double(v) * v;
      }
      if (!finite || norm == 0) {
        return Status::invalid_argument(std::string("PrecomputedEmbedder: ") + kind_name(kind) + " vector " +
                                        std::to_string(i) + (finite ? " is all zeros" : " has NaN or infinite values"));
      }
      const auto [it, fresh] = lookup->rows.emplace(std::move(table->texts[i]), static_cast<uint32_t>(i));
      if (!fresh) {
        return Status::invalid_argument(std::string("PrecomputedEmbedder: ") + kind_name(kind) + " text " +
                                        std::to_string(i) + " repeats text " + std::to_string(it->second) + " ('" +
                                        excerpt(it->first) + "')");
      }
    }
  }
  return e;
}

Status PrecomputedEmbedder::embed(std::span<const std::string_view> texts, TextKind kind,
                                  std::span<float> out) const {
  if (out.size() != texts.size() * dim_) {
    return Status::invalid_argument("embed: out has " + std::to_string(out.size()) + " floats, expected " +
                                    std::to_string(texts.size()) + " x " + std::to_string(dim_));
  }
  const Lookup& lookup = table(kind);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto it = lookup.rows.find(std::string(texts[i]));
    if (it == lookup.rows.end()) {
      return Status::invalid_argument(std::string("PrecomputedEmbedder: no ") + kind_name(kind) + " vector for text " +
                               std::to_string(i) + " ('" + excerpt(texts[i]) + "'); " +
                               (kind == TextKind::kPassage ? "passages are keyed by Index::embedding_text(p)"
                                                           : "pass the query's vector or add the query text"));
    }
    const std::span<const float> row = lookup.vectors.subspan(size_t{it->second} * dim_, dim_);
    double norm = 0;
    for (float v : row) norm += double(v) * v;
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (uint32_t j = 0; j < dim_; ++j) out[i * dim_ + j] = row[j] * inv;
  }
  return Status::ok();
}

}  // namespace medsearch::embed
