// wordpiece_test.cc: normalization, pre-tokenization, WordPiece, special
// tokens, truncation and loading of embed::WordPieceTokenizer. Expected
// pieces follow Hugging Face `tokenizers` 0.22.1; the id-for-id comparison
// with HF on real corpora is tests/python/test_tokenizer_parity.py.
#include <medsearch/tokenizer.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace medsearch::embed {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A small vocabulary; ids are positions.
std::vector<std::string> small_vocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                    // 0-4
          "un", "##aff", "##able", "want", "##ed",                          // 5-9
          "wa", ",", "!", ".", "-",                                         // 10-14
          "(", ")", "a", "##a", "b",                                        // 15-19
          "##b", "ab", "##c", "##bc", "hello",                              // 20-24
          "world", "cafe", "naive", "resume", "中",                         // 25-29
          "国", "i", "##s", "istanbul", "ß",                                // 30-34
          "##ß", "—", "¿", "ひらかな", "x",                                 // 35-39
          "5", "fu", "[", "]", "sep",                                       // 40-44
          "ω", "##μ", "##ε", "##γ", "##α"};                                 // 45-49
}

const WordPieceTokenizer& small() {
  static const WordPieceTokenizer tok = [] {
    auto t = WordPieceTokenizer::from_vocab(small_vocab());
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    return std::move(t).value();
  }();
  return tok;
}

std::vector<std::string> pieces(std::string_view text) { return small().tokenize(text); }

// $MEDSEARCH_MODEL_DIR, else ${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/medsearch}/models/all-minilm-l6-v2
// (the layout tools/fetch_model.sh writes).
std::filesystem::path real_vocab_path() {
  if (const char* dir = std::getenv("MEDSEARCH_MODEL_DIR"); dir && *dir) return std::filesystem::path(dir) / "vocab.txt";
  std::filesystem::path cache;
  if (const char* c = std::getenv("MEDSEARCH_CACHE"); c && *c) {
    cache = c;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    cache = std::filesystem::path(x) / "medsearch";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = std::filesystem::path(home) / ".cache" / "medsearch";
  }
  return cache / "models" / "all-minilm-l6-v2" / "vocab.txt";
}

using Ids = std::vector<int32_t>;

const WordPieceTokenizer* real() {
  static const auto* tok = []() -> const WordPieceTokenizer* {
    auto t = WordPieceTokenizer::load(real_vocab_path());
    if (!t) return nullptr;
    return new WordPieceTokenizer(std::move(t).value());
  }();
  return tok;
}

#define SKIP_WITHOUT_REAL_VOCAB() \
  if (real() == nullptr) GTEST_SKIP() << "no vocab at " << real_vocab_path() << " (run tools/fetch_model.sh)"

// wordpiece.cc's tables of where Hugging Face's Unicode data differs from
// utf8proc's were made against Unicode 15.0. Another utf8proc may classify
// new characters differently: re-run tests/python/test_tokenizer_parity.py
// and update the tables, then this version.
TEST(WordPieceTest, Utf8procIsTheUnicodeVersionOfTheTables) {
  EXPECT_STREQ(utf8proc_unicode_version(), "15.0.0");
}

TEST(WordPieceTest, EmptyAndWhitespaceOnlyGiveClsSep) {
  for (std::string_view text : {"", " ", "  \t\n\r  ", "\xC2\xA0\xE2\x80\xA8\xE3\x80\x80", "\x01\x7F",
                                "\xE2\x80\x8B\xEF\xBB\xBF"}) {
    EXPECT_THAT(small().encode(text), ElementsAre(2, 3)) << "text: '" << text << "'";
    EXPECT_THAT(pieces(text), IsEmpty());
  }
}

TEST(WordPieceTest, ContinuationPieces) {
  EXPECT_THAT(pieces("unaffable"), ElementsAre("un", "##aff", "##able"));
  EXPECT_THAT(pieces("wanted"), ElementsAre("want", "##ed"));
  EXPECT_THAT(small().encode("unaffable wanted"), ElementsAre(2, 5, 6, 7, 8, 9, 3));
}

TEST(WordPieceTest, GreedyLongestMatchFirst) {
  // "ab" then "##c", never "a" + "##bc".
  EXPECT_THAT(pieces("abc"), ElementsAre("ab", "##c"));
  EXPECT_THAT(pieces("aaa"), ElementsAre("a", "##a", "##a"));
}

TEST(WordPieceTest, UnmatchableWordIsOneUnk) {
  // "want" matches but "##x" does not: the whole word is [UNK], not want + [UNK].
  EXPECT_THAT(pieces("wantx"), ElementsAre("[UNK]"));
  EXPECT_THAT(pieces("zebra wanted"), ElementsAre("[UNK]", "want", "##ed"));
  EXPECT_THAT(pieces("≥5"), ElementsAre("[UNK]"));  // ≥ is Sm, not punctuation: one word
}

TEST(WordPieceTest, WordsOverOneHundredCharactersAreUnk) {
  EXPECT_EQ(pieces(std::string(100, 'a')).size(), 100u);
  EXPECT_THAT(pieces(std::string(101, 'a')), ElementsAre("[UNK]"));
  // Characters, not bytes: ß is two bytes.
  std::string eszett;
  for (int i = 0; i < 100; ++i) eszett += "ß";
  EXPECT_EQ(pieces(eszett).size(), 100u);
  EXPECT_THAT(pieces(eszett + "ß"), ElementsAre("[UNK]"));
  // Counted after normalization: an accent stripped by NFD does not count.
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "a\xCC\x81";  // a + U+0301
  EXPECT_EQ(pieces(accented).size(), 100u);
}

TEST(WordPieceTest, PunctuationIsIsolated) {
  EXPECT_THAT(pieces("hello,world!"), ElementsAre("hello", ",", "world", "!"));
  EXPECT_THAT(pieces("5-FU"), ElementsAre("5", "-", "fu"));
  EXPECT_THAT(pieces("(a)"), ElementsAre("(", "a", ")"));
  // Unicode P*: em dash (Pd), inverted question mark (Po).
  EXPECT_THAT(pieces("a\u2014b"), ElementsAre("a", "—", "b"));
  EXPECT_THAT(pieces("¿a"), ElementsAre("¿", "a"));
  // ASCII symbols count as punctuation in BERT ($ is Sc, + is Sm).
  EXPECT_THAT(pieces("a$b+"), ElementsAre("a", "[UNK]", "b", "[UNK]"));
}

TEST(WordPieceTest, LowercaseAndAccentStripping) {
  EXPECT_THAT(pieces("Café NAÏVE Résumé"), ElementsAre("cafe", "naive", "resume"));
  EXPECT_THAT(pieces("CAFE\xCC\x81"), ElementsAre("cafe"));  // already decomposed
  // Turkish dotted capital I: NFD gives I + U+0307, the mark goes, I lower-cases.
  EXPECT_THAT(pieces("İstanbul"), ElementsAre("istanbul"));
  EXPECT_THAT(pieces("ß"), ElementsAre("ß"));  // to_lowercase keeps ß (no case folding)
  EXPECT_THAT(pieces("Ωμέγα"), ElementsAre("ω", "##μ", "##ε", "##γ", "##α"));
  // Ohm sign: NFD maps it to Greek capital omega, which lower-cases.
  EXPECT_THAT(pieces("\u2126"), ElementsAre("ω"));
}

TEST(WordPieceTest, CjkIdeographsAreWords) {
  EXPECT_THAT(pieces("中国"), ElementsAre("中", "国"));
  EXPECT_THAT(pieces("a中b"), ElementsAre("a", "中", "b"));
  // Kana is not in the CJK ranges: one word; the dakuten of が is an Mn after NFD.
  EXPECT_THAT(pieces("ひらがな"), ElementsAre("ひらかな"));
  // A CJK compatibility ideograph is spaced out, then NFD maps it (U+F900 -> U+8C48).
  EXPECT_THAT(pieces("a\uF900b"), ElementsAre("a", "[UNK]", "b"));
}

TEST(WordPieceTest, ControlAndFormatCharactersAreDropped) {
  EXPECT_THAT(pieces(std::string_view("a\0b", 3)), ElementsAre("ab"));
  EXPECT_THAT(pieces("a\x01" "b\x7F"), ElementsAre("ab"));
  EXPECT_THAT(pieces("a\u200Bb"), ElementsAre("ab"));      // zero-width space (Cf)
  EXPECT_THAT(pieces("a\u200Db"), ElementsAre("ab"));      // zero-width joiner (Cf)
  EXPECT_THAT(pieces("\uFEFFab"), ElementsAre("ab"));      // BOM (Cf)
  EXPECT_THAT(pieces("a\uFFFDb"), ElementsAre("ab"));      // replacement character
  EXPECT_THAT(pieces("a\uE000b"), ElementsAre("ab"));      // private use (Co)
  // \v, \f and NEL are White_Space but also Cc: clean_text drops them first.
  EXPECT_THAT(pieces("a\vb"), ElementsAre("ab"));
  EXPECT_THAT(pieces("a\fb"), ElementsAre("ab"));
  EXPECT_THAT(pieces("a\xC2\x85" "b"), ElementsAre("ab"));
  // Invalid UTF-8 is dropped like U+FFFD.
  EXPECT_THAT(pieces("a\xFF" "b\xC3"), ElementsAre("ab"));
}

TEST(WordPieceTest, UnicodeWhitespaceSplits) {
  EXPECT_THAT(pieces("a\tb\r\na"), ElementsAre("a", "b", "a"));
  EXPECT_THAT(pieces("a\u00A0b\u2028a\u3000b\u202Fa"), ElementsAre("a", "b", "a", "b", "a"));
}

TEST(WordPieceTest, SpecialTokensMatchInRawText) {
  EXPECT_THAT(pieces("a[SEP]b"), ElementsAre("a", "[SEP]", "b"));
  EXPECT_THAT(small().encode("[CLS] x [MASK]"), ElementsAre(2, 2, 39, 4, 3));
  // Case-sensitive and before normalization: "[sep]" is ordinary text.
  EXPECT_THAT(pieces("[sep]"), ElementsAre("[", "sep", "]"));
  EXPECT_THAT(pieces("[SE\x01P]"), ElementsAre("[", "sep", "]"));
  EXPECT_THAT(pieces("[[SEP]]"), ElementsAre("[", "[SEP]", "]"));
}

TEST(WordPieceTest, TruncationKeepsClsFirstPiecesSep) {
  // 1 + 6 pieces + 1.
  const std::string text = "unaffable wanted a";
  EXPECT_THAT(small().encode(text, 512), ElementsAre(2, 5, 6, 7, 8, 9, 17, 3));
  EXPECT_THAT(small().encode(text, 8), ElementsAre(2, 5, 6, 7, 8, 9, 17, 3));
  EXPECT_THAT(small().encode(text, 7), ElementsAre(2, 5, 6, 7, 8, 9, 3));
  EXPECT_THAT(small().encode(text, 4), ElementsAre(2, 5, 6, 3));  // cut inside a word
  EXPECT_THAT(small().encode(text, 2), ElementsAre(2, 3));
  EXPECT_THAT(small().encode("a [SEP] b", 3), ElementsAre(2, 17, 3));
  std::vector<int32_t> out = {7, 7, 7};
  small().encode("hello", 512, &out);  // clears *out first
  EXPECT_THAT(out, ElementsAre(2, 24, 3));
}

TEST(WordPieceTest, EncodeBatchMatchesEncode) {
  const std::vector<std::string> texts = {"", "hello world", "unaffable", "Café, 中国!", std::string(300, 'a')};
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<std::vector<int32_t>> out;
  small().encode_batch(views, 6, &out);
  ASSERT_EQ(out.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(out[i], small().encode(texts[i], 6)) << texts[i];
}

TEST(WordPieceTest, ConcurrentEncodeIsDeterministic) {
  const std::string text = "Café naïve résumé, unaffable: 中国 İstanbul wanted! ";
  const std::vector<int32_t> expected = small().encode(text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int32_t> ids;
      for (int i = 0; i < 2000; ++i) {
        small().encode(text, 512, &ids);
        mismatches[t] += ids != expected;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(WordPieceTest, VocabularyLookup) {
  EXPECT_EQ(small().vocab_size(), small_vocab().size());
  EXPECT_EQ(small().cls_id(), 2);
  EXPECT_EQ(small().sep_id(), 3);
  EXPECT_EQ(small().unk_id(), 1);
  EXPECT_EQ(small().pad_id(), 0);
  EXPECT_EQ(small().token_to_id("##aff"), 6);
  EXPECT_EQ(small().token_to_id("##"), -1);
  EXPECT_EQ(small().token_to_id(""), -1);
  EXPECT_EQ(small().token(24), "hello");
  // A repeated token takes the id of its last line, as HF's vocab reader does.
  auto vocab = small_vocab();
  vocab.push_back("hello");
  auto dup = WordPieceTokenizer::from_vocab(vocab);
  ASSERT_TRUE(dup.is_ok());
  EXPECT_EQ(dup->token_to_id("hello"), static_cast<int32_t>(vocab.size() - 1));
}

TEST(WordPieceTest, RejectsBadVocabularies) {
  auto no_unk = small_vocab();
  no_unk[1] = "[UNKNOWN]";
  EXPECT_EQ(WordPieceTokenizer::from_vocab(no_unk).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WordPieceTokenizer::from_vocab({}).status().code(), StatusCode::kInvalidArgument);
  auto bad_utf8 = small_vocab();
  bad_utf8.push_back("\xC3");
  EXPECT_EQ(WordPieceTokenizer::from_vocab(bad_utf8).status().code(), StatusCode::kInvalidArgument);
  // No [MASK] is fine.
  auto no_mask = small_vocab();
  no_mask[4] = "[unused0]";
  EXPECT_TRUE(WordPieceTokenizer::from_vocab(no_mask).is_ok());
}

TEST(WordPieceTest, LoadReadsLinesLikeHuggingFace) {
  const auto dir = std::filesystem::temp_directory_path() / ("wordpiece_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "vocab.txt";
  {
    std::ofstream f(path, std::ios::binary);
    // CRLF and trailing blanks are trimmed; an empty line still takes an id.
    f << "[PAD]\r\n[UNK]  \n[CLS]\n[SEP]\t\n\nhello\nworld";
  }
  auto tok = WordPieceTokenizer::load(path);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ(tok->vocab_size(), 7u);
  EXPECT_THAT(tok->encode("Hello WORLD"), ElementsAre(2, 5, 6, 3));
  EXPECT_EQ(tok->token(1), "[UNK]");

  EXPECT_EQ(WordPieceTokenizer::load(dir / "missing.txt").status().code(), StatusCode::kNotFound);
  {
    std::ofstream f(path, std::ios::binary);
    f << "[PAD]\nhello\n";
  }
  EXPECT_EQ(WordPieceTokenizer::load(path).status().code(), StatusCode::kCorrupt);
  std::filesystem::remove_all(dir);
}

// Ids from Hugging Face tokenizers 0.22.1 with all-MiniLM-L6-v2's tokenizer.json.
TEST(WordPieceRealVocabTest, MatchesHuggingFaceIds) {
  SKIP_WITHOUT_REAL_VOCAB();
  const WordPieceTokenizer& tok = *real();
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.encode("Hello, world!"), (Ids{101, 7592, 1010, 2088, 999, 102}));
  EXPECT_EQ(tok.encode("Pembrolizumab for PD-L1 ≥50% NSCLC."),
            (Ids{101, 21877, 14905, 13153, 10993, 12248, 2497, 2005, 22851, 1011, 1048, 2487, 1609, 12376, 1003,
                 24978, 20464, 2278, 1012, 102}));
  EXPECT_EQ(tok.encode("5-FU 1,000.5mg/m²"),
            (Ids{101, 1019, 1011, 11865, 1015, 1010, 2199, 1012, 1019, 24798, 1013, 7030, 102}));
  EXPECT_EQ(tok.encode("İstanbul Straße Ωμέγα"),
            (Ids{101, 9960, 2358, 27807, 1179, 29728, 29723, 29721, 14608, 102}));
  EXPECT_EQ(tok.encode("N-(4-hydroxyphenyl)retinamide"),
            (Ids{101, 1050, 1011, 1006, 1018, 1011, 18479, 18037, 8458, 2368, 8516, 1007, 2128, 13770, 24284, 102}));
  EXPECT_EQ(tok.encode("癌症治疗"), (Ids{101, 100, 100, 1900, 100, 102}));
  EXPECT_EQ(tok.encode("がん"), (Ids{101, 1651, 30217, 102}));  // が -> か + dakuten (Mn, dropped)
  EXPECT_EQ(tok.encode("암 치료"), (Ids{101, 1463, 30006, 30023, 1465, 30019, 29994, 30013, 102}));  // NFD: jamo
  EXPECT_EQ(tok.encode("Zürich a\u00A0b\u200Bc"), (Ids{101, 10204, 1037, 4647, 102}));
  EXPECT_EQ(tok.encode("[CLS] x [SEP]"), (Ids{101, 101, 1060, 102, 102}));
}

TEST(WordPieceRealVocabTest, TruncatesLongText) {
  SKIP_WITHOUT_REAL_VOCAB();
  const WordPieceTokenizer& tok = *real();
  std::string text;
  for (int i = 0; i < 400; ++i) text += "pembrolizumab ";  // 6 pieces each
  const auto full = tok.encode(text, SIZE_MAX);
  ASSERT_EQ(full.size(), 2 + 400 * 6u);
  for (size_t max : {256u, 512u}) {
    const auto cut = tok.encode(text, max);
    ASSERT_EQ(cut.size(), max);
    EXPECT_EQ(cut.front(), 101);
    EXPECT_EQ(cut.back(), 102);
    EXPECT_TRUE(std::equal(cut.begin(), cut.end() - 1, full.begin()));
  }
}

}  // namespace
}  // namespace medsearch::embed
