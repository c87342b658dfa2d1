// embedder.h: texts -> dense vectors.
//
// Layout: a batch of n texts gives an n x dim() row-major float matrix;
// component j of vector i is out[i * dim() + j]. Vectors are L2-normalised, so
// inner product equals cosine similarity.
//
// Thread safety: implementations are thread-safe (embed() is const and may be
// called from many threads at once).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <medsearch/status.h>

namespace medsearch::embed {

// Retrieval models may encode queries and passages differently (e.g. an
// instruction prefix on queries).
enum class TextKind : uint8_t { kQuery = 0, kPassage = 1 };

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual uint32_t dim() const = 0;
  // A stable identifier of the model and its weights, stored with an index so
  // that queries are never embedded by a different model than the passages.
  virtual std::string model_id() const = 0;
  // out.size() must be texts.size() * dim(). An empty or blank text embeds as
  // the model's encoding of "[CLS] [SEP]" (a defined vector, not an error).
  [[nodiscard]] virtual Status embed(std::span<const std::string_view> texts, TextKind kind,
                                     std::span<float> out) const = 0;
};

}  // namespace medsearch::embed
