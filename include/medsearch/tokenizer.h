// wordpiece.h: BERT's uncased WordPiece tokenizer, identical to Hugging Face
// `tokenizers` (BertNormalizer + BertPreTokenizer + WordPiece) for uncased
// models such as all-MiniLM-L6-v2 and bge-small-en-v1.5.
//
// Pipeline: clean text (drop NUL, U+FFFD and control/format characters, map
// whitespace to ' '), put spaces around CJK ideographs, lower-case and strip
// accents (NFD, drop Mn), split on whitespace and punctuation (ASCII
// punctuation and Unicode P* categories), then greedy longest-match-first
// WordPiece with "##" continuations; a word longer than 100 characters or with
// no match becomes [UNK]. As in Hugging Face, the special tokens [PAD], [UNK],
// [CLS], [SEP] and [MASK] (those the vocabulary has) are matched verbatim in
// the raw text first, so a literal "[SEP]" in a document encodes as [SEP].
// Input is UTF-8; invalid bytes are dropped, as U+FFFD is.
//
// Cost: linear in the text; a double-array byte trie (about 0.8 MB for a
// 30k vocabulary) finds each piece in one pass over its bytes. encode() stops
// reading once max_tokens is reached and allocates only to grow *out.
//
// Thread safety: thread-compatible; encode() is const and allocation-light.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/status.h>

namespace medsearch::embed {

class WordPieceTokenizer {
 public:
  // vocab.txt: one token per line, line number = id. Needs [PAD], [UNK], [CLS], [SEP].
  static Result<WordPieceTokenizer> load(const std::filesystem::path& vocab_file);
  static Result<WordPieceTokenizer> from_vocab(std::vector<std::string> tokens);

  // [CLS] pieces... [SEP], truncated so the total is at most max_tokens (>= 2).
  // Appends to *out after clearing it.
  void encode(std::string_view text, size_t max_tokens, std::vector<int32_t>* out) const;
  std::vector<int32_t> encode(std::string_view text, size_t max_tokens = 512) const;
  // encode() of each text, in parallel with oneTBB in the caller's arena.
  // Resizes *out to texts.size().
  void encode_batch(std::span<const std::string_view> texts, size_t max_tokens,
                    std::vector<std::vector<int32_t>>* out) const;
  // The word pieces as strings, without [CLS]/[SEP] and without truncation.
  std::vector<std::string> tokenize(std::string_view text) const;

  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  size_t vocab_size() const { return tokens_.size(); }
  const std::string& token(int32_t id) const { return tokens_[id]; }
  // The id of a vocabulary entry (exact bytes), or -1. A token listed twice
  // has the id of its last line, as in Hugging Face's vocab.txt reader.
  int32_t token_to_id(std::string_view token) const;

 private:
  class Encoder;  // the per-call pipeline, in wordpiece.cc

  // Byte trie over the vocabulary as a double array: the child of node s by
  // byte c is t = units_[s].base + c if units_[t].check == s. Node 0 is the
  // root; "##" pieces are matched from continuation_node_ (the "##" node).
  struct Unit {
    uint32_t base = 0;
    uint32_t check = UINT32_MAX;  // parent node; UINT32_MAX: free slot
    int32_t id = -1;              // the token spelled by the path to this node, or -1
  };
  static constexpr uint32_t kNoNode = UINT32_MAX;

  uint32_t child(uint32_t node, uint8_t label) const {
    const uint32_t t = units_[node].base + label;
    return units_[t].check == node ? t : kNoNode;
  }
  void build_trie(const std::vector<int32_t>& sorted_ids);
  // Appends the pieces of one pre-tokenized word (or [UNK]).
  void append_word(std::string_view word, size_t num_chars, std::vector<int32_t>* out) const;
  // Appends the pieces of `text`, at most `limit` of them.
  void append_pieces(std::string_view text, size_t limit, std::vector<int32_t>* out) const;

  std::vector<std::string> tokens_;
  std::vector<Unit> units_;  // padded with 256 free slots so base + c never overflows
  uint32_t continuation_node_ = kNoNode;
  std::vector<int32_t> special_ids_;  // matched verbatim in raw text, before normalization
  int32_t pad_id_ = 0, unk_id_ = 100, cls_id_ = 101, sep_id_ = 102;
};

}  // namespace medsearch::embed
