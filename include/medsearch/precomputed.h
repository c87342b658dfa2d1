// precomputed.h: an Embedder that serves vectors the caller computed with a
// model of its own, looked up by text, so such vectors can build and query an
// Index like the built-in encoder's.
//
// The caller's matrices are used in place (a view, not a copy); `owner` keeps
// their memory alive as long as the embedder lives (from Python: the numpy
// array). Texts are copied into a hash table once. Passages and queries have
// separate tables (a model may embed them differently); embed() copies each
// text's row and L2-normalises it, as the Embedder contract promises. A text
// without a vector is an error (kInvalidArgument, naming it), including blank
// texts: the caller decides what they embed as. To embed an index's passages, key
// them by Index::embedding_text(p).
//
// Thread-safe (immutable after create()). Memory: the texts plus about 40
// bytes of table per text; the vectors stay the caller's.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <medsearch/embedder.h>

namespace medsearch::embed {

class PrecomputedEmbedder final : public Embedder {
 public:
  // texts[i] has the row vectors[i * dim, (i + 1) * dim).
  struct Table {
    std::vector<std::string> texts;
    std::span<const float> vectors;
  };

  // Errors (kInvalidArgument): dim == 0, an empty model_id, a table whose
  // vectors are not texts.size() x dim, a row with NaN/inf or all zeros, a
  // text given twice in one table. Either table may be empty, not both.
  static Result<std::unique_ptr<PrecomputedEmbedder>> create(uint32_t dim, std::string model_id, Table passages,
                                                             Table queries = {},
                                                             std::shared_ptr<const void> owner = nullptr);

  uint32_t dim() const override { return dim_; }
  std::string model_id() const override { return model_id_; }
  Status embed(std::span<const std::string_view> texts, TextKind kind, std::span<float> out) const override;

  size_t size(TextKind kind) const { return table(kind).rows.size(); }

 private:
  struct Lookup {
    std::unordered_map<std::string, uint32_t> rows;  // text -> row
    std::span<const float> vectors;
  };
  PrecomputedEmbedder() = default;
  const Lookup& table(TextKind kind) const { return kind == TextKind::kQuery ? queries_ : passages_; }

  uint32_t dim_ = 0;
  std::string model_id_;
  Lookup passages_, queries_;
  std::shared_ptr<const void> owner_;
};

}  // namespace medsearch::embed
