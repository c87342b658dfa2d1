// build_pool() (core/rank/features.h) on a four-passage corpus built here,
// with every one of the kNumFeatures features of every pooled passage
// checked against a value worked out by hand from the texts, the two lists
// and the vectors; then the cases where parts of the input are missing (no
// query vector, no dense list, no optional corpus spans, nothing at all), and
// the feature names that a reranker model file depends on.
// features_test.cc checks some of these features on a real Index built from
// markdown pages; this file drives build_pool() directly, so every input is
// known exactly and every feature gets an expected value.
#include "core/rank/features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/lexical/bm25_index.h"
#include "core/text/analyzer.h"

namespace medsearch::rank {
namespace {

using lexical::QueryTerm;
using lexical::ScoredPassage;

// BM25 parameters of the corpus (not the defaults, so none is assumed).
constexpr double kK1 = 1.2, kB = 0.75, kHeadingWeight = 0.5;
constexpr double kPassages = 4;

// Lucene idf and one term's BM25 part in one field, from the formula.
double idf(double df) { return std::log(1.0 + (kPassages - df + 0.5) / (df + 0.5)); }
double part(double idf, double tf, double len, double avg_len) {
  return idf * tf / (tf + kK1 * (1.0 - kB + kB * len / avg_len));
}

// Two documents, four passages:
//   passage  doc  section  body                  heading       vector
//   0        0    0        "ALPHA beta"          "alpha"       (1, 0)
//   1        1    1        "beta gamma gamma"    ""            (0, 1)
//   2        1    2        "gamma delta"         "beta"        (0.6, 0.8)
//   3        1    2        "delta beta alpha"    "Alpha Beta"  (0.8, 0.6)
// Document 0 is for health professionals, document 1 for patients.
struct TinyCorpus {
  const std::vector<std::string> body = {"ALPHA beta", "beta gamma gamma", "gamma delta", "delta beta alpha"};
  const std::vector<std::string> heading = {"alpha", "", "beta", "Alpha Beta"};
  const std::vector<std::vector<std::string>> heading_paths = {{"alpha"}, {}, {"beta"}, {"Alpha Beta"}};
  const std::vector<uint32_t> passage_doc = {0, 1, 1, 1};
  const std::vector<uint32_t> doc_first_passage = {0, 1, 4};
  const std::vector<float> vectors = {1, 0, 0, 1, 0.6f, 0.8f, 0.8f, 0.6f};
  const std::vector<uint32_t> passage_section = {0, 1, 2, 2};
  const std::vector<uint8_t> doc_audience = {1, 2};
  const std::vector<float> audience_direction = {0, 1};
  const std::vector<float> heading_commonness = {0.25f, 0.5f, 0.75f, 1.0f};
  text::Analyzer analyzer{text::AnalyzerOptions{.stem = false}};
  lexical::Bm25Index bm25;

  TinyCorpus() {
    auto built = lexical::Bm25Index::build(
        analyzer, 4,
        [&](uint32_t p, lexical::Field f) -> std::string_view { return f == lexical::kBody ? body[p] : heading[p]; },
        lexical::Bm25Params{.k1 = static_cast<float>(kK1), .b = static_cast<float>(kB),
                            .heading_weight = static_cast<float>(kHeadingWeight)});
    EXPECT_TRUE(built.is_ok()) << built.status().to_string();
    bm25 = std::move(built).value();
  }

  CorpusView view() const {
    CorpusView v;
    v.bm25 = &bm25;
    v.passage_doc = passage_doc;
    v.doc_first_passage = doc_first_passage;
    v.vectors = vectors;
    v.dim = 2;
    v.passage_section = passage_section;
    v.doc_audience = doc_audience;
    v.audience_direction = audience_direction;
    v.passage_heading_commonness = heading_commonness;
    v.body_text = [this](uint32_t p) -> std::string_view { return body[p]; };
    v.heading_path = [this](uint32_t p) -> const std::vector<std::string>& { return heading_paths[p]; };
    return v;
  }
  uint32_t term(const char* t) const {
    const auto id = bm25.find_term(t);
    EXPECT_TRUE(id.has_value()) << t;
    return id.value_or(0);
  }
};

// The query "beta alpha beta": alpha once, beta twice.
constexpr double kWa = 1, kWb = 2;
// The two lists, best first, as the retrievers would return them.
const std::vector<ScoredPassage> kBm25List = {{0, 3.0f}, {3, 2.0f}};
const std::vector<ScoredPassage> kDenseList = {{2, 1.0f}, {3, 0.96f}, {0, 0.6f}};
const std::vector<float> kQueryVector = {0.6f, 0.8f};

std::vector<QueryTerm> query_terms(const TinyCorpus& c) {
  return {{c.term("alpha"), static_cast<float>(kWa)}, {c.term("beta"), static_cast<float>(kWb)}};
}

void expect_features(const FeatureVector& got, const std::array<double, kNumFeatures>& want, uint32_t passage) {
  for (uint32_t k = 0; k < kNumFeatures; ++k) {
    EXPECT_NEAR(got[k], want[k], 2e-5) << "passage " << passage << ", feature " << feature_names()[k];
  }
}

TEST(FeaturesUnit, EveryFeatureMatchesAHandComputation) {
  const TinyCorpus c;
  const auto terms = query_terms(c);
  const std::vector<QueryPhrase> phrases = {{"alpha beta", c.term("alpha"), c.term("beta")},
                                            {"beta alpha", c.term("beta"), c.term("alpha")}};
  const auto pool = build_pool(c.view(), terms, kQueryVector, kBm25List, kDenseList, phrases);

  // Each passage once, in first-seen order: the BM25 list, then the dense one.
  ASSERT_EQ(pool.size(), 3u);
  EXPECT_EQ(pool[0].passage, 0u);
  EXPECT_EQ(pool[1].passage, 3u);
  EXPECT_EQ(pool[2].passage, 2u);

  // Field statistics: body lengths 2, 3, 2, 3 (average 2.5), heading lengths
  // 1, 0, 1, 2 (average 1). Body df: alpha 2, beta 3; heading df: alpha 2, beta 2.
  const double ib_a = idf(2), ib_b = idf(3), ih_a = idf(2), ih_b = idf(2);
  struct Parts {
    double body_a, body_b, head_a, head_b;
  };
  const Parts p0{part(ib_a, 1, 2, 2.5), part(ib_b, 1, 2, 2.5), part(ih_a, 1, 1, 1.0), 0};
  const Parts p3{part(ib_a, 1, 3, 2.5), part(ib_b, 1, 3, 2.5), part(ih_a, 1, 2, 1.0), part(ih_b, 1, 2, 1.0)};
  const Parts p2{0, 0, 0, part(ih_b, 1, 1, 1.0)};
  const double idf_body = kWa * ib_a + kWb * ib_b;  // the query's idf mass per field
  const double idf_head = kWa * ih_a + kWb * ih_b;
  // Dense-led support: of the dense list (2, 3, 0), alpha is in 3 and 0, beta in all three.
  const double s_a = 2.0 / 3.0, s_b = 1.0;
  const double idf_led = s_a * kWa * ib_a + s_b * kWb * ib_b;

  auto body = [&](const Parts& p) { return kWa * p.body_a + kWb * p.body_b; };
  auto head = [&](const Parts& p) { return kWa * p.head_a + kWb * p.head_b; };
  auto bm25 = [&](const Parts& p) { return body(p) + kHeadingWeight * head(p); };
  auto led = [&](const Parts& p) {
    return s_a * kWa * (p.body_a + kHeadingWeight * p.head_a) + s_b * kWb * (p.body_b + kHeadingWeight * p.head_b);
  };
  const double best_bm25 = std::max({bm25(p0), bm25(p3), bm25(p2)});
  const double best_led = std::max({led(p0), led(p3), led(p2)});
  // Cosines with (0.6, 0.8): passage 0 0.6, passage 3 0.96, passage 2 1.0.
  const double d0 = 0.6, d3 = 0.96, d2 = 1.0, best = 1.0;
  const double mean = (d0 + d3 + d2) / 3;
  const double sd = std::sqrt(((d0 - mean) * (d0 - mean) + (d3 - mean) * (d3 - mean) + (d2 - mean) * (d2 - mean)) / 3);
  // The query along the audience direction (0, 1): 0.8; document 0 is hp (-), 1 patient (+).
  const double aud = 0.8;

  std::array<double, kNumFeatures> w0{}, w3{}, w2{};
  // Passage 0: BM25 rank 0, dense rank 2; first passage of document 0, alone in its document and section.
  w0[kBm25] = bm25(p0);
  w0[kBm25Rel] = bm25(p0) / best_bm25;
  w0[kBodyIdfNorm] = body(p0) / idf_body;
  w0[kHeadingIdfNorm] = head(p0) / idf_head;
  w0[kDense] = d0;
  w0[kDenseGap] = d0 - best;
  w0[kBm25Rank] = std::log2(2.0 + 0);
  w0[kDenseRank] = std::log2(2.0 + 2);
  w0[kCoverBody] = 1;                         // alpha and beta in the body
  w0[kCoverHeading] = kWa * ib_a / idf_body;  // alpha only (weighted by body idf)
  w0[kCoverAny] = 1;
  w0[kLogLength] = std::log1p(2.0);
  w0[kFirstPassage] = 1;
  w0[kLogOrdinal] = 0;
  w0[kDocSupport] = std::log1p(1.0);
  w0[kDocDenseGap] = d0 - best;
  w0[kRrf] = 60.0 / 61 + 60.0 / 63;
  w0[kQueryTerms] = std::log1p(2.0);
  w0[kSectionSupport] = std::log1p(1.0);
  w0[kSectionDenseGap] = d0 - best;
  w0[kAudienceDense] = -aud;
  w0[kBm25DenseLed] = led(p0);
  w0[kBm25DenseLedRel] = led(p0) / best_led;
  w0[kCoverDenseLed] = 1;
  w0[kHeadingCommonness] = 0.25;
  w0[kPhraseMatch] = 0.5;  // "ALPHA beta" holds "alpha beta", not "beta alpha"
  w0[kDenseZ] = (d0 - mean) / sd;
  // Passage 3: rank 1 in both lists; third passage of document 1, which has 3 and 2 in the pool, as has its section.
  w3[kBm25] = bm25(p3);
  w3[kBm25Rel] = bm25(p3) / best_bm25;
  w3[kBodyIdfNorm] = body(p3) / idf_body;
  w3[kHeadingIdfNorm] = head(p3) / idf_head;
  w3[kDense] = d3;
  w3[kDenseGap] = d3 - best;
  w3[kBm25Rank] = std::log2(2.0 + 1);
  w3[kDenseRank] = std::log2(2.0 + 1);
  w3[kCoverBody] = 1;
  w3[kCoverHeading] = 1;
  w3[kCoverAny] = 1;
  w3[kLogLength] = std::log1p(3.0);
  w3[kFirstPassage] = 0;
  w3[kLogOrdinal] = std::log1p(2.0);
  w3[kDocSupport] = std::log1p(2.0);
  w3[kDocDenseGap] = d2 - best;  // the document's best is passage 2
  w3[kRrf] = 60.0 / 62 + 60.0 / 62;
  w3[kQueryTerms] = std::log1p(2.0);
  w3[kSectionSupport] = std::log1p(2.0);
  w3[kSectionDenseGap] = d2 - best;
  w3[kAudienceDense] = aud;
  w3[kBm25DenseLed] = led(p3);
  w3[kBm25DenseLedRel] = led(p3) / best_led;
  w3[kCoverDenseLed] = 1;
  w3[kHeadingCommonness] = 1.0;
  w3[kPhraseMatch] = 1.0;  // "beta alpha" in the body, "alpha beta" in the heading path
  w3[kDenseZ] = (d3 - mean) / sd;
  // Passage 2: only in the dense list (rank 0; BM25 rank = the list's size, 2); beta in its heading only.
  w2[kBm25] = bm25(p2);
  w2[kBm25Rel] = bm25(p2) / best_bm25;
  w2[kBodyIdfNorm] = 0;
  w2[kHeadingIdfNorm] = head(p2) / idf_head;
  w2[kDense] = d2;
  w2[kDenseGap] = 0;
  w2[kBm25Rank] = std::log2(2.0 + 2);
  w2[kDenseRank] = std::log2(2.0 + 0);
  w2[kCoverBody] = 0;
  w2[kCoverHeading] = kWb * ib_b / idf_body;
  w2[kCoverAny] = kWb * ib_b / idf_body;
  w2[kLogLength] = std::log1p(2.0);
  w2[kFirstPassage] = 0;
  w2[kLogOrdinal] = std::log1p(1.0);
  w2[kDocSupport] = std::log1p(2.0);
  w2[kDocDenseGap] = 0;
  w2[kRrf] = 60.0 / 61;
  w2[kQueryTerms] = std::log1p(2.0);
  w2[kSectionSupport] = std::log1p(2.0);
  w2[kSectionDenseGap] = 0;
  w2[kAudienceDense] = aud;
  w2[kBm25DenseLed] = led(p2);
  w2[kBm25DenseLedRel] = led(p2) / best_led;
  w2[kCoverDenseLed] = s_b * kWb * ib_b / idf_led;
  w2[kHeadingCommonness] = 0.75;
  w2[kPhraseMatch] = 0;  // no alpha: not searched
  w2[kDenseZ] = (d2 - mean) / sd;

  expect_features(pool[0].features, w0, 0);
  expect_features(pool[1].features, w3, 3);
  expect_features(pool[2].features, w2, 2);
  // The raw field scores and cosine ride along for fusion and explanations.
  EXPECT_NEAR(pool[0].body, body(p0), 2e-5);
  EXPECT_NEAR(pool[1].heading, head(p3), 2e-5);
  EXPECT_NEAR(pool[2].dense, d2, 1e-6);
  for (const Candidate& cand : pool) EXPECT_EQ(cand.score, 0.0f);
}

// Without a query vector the dense features are 0; the lexical ones do not change.
TEST(FeaturesUnit, NoQueryVectorZeroesTheDenseFeatures) {
  const TinyCorpus c;
  const auto terms = query_terms(c);
  const auto with = build_pool(c.view(), terms, kQueryVector, kBm25List, kDenseList);
  const auto without = build_pool(c.view(), terms, {}, kBm25List, kDenseList);
  ASSERT_EQ(without.size(), with.size());
  const std::set<uint32_t> dense_features = {kDense,          kDenseGap,         kDocDenseGap, kSectionDenseGap,
                                             kAudienceDense, kDenseZ};
  for (size_t i = 0; i < with.size(); ++i) {
    ASSERT_EQ(without[i].passage, with[i].passage);
    EXPECT_EQ(without[i].dense, 0.0f);
    for (uint32_t k = 0; k < kNumFeatures; ++k) {
      if (dense_features.count(k)) {
        EXPECT_EQ(without[i].features[k], 0.0f) << feature_names()[k];
      } else {
        EXPECT_EQ(without[i].features[k], with[i].features[k]) << feature_names()[k];
      }
    }
  }
}

// Without a dense list every term weighs 1: the dense-led BM25 is the BM25,
// and a passage absent from the (empty) dense list has dense rank 0.
TEST(FeaturesUnit, WithoutADenseListEveryTermWeighsOne) {
  const TinyCorpus c;
  const auto terms = query_terms(c);
  const auto pool = build_pool(c.view(), terms, kQueryVector, kBm25List, {});
  ASSERT_EQ(pool.size(), 2u);
  for (const Candidate& cand : pool) {
    const FeatureVector& f = cand.features;
    EXPECT_NEAR(f[kBm25DenseLed], f[kBm25], 1e-6) << cand.passage;
    EXPECT_NEAR(f[kBm25DenseLedRel], f[kBm25Rel], 1e-6) << cand.passage;
    EXPECT_NEAR(f[kCoverDenseLed], f[kCoverAny], 1e-6) << cand.passage;
    EXPECT_FLOAT_EQ(f[kDenseRank], 1.0f);  // log2(2 + 0)
  }
  EXPECT_FLOAT_EQ(pool[0].features[kRrf], 60.0f / 61);
  EXPECT_FLOAT_EQ(pool[1].features[kRrf], 60.0f / 62);
  // The best BM25 of the pool is the reference: passage 3 scores higher than 0.
  EXPECT_GT(pool[1].features[kBm25], pool[0].features[kBm25]);
  EXPECT_FLOAT_EQ(pool[1].features[kBm25Rel], 1.0f);
}

// The optional corpus parts (sections, audiences, heading commonness, texts
// for phrases) may be empty; their features are then 0.
TEST(FeaturesUnit, OptionalCorpusPartsMayBeEmpty) {
  const TinyCorpus c;
  const auto terms = query_terms(c);
  CorpusView v = c.view();
  v.passage_section = {};
  v.doc_audience = {};  // the direction stays: without labels it applies to no passage
  v.passage_heading_commonness = {};
  v.body_text = nullptr;
  v.heading_path = nullptr;
  const std::vector<QueryPhrase> phrases = {{"alpha beta", c.term("alpha"), c.term("beta")}};
  const auto full = build_pool(c.view(), terms, kQueryVector, kBm25List, kDenseList, phrases);
  const auto bare = build_pool(v, terms, kQueryVector, kBm25List, kDenseList, phrases);
  ASSERT_EQ(bare.size(), full.size());
  const std::set<uint32_t> optional = {kSectionSupport, kSectionDenseGap, kAudienceDense, kHeadingCommonness,
                                       kPhraseMatch};
  bool some_nonzero = false;
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint32_t k = 0; k < kNumFeatures; ++k) {
      if (optional.count(k)) {
        EXPECT_EQ(bare[i].features[k], 0.0f) << feature_names()[k];
        some_nonzero |= full[i].features[k] != 0.0f;
      } else {
        EXPECT_EQ(bare[i].features[k], full[i].features[k]) << feature_names()[k];
      }
    }
  }
  EXPECT_TRUE(some_nonzero);  // the full corpus does set them
  // Labelled passages but no audience direction, or one of the wrong
  // dimension: no audience feature either.
  CorpusView no_direction = c.view();
  no_direction.audience_direction = {};
  CorpusView wrong = c.view();
  const std::vector<float> three = {0, 1, 0};
  wrong.audience_direction = three;
  for (const CorpusView& view : {no_direction, wrong}) {
    for (const Candidate& cand : build_pool(view, terms, kQueryVector, kBm25List, kDenseList)) {
      EXPECT_EQ(cand.features[kAudienceDense], 0.0f) << cand.passage;
    }
  }
}

TEST(FeaturesUnit, EmptyListsGiveAnEmptyPool) {
  const TinyCorpus c;
  EXPECT_TRUE(build_pool(c.view(), query_terms(c), kQueryVector, {}, {}).empty());
  // No query terms: lexical features are 0, the pool is still built from the lists.
  const auto pool = build_pool(c.view(), {}, kQueryVector, {}, kDenseList);
  ASSERT_EQ(pool.size(), 3u);
  for (const Candidate& cand : pool) {
    for (uint32_t k : {kBm25, kBm25Rel, kBodyIdfNorm, kHeadingIdfNorm, kCoverBody, kCoverHeading, kCoverAny,
                       kBm25DenseLed, kBm25DenseLedRel, kCoverDenseLed, kQueryTerms}) {
      EXPECT_EQ(cand.features[k], 0.0f) << feature_names()[k];
    }
    EXPECT_FLOAT_EQ(cand.features[kBm25Rank], 1.0f);  // log2(2 + 0): the BM25 list is empty
  }
}

// The names are stored in reranker model files: one per feature, distinct,
// in enum order.
TEST(FeaturesUnit, FeatureNamesAreOnePerFeatureInEnumOrder) {
  const auto names = feature_names();
  ASSERT_EQ(names.size(), static_cast<size_t>(kNumFeatures));
  std::set<std::string_view> seen;
  for (const std::string_view n : names) {
    EXPECT_FALSE(n.empty());
    EXPECT_EQ(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string_view::npos) << n;
    EXPECT_TRUE(seen.insert(n).second) << "repeated: " << n;
  }
  EXPECT_EQ(names[kBm25], "bm25");
  EXPECT_EQ(names[kDense], "dense");
  EXPECT_EQ(names[kRrf], "rrf");
  EXPECT_EQ(names[kQueryTerms], "query_terms");
  EXPECT_EQ(names[kSectionSupport], "section_support");
  EXPECT_EQ(names[kAudienceDense], "audience_dense");
  EXPECT_EQ(names[kCoverDenseLed], "cover_dense_led");
  EXPECT_EQ(names[kHeadingCommonness], "heading_commonness");
  EXPECT_EQ(names[kDenseZ], "dense_z");
}

TEST(FeaturesUnit, AudienceDirectionNeedsMatchingShapesAndTwoDistinctMeans) {
  const std::vector<uint32_t> passage_doc = {0, 1};
  const std::vector<uint8_t> audience = {1, 2};
  // Patient minus hp: (0, 2) - (0, 0) = (0, 2), normalised to (0, 1).
  const std::vector<float> vectors = {0, 0, 0, 2};
  const auto d = audience_direction(vectors, 2, passage_doc, audience);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_FLOAT_EQ(d[0], 0.0f);
  EXPECT_FLOAT_EQ(d[1], 1.0f);
  // Vectors that are not passages x dim, and equal means (no direction).
  EXPECT_TRUE(audience_direction(std::vector<float>{0, 0, 0}, 2, passage_doc, audience).empty());
  EXPECT_TRUE(audience_direction(vectors, 3, passage_doc, audience).empty());
  EXPECT_TRUE(audience_direction(std::vector<float>{1, 2, 1, 2}, 2, passage_doc, audience).empty());
}

// kPhraseMatch finds the phrase wherever it is in the passage text, in any
// ASCII case, and nowhere else: random texts of a few letters (so the first
// letters recur: the search skips most places by them), holding the phrase or
// near misses at every offset, against a byte-by-byte search.
TEST(FeaturesUnit, PhraseMatchAgreesWithAPlainSearch) {
  const TinyCorpus c;
  const auto terms = query_terms(c);
  const std::vector<QueryPhrase> phrases = {{"alpha beta", c.term("alpha"), c.term("beta")}};
  const std::string needle = phrases[0].text;
  auto plain = [&](std::string_view text) {
    for (size_t i = 0; i + needle.size() <= text.size(); ++i) {
      size_t j = 0;
      while (j < needle.size() && std::tolower(static_cast<unsigned char>(text[i + j])) == needle[j]) ++j;
      if (j == needle.size()) return true;
    }
    return false;
  };
  const std::string pieces[] = {"alpha beta", "ALPHA BETA", "aLpHa bEtA", "alpha  beta", "alphabeta", "alpha bet",
                                "a", "A", "al", "alp", "b", " ", "x", "lpha beta", "ALPHA  B"};
  const std::vector<std::string> no_headings;
  std::mt19937 rng(7);
  size_t found = 0, tested = 0;
  for (size_t length = 0; length < 80; ++length) {
    for (int round = 0; round < 20; ++round) {
      std::string text;
      while (text.size() < length) text += pieces[std::uniform_int_distribution<size_t>(0, std::size(pieces) - 1)(rng)];
      text.resize(length);
      CorpusView v = c.view();
      v.body_text = [&](uint32_t) -> std::string_view { return text; };
      v.heading_path = [&](uint32_t) -> const std::vector<std::string>& { return no_headings; };
      const auto pool = build_pool(v, terms, kQueryVector, kBm25List, kDenseList, phrases);
      ASSERT_EQ(pool[0].passage, 0u);  // holds both words, so it is searched
      const bool expected = plain(text);
      EXPECT_EQ(pool[0].features[kPhraseMatch], expected ? 1.0f : 0.0f) << "\"" << text << "\"";
      found += expected;
      ++tested;
    }
  }
  EXPECT_GT(found, tested / 10);  // both outcomes are common
  EXPECT_LT(found, tested - tested / 10);
}

}  // namespace
}  // namespace medsearch::rank
