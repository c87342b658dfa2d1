// analyzer_test.cc: tokenization rules, stopwords, stemming, spans, Unicode
// and concurrent use of text::Analyzer.
#include "core/text/analyzer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace medsearch::text {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> tokenize(std::string_view text) { return Analyzer().tokenize(text); }

AnalyzerOptions no_stemming() {
  AnalyzerOptions o;
  o.stem = false;
  return o;
}

// Every token's span must be non-empty, inside the text, in order, and must
// re-tokenize to exactly the token's unstemmed term.
void expect_spans_map_back(std::string_view text, const AnalyzerOptions& options) {
  AnalyzerOptions unstemmed = options;
  unstemmed.stem = false;
  unstemmed.compound_parts = false;  // parts lie inside their compound's span; tested apart
  const Analyzer analyzer(unstemmed);
  std::vector<Token> tokens;
  analyzer.analyze(text, &tokens);
  uint32_t last_end = 0;
  int64_t last_position = -1;
  for (const Token& t : tokens) {
    ASSERT_LT(t.begin, t.end) << t.term;
    ASSERT_LE(t.end, text.size()) << t.term;
    EXPECT_GE(t.begin, last_end) << t.term;
    EXPECT_GT(static_cast<int64_t>(t.position), last_position) << t.term;
    const std::string_view span = text.substr(t.begin, t.end - t.begin);
    EXPECT_THAT(analyzer.tokenize(span), ElementsAre(t.term)) << "span '" << span << "'";
    last_end = t.end;
    last_position = t.position;
  }
}

// --- medical tokens -------------------------------------------------------

TEST(AnalyzerTokenize, MedicalTokensStayWhole) {
  EXPECT_THAT(tokenize("PD-L1"), ElementsAre("pd-l1"));
  EXPECT_THAT(tokenize("BRCA1"), ElementsAre("brca1"));
  EXPECT_THAT(tokenize("5-FU"), ElementsAre("5-fu"));
  EXPECT_THAT(tokenize("stage IIIA"), ElementsAre("stage", "iiia"));
  EXPECT_THAT(tokenize("≥50%"), ElementsAre("≥50%"));
  EXPECT_THAT(tokenize("ramucirumab"), ElementsAre("ramucirumab"));
}

TEST(AnalyzerTokenize, HyphenatedTokensWithDigitStayWhole) {
  EXPECT_THAT(tokenize("HER2-positive"), ElementsAre("her2-positive"));
  EXPECT_THAT(tokenize("COVID-19"), ElementsAre("covid-19"));
  EXPECT_THAT(tokenize("anti-PD-1 therapy"), ElementsAre("anti-pd-1", "therapy"));
  EXPECT_THAT(tokenize("Ki-67"), ElementsAre("ki-67"));
  EXPECT_THAT(tokenize("2-3 cycles"), ElementsAre("2-3", "cycles"));
}

TEST(AnalyzerTokenize, AlphabeticHyphenatedWordsSplit) {
  EXPECT_THAT(tokenize("well-tolerated"), ElementsAre("well", "tolerated"));
  EXPECT_THAT(tokenize("gemcitabine-plus-placebo"), ElementsAre("gemcitabine", "plus", "placebo"));
  EXPECT_THAT(tokenize("non-small cell"), ElementsAre("non", "small", "cell"));
}

TEST(AnalyzerTokenize, NumbersKeepInnerPunctuation) {
  EXPECT_THAT(tokenize("14.6 months"), ElementsAre("14.6", "months"));
  EXPECT_THAT(tokenize("1,000 patients"), ElementsAre("1,000", "patients"));
  // A comma or period followed by a space is punctuation, not part of a number.
  EXPECT_THAT(tokenize("in 2019, 45 of 12."), ElementsAre("in", "2019", "45", "of", "12"));
}

TEST(AnalyzerTokenize, SlashSeparates) {
  EXPECT_THAT(tokenize("12 g/dL"), ElementsAre("12", "g", "dl"));
  EXPECT_THAT(tokenize("ER/PR"), ElementsAre("er", "pr"));
}

TEST(AnalyzerTokenize, BracketsAndTrailingPunctuationAreDropped) {
  EXPECT_THAT(tokenize("(PD-1)"), ElementsAre("pd-1"));
  EXPECT_THAT(tokenize("[BRCA2]"), ElementsAre("brca2"));
  EXPECT_THAT(tokenize("surgery. radiation, chemo; trials: yes! no? \"quoted\""),
              ElementsAre("surgery", "radiation", "chemo", "trials", "yes", "no", "quoted"));
  EXPECT_THAT(tokenize("end-"), ElementsAre("end"));
  EXPECT_THAT(tokenize("-5"), ElementsAre("5"));
  EXPECT_THAT(tokenize("a--b"), ElementsAre("a", "b"));
}

TEST(AnalyzerTokenize, PossessiveIsDropped) {
  EXPECT_THAT(tokenize("patient's"), ElementsAre("patient"));
  EXPECT_THAT(tokenize("patients'"), ElementsAre("patients"));
  EXPECT_THAT(tokenize("Hodgkin’s lymphoma"), ElementsAre("hodgkin", "lymphoma"));
  EXPECT_THAT(tokenize("BRCA1's"), ElementsAre("brca1"));
  EXPECT_THAT(tokenize("O'Brien's"), ElementsAre("o'brien"));
  EXPECT_THAT(tokenize("Crohn's-like"), ElementsAre("crohn", "like"));

  const std::string text = "the patient's tumor";
  std::vector<Token> tokens;
  Analyzer(no_stemming()).analyze(text, &tokens);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(text.substr(tokens[0].begin, tokens[0].end - tokens[0].begin), "patient");
}

TEST(AnalyzerTokenize, ComparisonsAndPercentagesAttachToNumbers) {
  EXPECT_THAT(tokenize("<49"), ElementsAre("<49"));
  EXPECT_THAT(tokenize("PD-L1 ≥50% or ≤1%"), ElementsAre("pd-l1", "≥50%", "or", "≤1%"));
  EXPECT_THAT(tokenize("p<0.05"), ElementsAre("p", "<0.05"));
  EXPECT_THAT(tokenize("p <.05"), ElementsAre("p", "<.05"));
  EXPECT_THAT(tokenize("±2.5"), ElementsAre("±2.5"));
  EXPECT_THAT(tokenize("x-50%"), ElementsAre("x-50%"));
  // ASCII digraphs are written as the Unicode symbol so both spellings match.
  EXPECT_THAT(tokenize(">=50%"), ElementsAre("≥50%"));
  EXPECT_THAT(tokenize("<=10"), ElementsAre("≤10"));
  // Detached symbols are separators.
  EXPECT_THAT(tokenize("≥ 50 %"), ElementsAre("50"));
  EXPECT_THAT(tokenize("a > b"), ElementsAre("a", "b"));
  EXPECT_THAT(tokenize("50%ile"), ElementsAre("50%", "ile"));
}

TEST(AnalyzerTokenize, DotsBetweenLettersJoin) {
  // UAX#29 / Lucene StandardTokenizer behaviour.
  EXPECT_THAT(tokenize("e.g., U.S. cancer.gov"), ElementsAre("e.g", "u.s", "cancer.gov"));
}

TEST(AnalyzerTokenize, SymbolsAndOtherDashesSeparate) {
  EXPECT_THAT(tokenize("cancer🙂therapy"), ElementsAre("cancer", "therapy"));
  EXPECT_THAT(tokenize("HER2+ ER− disease"), ElementsAre("her2", "er", "disease"));
  EXPECT_THAT(tokenize("2–3 weeks"), ElementsAre("2", "3", "weeks"));  // en dash
  EXPECT_THAT(tokenize("snake_case a=b ©2024"), ElementsAre("snake", "case", "a", "b", "2024"));
}

// --- Unicode ---------------------------------------------------------------

TEST(AnalyzerUnicode, AccentsFold) {
  EXPECT_THAT(tokenize("Sjögren syndrome"), ElementsAre("sjogren", "syndrome"));
  EXPECT_THAT(tokenize("Sjo\u0308gren"), ElementsAre("sjogren"));  // decomposed ö
  EXPECT_THAT(tokenize("Ménétrier"), ElementsAre("menetrier"));
  EXPECT_EQ(Analyzer().terms("Sjögren's"), Analyzer().terms("sjogren"));
}

TEST(AnalyzerUnicode, FullWidthFoldsViaNfkc) {
  EXPECT_THAT(tokenize("ＰＤ－Ｌ１"), ElementsAre("pd-l1"));
  EXPECT_THAT(tokenize("ＢＲＣＡ１ ２０％"), ElementsAre("brca1", "20%"));
  EXPECT_THAT(tokenize("ﬁbrosis"), ElementsAre("fibrosis"));  // ligature
}

TEST(AnalyzerUnicode, GreekAndOtherLettersAreWordCharacters) {
  EXPECT_THAT(tokenize("α-fetoprotein and β"), ElementsAre("α", "fetoprotein", "and", "β"));
  EXPECT_THAT(tokenize("TNF-α IFN-γ"), ElementsAre("tnf", "α", "ifn", "γ"));
  EXPECT_THAT(tokenize("ΑΒΓ"), ElementsAre("αβγ"));  // Greek capitals fold
  EXPECT_THAT(tokenize("Straße"), ElementsAre("strasse"));
  EXPECT_THAT(tokenize("5 µg"), ElementsAre("5", "μg"));  // MICRO SIGN -> Greek mu
}

TEST(AnalyzerUnicode, TypographicHyphensAndInvisibles) {
  EXPECT_THAT(tokenize("PD\u2010L1 PD\u2011L1"), ElementsAre("pd-l1", "pd-l1"));
  EXPECT_THAT(tokenize("non\u2011small"), ElementsAre("non", "small"));
  EXPECT_THAT(tokenize("chemo\u00ADtherapy"), ElementsAre("chemotherapy"));  // soft hyphen
  EXPECT_THAT(tokenize("a\u200Bb"), ElementsAre("a", "b"));  // zero-width space separates
  EXPECT_THAT(tokenize("\u0301abc"), ElementsAre("abc"));     // a mark never starts a token
  EXPECT_THAT(tokenize("\xEF\xBB\xBFtext"), ElementsAre("text"));  // BOM
  EXPECT_THAT(tokenize("price\u00A0list"), ElementsAre("price", "list"));  // NBSP
}

TEST(AnalyzerUnicode, InvalidUtf8Separates) {
  EXPECT_THAT(tokenize("abc\xFF\xFE" "def"), ElementsAre("abc", "def"));
  EXPECT_THAT(tokenize("abc\xC3"), ElementsAre("abc"));  // truncated sequence at the end
  EXPECT_THAT(tokenize("\xE2\x89"), IsEmpty());
}

// --- empty input, long tokens ----------------------------------------------

TEST(AnalyzerTokenize, EmptyAndBlankInput) {
  const Analyzer analyzer;
  EXPECT_THAT(analyzer.tokenize(""), IsEmpty());
  EXPECT_THAT(analyzer.terms(""), IsEmpty());
  EXPECT_THAT(analyzer.terms(" \t\r\n  \u00A0 "), IsEmpty());
  EXPECT_THAT(analyzer.terms("... --- !!! () / 🙂"), IsEmpty());
  std::vector<Token> tokens;
  analyzer.analyze("   ", &tokens);
  EXPECT_THAT(tokens, IsEmpty());
}

TEST(AnalyzerTokenize, OverlongTokensAreDroppedWithoutPosition) {
  const std::string blob(kMaxTokenBytes + 1, 'a');
  std::vector<Token> tokens;
  Analyzer(no_stemming()).analyze("before " + blob + " after", &tokens);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].term, "before");
  EXPECT_EQ(tokens[1].term, "after");
  EXPECT_EQ(tokens[1].position, 1u);
  EXPECT_THAT(tokenize(std::string(kMaxTokenBytes, 'b')), ElementsAre(std::string(kMaxTokenBytes, 'b')));
}

// --- stopwords -------------------------------------------------------------

TEST(AnalyzerStopwords, LuceneEnglishSet) {
  for (const char* w : {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
                        "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
                        "their", "then", "there", "these", "they", "this", "to", "was", "will",
                        "with"}) {
    EXPECT_TRUE(is_stopword(w)) << w;
  }
  for (const char* w : {"", "cancer", "he", "she", "we", "the ", "The", "therapy", "those"}) {
    EXPECT_FALSE(is_stopword(w)) << w;
  }
}

TEST(AnalyzerStopwords, RemovedButPositionsKeepGaps) {
  std::vector<Token> tokens;
  Analyzer().analyze("The treatment of cancer is surgery", &tokens);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].term, "treatment");
  EXPECT_EQ(tokens[0].position, 1u);
  EXPECT_EQ(tokens[1].term, "cancer");
  EXPECT_EQ(tokens[1].position, 3u);
  EXPECT_EQ(tokens[2].term, "surgeri");
  EXPECT_EQ(tokens[2].position, 5u);
}

TEST(AnalyzerStopwords, MatchedAfterFoldingAndPossessive) {
  EXPECT_THAT(Analyzer().terms("THE It's Ｔｈｅ"), IsEmpty());
  EXPECT_THAT(Analyzer().tokenize("The"), ElementsAre("the"));  // tokenize() keeps them
}

TEST(AnalyzerStopwords, CanBeKept) {
  AnalyzerOptions o = no_stemming();
  o.remove_stopwords = false;
  EXPECT_THAT(Analyzer(o).terms("the role of surgery"), ElementsAre("the", "role", "of", "surgery"));
}

// --- stemming --------------------------------------------------------------

TEST(AnalyzerStemming, EnglishSnowball) {
  const Analyzer analyzer;
  EXPECT_THAT(analyzer.terms("treatments"), ElementsAre("treatment"));
  EXPECT_EQ(analyzer.terms("recurrent"), analyzer.terms("recurrence"));
  EXPECT_EQ(analyzer.terms("tumors"), analyzer.terms("tumor"));
  EXPECT_EQ(analyzer.terms("well-tolerated"), analyzer.terms("well tolerating"));
}

TEST(AnalyzerStemming, OnlyPurelyAlphabeticTokens) {
  const Analyzer analyzer(AnalyzerOptions{.compound_parts = false});
  EXPECT_THAT(analyzer.terms("BRCA1 HER2-positive PD-L1 cancers 14.6 e.g. o'briens"),
              ElementsAre("brca1", "her2-positive", "pd-l1", "cancer", "14.6", "e.g", "o'briens"));
  EXPECT_THAT(analyzer.terms("IIIA IIIB IV"), ElementsAre("iiia", "iiib", "iv"));
}

TEST(AnalyzerCompounds, HyphenatedTokensWithDigitsAlsoIndexTheirParts) {
  const Analyzer analyzer;
  EXPECT_THAT(analyzer.terms("HER2-positive PD-L1"),
              ElementsAre("her2-positive", "her2", "posit", "pd-l1", "pd", "l1"));
  // The parts make the hyphen optional in queries.
  const auto doc = analyzer.terms("HER2-positive");
  for (const auto& t : analyzer.terms("HER2 positive")) {
    EXPECT_NE(std::find(doc.begin(), doc.end(), t), doc.end()) << t;
  }
  // Each part's span maps back into the compound; alphabetic compounds are only split.
  const std::string text = "anti-PD-1 well-tolerated";
  std::vector<Token> tokens;
  analyzer.analyze(text, &tokens);
  std::vector<std::string> spans;
  for (const auto& t : tokens) spans.push_back(text.substr(t.begin, t.end - t.begin));
  EXPECT_THAT(spans, ElementsAre("anti-PD-1", "anti", "PD", "1", "well", "tolerated"));
}

TEST(AnalyzerStemming, CanBeDisabled) {
  const Analyzer analyzer(no_stemming());
  EXPECT_THAT(analyzer.terms("treatments recurrence"), ElementsAre("treatments", "recurrence"));
}

TEST(AnalyzerStemming, PorterAlgorithm) {
  AnalyzerOptions o;
  o.stemmer = "porter";
  const Analyzer analyzer(o);
  EXPECT_TRUE(analyzer.options().stem);
  EXPECT_THAT(analyzer.terms("treatments"), ElementsAre("treatment"));
}

TEST(AnalyzerStemming, UnknownStemmerDisablesStemming) {
  AnalyzerOptions o;
  o.stemmer = "klingon";
  const Analyzer analyzer(o);  // must not throw or crash
  EXPECT_FALSE(analyzer.options().stem);
  EXPECT_THAT(analyzer.terms("treatments"), ElementsAre("treatments"));
}

TEST(AnalyzerStemming, CreateReportsUnknownStemmer) {
  AnalyzerOptions o;
  o.stemmer = "klingon";
  Result<Analyzer> bad = Analyzer::create(o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("klingon"));

  Result<Analyzer> good = Analyzer::create(AnalyzerOptions{});
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_THAT(good->terms("treatments"), ElementsAre("treatment"));

  o.stem = false;  // the name does not matter when stemming is off
  EXPECT_TRUE(Analyzer::create(o).is_ok());
}

// --- positions and spans ---------------------------------------------------

TEST(AnalyzerSpans, PositionsAndSpansMapBackToInput) {
  const std::string text =
      "Patients with PD-L1 ≥50% (TPS) non-small cell lung cancer received "
      "pembrolizumab; the patient's Sjögren syndrome, ＨＥＲ２-positive and "
      "well-tolerated 5-FU (14.6 g/dL) p<0.05 >=50% BRCA1's o’brien chemo\u00ADtherapy.";
  std::vector<Token> tokens;
  Analyzer().analyze(text, &tokens);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens.front().term, "patient");
  EXPECT_EQ(tokens.front().position, 0u);
  EXPECT_EQ(text.substr(tokens[1].begin, tokens[1].end - tokens[1].begin), "PD-L1");
  EXPECT_EQ(tokens[1].position, 2u);  // "with" is a stopword at position 1
  expect_spans_map_back(text, AnalyzerOptions{});

  AnalyzerOptions keep = no_stemming();
  keep.remove_stopwords = false;
  std::vector<Token> all;
  Analyzer(keep).analyze(text, &all);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].position, i) << all[i].term;
}

TEST(AnalyzerSpans, SplitPartsHaveTheirOwnSpans) {
  const std::string text = "gemcitabine-plus-placebo";
  std::vector<Token> tokens;
  Analyzer(no_stemming()).analyze(text, &tokens);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[1].begin, 12u);
  EXPECT_EQ(tokens[1].end, 16u);
  EXPECT_EQ(tokens[2].position, 2u);
}

TEST(AnalyzerSpans, AnalyzeAppendsAndRestartsPositions) {
  const Analyzer analyzer;
  std::vector<Token> tokens;
  analyzer.analyze("surgery", &tokens);
  analyzer.analyze("radiation", &tokens);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[1].position, 0u);
  EXPECT_EQ(tokens[1].begin, 0u);
}

TEST(AnalyzerSpans, TermsMatchAnalyze) {
  const Analyzer analyzer;
  const std::string text = "Recurrent HER2-positive breast cancers after trastuzumab.";
  std::vector<Token> tokens;
  analyzer.analyze(text, &tokens);
  std::vector<std::string> expected;
  for (const Token& t : tokens) expected.push_back(t.term);
  EXPECT_EQ(analyzer.terms(text), expected);
}

// Random mixes of the characters the rules care about (fixed seed), including
// invalid and truncated UTF-8: no crash, and every span maps back.
TEST(AnalyzerSpans, RandomInputMapsBack) {
  static const char* const kPieces[] = {
      "a", "Z", "7", "-", ".", ",", "'", "%", "<", ">", "=", "\u2265", "\u00B1", " ", "/", "(",
      "s", "\u00F6", "o\u0308", "\u0301", "\u00AD", "\u200D", "\u2010", "\u2019", "\uFF21",
      "\uFF11", "\uFF05", "\uFF0D", "\u03B1", "\u00DF", "\uFB01", "\u00BD", "\U0001F642",
      "\xFF", "\xC3", "\xE2\x89", "\n"};
  std::mt19937 rng(42);
  std::uniform_int_distribution<size_t> pick(0, std::size(kPieces) - 1);
  std::uniform_int_distribution<int> length(0, 40);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    for (int i = length(rng); i > 0; --i) text += kPieces[pick(rng)];
    expect_spans_map_back(text, AnalyzerOptions{});
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "input: '" << text << "'";
      break;
    }
  }
}

// Property check over real guideline text from ../shared/data.
TEST(AnalyzerSpans, RealGuidelineTextMapsBack) {
#ifdef MEDSEARCH_SHARED_DATA
  const std::filesystem::path dir = std::filesystem::path(MEDSEARCH_SHARED_DATA) / "nci-pdq" / "treatment";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no corpus at " << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".md") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    expect_spans_map_back(ss.str(), AnalyzerOptions{});
    if (::testing::Test::HasFailure() || ++files == 20) break;
  }
  EXPECT_GT(files, 0);
#else
  GTEST_SKIP() << "MEDSEARCH_SHARED_DATA not defined";
#endif
}

// --- lifetime and threads ----------------------------------------------------

TEST(AnalyzerThreads, MoveKeepsWorking) {
  Analyzer a;
  Analyzer b(std::move(a));
  EXPECT_THAT(b.terms("treatments"), ElementsAre("treatment"));
  Analyzer c(no_stemming());
  c = std::move(b);
  EXPECT_THAT(c.terms("treatments"), ElementsAre("treatment"));
}

TEST(AnalyzerThreads, ConcurrentAnalyzeGivesIdenticalResults) {
  const std::vector<std::string> texts = {
      "Patients with recurrent HER2-positive breast cancer received trastuzumab.",
      "PD-L1 ≥50% non-small cell lung cancer: pembrolizumab is well-tolerated.",
      "Sjögren's syndrome and ＢＲＣＡ１ mutations; 5-FU (14.6 g/dL) p<0.05.",
      "The treatments for stage IIIA disease include chemotherapies and radiation.",
  };
  const Analyzer analyzer;
  std::vector<std::vector<std::string>> expected;
  for (const auto& t : texts) expected.push_back(analyzer.terms(t));

  constexpr int kThreads = 8;
  constexpr int kIterations = 300;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Token> tokens;
      for (int i = 0; i < kIterations; ++i) {
        const size_t k = static_cast<size_t>(i + t) % texts.size();
        tokens.clear();
        analyzer.analyze(texts[k], &tokens);
        std::vector<std::string> got;
        for (auto& tok : tokens) got.push_back(tok.term);
        if (got != expected[k]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace medsearch::text
