// analyzer.h: text -> index terms, for BM25 (both documents and queries).
//
// Pipeline: Unicode NFKC normalisation and case folding (utf8proc), then a
// tokenizer that keeps medical tokens whole ("PD-L1" -> "pd-l1", "BRCA1",
// "5-FU", "IIIA", "≥50%", "ramucirumab"), then stopword removal and English
// Snowball stemming (libstemmer) of purely alphabetic tokens. Tokens with
// digits or inner hyphens are kept whole and unstemmed.
//
// Tokenization rules. Segmentation runs on the *input* bytes, so every token
// keeps a byte span into the input; each token is then normalised on its own.
// The rules are UAX#29 word boundaries (Lucene's StandardTokenizer) with a
// medical tweak for hyphens, percentages and comparisons:
//   - Word characters are Unicode letters, marks and numbers (any script:
//     "α", "é", full-width "ＡＢ"). Everything else separates tokens:
//     whitespace, brackets, '/', '+', '=', '"', en/em dashes, emoji, symbols.
//     "(PD-1)" -> "pd-1", "g/dL" -> "g" "dl", "HER2+" -> "her2".
//     A mark never starts a token; soft hyphens and zero-width (non-)joiners
//     inside a word are dropped ("chemo\u00ADtherapy" -> "chemotherapy").
//   - Inside a token (a word character on both sides) these join:
//       '-' (and U+2010, U+2011)  between any word characters: "PD-L1", "5-FU";
//       '.'  letter.letter or digit.digit: "14.6", "e.g." -> "e.g";
//       ','  digit,digit: "1,000";
//       '\'' (and U+2019) after a letter or digit, before a letter: "o'brien".
//     Leading and trailing punctuation is never part of a token: "end." -> "end".
//   - '%' directly after a digit ends the token and belongs to it: "50%".
//   - '≥', '≤', '<', '>', '±' directly before a number start the token:
//     "≥50%", "<49", "p<0.05" -> "p" "<0.05". ASCII "<=" / ">=" before a number
//     are written as "≤" / "≥" in the term (">=50%" -> "≥50%").
//   - A hyphenated token with no digit is split into its parts, each with its
//     own span and position: "non-small" -> "non" "small", "well-tolerated" ->
//     "well" "tolerated". With a digit anywhere it stays whole: "pd-l1",
//     "5-fu", "her2-positive", "covid-19", "anti-pd-1".
//   - A final "'s" is dropped (Lucene's EnglishPossessiveFilter) and is not in
//     the span: "patient's" -> "patient", "BRCA1's" -> "brca1".
//   - Normalisation is NFKC + case folding + accent stripping (utf8proc
//     STRIPMARK): "Sjögren" -> "sjogren", "ＰＤ－Ｌ１" -> "pd-l1", "Straße" ->
//     "strasse", "µg" -> "μg". Pure-ASCII tokens take a fast path that only
//     lower-cases. Tokens that normalise to nothing are dropped without a
//     position. Stripping marks also strips vowel signs of Indic scripts; this
//     analyzer is for English text.
//   - Tokens longer than kMaxTokenBytes input bytes (base64 blobs, long URLs)
//     are dropped without a position. Invalid UTF-8 bytes separate tokens.
// Invariant: for every token t of analyze() or tokenize(),
// tokenize(text.substr(t.begin, t.end - t.begin)) is exactly {t's unstemmed term}.
//
// Stopwords: Lucene's English stop set (is_stopword()); they are matched on
// the normalised token, before stemming, and keep their position, so phrase
// gaps remain. Stemming applies only to tokens made purely of letters.
//
// Thread safety: thread-safe (const methods; stemmer state is per thread).
// Each call borrows a scratch (stemmer + buffers) from a pool owned by the
// Analyzer, under a mutex held only to pop/push the pool; the pool grows to
// the number of threads that analyse at once.
// Cost: linear in the text, about 75 MB/s per thread for analyze() and 130 MB/s
// for tokenize() on the shared corpora; no heap allocation per token beyond
// the term strings themselves (SSO keeps most terms off the heap). Each pooled
// scratch memoises recent stems (4096 entries, ~250 KB), so memory grows with
// the number of concurrent callers, not with the text.
// Preconditions: text.size() < 2^32 (spans are uint32). A moved-from Analyzer
// may only be destroyed or assigned to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/options.h>
#include <medsearch/status.h>

namespace medsearch::text {

struct Token {
  std::string term;       // normalised (and, for analyze(), stemmed) form
  uint32_t position = 0;  // index among all tokens of the text, stopwords included
  uint32_t begin = 0;     // byte span in the *input* text
  uint32_t end = 0;
};

// Longest token, in input bytes, that is indexed (Lucene's default is 255 chars).
inline constexpr std::size_t kMaxTokenBytes = 255;

class Analyzer {
 public:
  // An unknown `options.stemmer` does not throw: stemming is switched off and
  // options().stem reads false. Use create() to get an error instead.
  explicit Analyzer(AnalyzerOptions options = {});
  ~Analyzer();
  Analyzer(Analyzer&&) noexcept;
  Analyzer& operator=(Analyzer&&) noexcept;

  // Validating constructor: InvalidArgument if options.stem is set and
  // libstemmer has no UTF-8 algorithm called options.stemmer.
  static Result<Analyzer> create(AnalyzerOptions options);

  // Index terms of `text`, in order, appended to `out` (not cleared).
  // Positions start at 0 for each call.
  void analyze(std::string_view text, std::vector<Token>* out) const;
  // Convenience: just the terms.
  std::vector<std::string> terms(std::string_view text) const;
  // Normalised, case-folded tokens before stopwords and stemming.
  std::vector<std::string> tokenize(std::string_view text) const;

  const AnalyzerOptions& options() const { return options_; }

 private:
  AnalyzerOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True if `word` (already case-folded) is an English stopword.
bool is_stopword(std::string_view word);

}  // namespace medsearch::text
