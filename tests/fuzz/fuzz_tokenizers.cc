// fuzz_tokenizers: the BM25 text Analyzer (core/text/analyzer.h) and BERT's
// WordPiece tokenizer (core/embed/wordpiece.h) on arbitrary bytes.
//
// The WordPiece vocabulary is the real one when the model has been fetched
// (~/.cache/medsearch/models/all-minilm-l6-v2/vocab.txt, or
// $MEDSEARCH_FUZZ_VOCAB), else a small built-in one. Checked besides crashes
// and UB:
//  - Analyzer: spans inside the input and at most kMaxTokenBytes long,
//    non-empty UTF-8 terms, positions; the header's invariant that
//    tokenize(text[t.begin, t.end)) is exactly {t.term} for every token of an
//    analyzer without stemming; analyze() without stemming, stopwords and
//    compound parts gives tokenize()'s terms.
//  - WordPiece: [CLS] ... [SEP] within max_tokens, ids in the vocabulary,
//    truncation is a prefix of the full encoding, encode() matches
//    tokenize(), encode_batch() matches encode().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/tokenizer.h>

#include "core/text/analyzer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace text = medsearch::text;
namespace embed = medsearch::embed;
using medsearch::fuzz::escaped;
using medsearch::fuzz::valid_utf8;

std::vector<std::string> builtin_vocab() {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (char c = 'a'; c <= 'z'; ++c) {
    v.emplace_back(1, c);
    v.push_back(std::string("##") + c);
  }
  for (char c = '0'; c <= '9'; ++c) {
    v.emplace_back(1, c);
    v.push_back(std::string("##") + c);
  }
  for (const char* w : {"!", "\"", "#", "$", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/", ":",
                        ";", "<", "=", ">", "?", "@", "[", "\\", "]", "^", "_", "`", "{", "|", "}", "~",
                        "the", "cancer", "tumor", "##s", "##ing", "##ed", "##oma", "meso", "##the", "##li",
                        "treatment", "patient", "pd", "l1", "her", "##2", "chemo", "##therapy", "≥", "±",
                        "α", "β", "é", "中", "国", "##é", "µ", "μ", "sjogren", "##ogren"}) {
    v.emplace_back(w);
  }
  v.emplace_back("");           // an empty line: never matches
  v.emplace_back("the");        // a repeated token: the last id wins
  return v;
}

const embed::WordPieceTokenizer& wordpiece() {
  static const embed::WordPieceTokenizer tok = [] {
    std::filesystem::path vocab;
    if (const char* env = std::getenv("MEDSEARCH_FUZZ_VOCAB")) vocab = env;
    else if (const char* home = std::getenv("HOME")) vocab = std::filesystem::path(home) / ".cache/medsearch/models/all-minilm-l6-v2/vocab.txt";
    if (!vocab.empty()) {
      auto loaded = embed::WordPieceTokenizer::load(vocab);
      if (loaded) return std::move(loaded).value();
    }
    auto built = embed::WordPieceTokenizer::from_vocab(builtin_vocab());
    FUZZ_CHECK(built.is_ok(), built.status().to_string());
    return std::move(built).value();
  }();
  return tok;
}

void check_analyzer(std::string_view input) {
  static const text::Analyzer full{};  // stemming, stopwords, compound parts
  static const text::Analyzer plain{text::AnalyzerOptions{
      .stem = false, .remove_stopwords = false, .compound_parts = false}};
  static const text::Analyzer porter{text::AnalyzerOptions{.stemmer = "porter", .compound_parts = true}};

  std::vector<text::Token> tokens;
  for (const text::Analyzer* a : {&full, &porter}) {
    tokens.clear();
    a->analyze(input, &tokens);
    uint32_t last = 0;
    for (const auto& t : tokens) {
      FUZZ_CHECK(t.begin < t.end && t.end <= input.size(), "span outside the input");
      FUZZ_CHECK(t.end - t.begin <= text::kMaxTokenBytes, "token longer than kMaxTokenBytes");
      FUZZ_CHECK(!t.term.empty() && valid_utf8(t.term),
                 "term '" + escaped(t.term) + "' of input bytes '" + escaped(input.substr(t.begin, t.end - t.begin)) +
                     "' (stemmer " + a->options().stemmer + ")");
      FUZZ_CHECK(t.position >= last, "positions go back");
      last = t.position;
    }
  }

  tokens.clear();
  plain.analyze(input, &tokens);
  const std::vector<std::string> tokenized = plain.tokenize(input);
  FUZZ_CHECK(tokenized.size() == tokens.size(), "analyze() and tokenize() disagree on the token count");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    FUZZ_CHECK(t.term == tokenized[i], t.term + " vs " + tokenized[i]);
    FUZZ_CHECK(t.position == i, "positions of a plain analyzer are 0, 1, 2, ...");
    FUZZ_CHECK(t.begin < t.end && t.end <= input.size(), "span outside the input");
    const std::vector<std::string> again = plain.tokenize(input.substr(t.begin, t.end - t.begin));
    FUZZ_CHECK(again.size() == 1 && again[0] == t.term,
               "tokenize(span) of '" + t.term + "' gave " + std::to_string(again.size()) + " tokens" +
                   (again.empty() ? "" : ", first '" + again[0] + "'"));
  }
}

void check_wordpiece(std::string_view input) {
  const embed::WordPieceTokenizer& tok = wordpiece();
  const std::vector<std::string> pieces = tok.tokenize(input);
  const std::vector<int32_t> full = tok.encode(input, pieces.size() + 2);
  FUZZ_CHECK(full.size() == pieces.size() + 2, "encode() and tokenize() disagree on the piece count");
  FUZZ_CHECK(full.front() == tok.cls_id() && full.back() == tok.sep_id(), "not [CLS] ... [SEP]");
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int32_t id = full[i + 1];
    FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < tok.vocab_size(), "id outside the vocabulary");
    FUZZ_CHECK(tok.token(id) == pieces[i], "encode() and tokenize() disagree on a piece");
  }
  // Truncation keeps a prefix, whatever the budget.
  for (const size_t max_tokens : {size_t{2}, size_t{3}, 2 + input.size() % 29, size_t{512}}) {
    const std::vector<int32_t> cut = tok.encode(input, max_tokens);
    const size_t keep = std::min(pieces.size(), max_tokens - 2);
    FUZZ_CHECK(cut.size() == keep + 2, "truncated length");
    FUZZ_CHECK(cut.front() == tok.cls_id() && cut.back() == tok.sep_id(), "truncated: not [CLS] ... [SEP]");
    FUZZ_CHECK(std::equal(cut.begin() + 1, cut.end() - 1, full.begin() + 1), "truncation is not a prefix");
  }
  const std::string_view texts[] = {input, input.substr(input.size() / 2), {}};
  std::vector<std::vector<int32_t>> batch;
  tok.encode_batch(texts, 64, &batch);
  FUZZ_CHECK(batch.size() == 3, "batch size");
  for (size_t i = 0; i < 3; ++i) FUZZ_CHECK(batch[i] == tok.encode(texts[i], 64), "encode_batch() differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_analyzer(input);
  check_wordpiece(input);
  return 0;
}
