// wordpiece.h: BERT's uncased WordPiece tokenizer, identical to Hugging Face
// `tokenizers` (BertNormalizer + BertPreTokenizer + WordPiece) for uncased
// models such as all-MiniLM-L6-v2 and bge-small-en-v1.5.
//
// Pipeline: clean text (drop NUL, U+FFFD and control/format characters, map
// whitespace to ' '), put spaces around CJK ideographs, lower-case and strip
// accents (NFD, drop Mn), split on whitespace and punctuation (ASCII
// punctuation and Unicode P* categories), then greedy longest-match-first
// WordPiece with "##" continuations; a word longer than 100 characters or with
// no match becomes [UNK].
//
// Thread safety: thread-compatible; encode() is const and allocation-light.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/common/status.h"

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
  // The word pieces as strings, without [CLS]/[SEP] and without truncation.
  std::vector<std::string> tokenize(std::string_view text) const;

  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  size_t vocab_size() const { return tokens_.size(); }
  const std::string& token(int32_t id) const { return tokens_[id]; }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t pad_id_ = 0, unk_id_ = 100, cls_id_ = 101, sep_id_ = 102;
};

}  // namespace medsearch::embed
