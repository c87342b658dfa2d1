// The structure-, audience- and dense-led features of the candidate pool
// (features.h), checked on a small guideline-like corpus against values
// computed here by hand from the index's own passages and vectors.
#include "core/rank/features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <medsearch/corpus.h>
#include <medsearch/index.h>

#include "core/text/analyzer.h"
#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

io::Document page(std::string id, std::string audience_path, std::string body) {
  io::Document d;
  d.doc_id = id;
  d.corpus = "guides";
  d.title = id;
  d.url = "https://www.cancer.gov/types/x/" + audience_path + "/" + id;
  io::derive_from_url(d.url, &d.audience, &d.cancer_type);
  d.format = io::DocFormat::kMarkdown;
  d.body = std::move(body);
  return d;
}

std::vector<io::Document> pages() {
  std::vector<io::Document> docs;
  // "Follow-up care" is a heading on three pages; each treatment heading on one.
  const char* kinds[] = {"mesothelioma", "glioma", "leukemia"};
  for (int i = 0; i < 3; ++i) {
    const std::string k = kinds[i];
    docs.push_back(page(k + "-hp", i == 1 ? "patient" : "hp",
                        "# " + k + " treatment\n\n## Treatment of recurrent " + k + "\n\n"
                        "When first-line chemotherapy stops working, second-line options for " + k +
                        " include nivolumab and a clinical trial.\n\n## Follow-up care\n\n"
                        "Tests are repeated to see whether treatment is working and how the " + k + " responds.\n"));
  }
  docs.push_back(page("memory", "patient",
                      "# Memory problems\n\n## Chemo brain\n\nSome people call memory problems after "
                      "chemotherapy chemo brain. The brain may feel foggy.\n"));
  docs.push_back(page("brain-chemo", "hp",
                      "# Brain tumors\n\n## Chemotherapy\n\nChemotherapy for brain tumors crosses the blood-brain "
                      "barrier; the brain is treated with temozolomide.\n"));
  return docs;
}

std::unique_ptr<Index> build(std::vector<io::Document> docs) {
  auto index = Index::build(std::move(docs), BuildOptions{}, nullptr, std::make_shared<testing::TinyEmbedder>());
  EXPECT_TRUE(index.is_ok()) << index.status().to_string();
  return std::move(index).value();
}

std::vector<rank::Candidate> pool(const Index& index, std::string_view q) {
  SearchOptions o;
  o.mode = SearchMode::kRerank;
  o.candidates = 50;
  auto p = index.candidate_pool(q, o);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return std::move(p).value();
}

std::string last_heading(const Index& index, uint32_t p) {
  const auto hit = index.snapshot()->passage(p);
  return hit.heading_path.empty() ? "" : hit.heading_path.back();
}

TEST(Features, HeadingCommonnessCountsPagesWithTheHeading) {
  auto index = build(pages());
  for (const auto& c : pool(*index, "follow-up care for recurrent mesothelioma")) {
    const std::string h = last_heading(*index, c.passage);
    const float pages_with_it = h == "Follow-up care" ? 3.0f : 1.0f;
    EXPECT_FLOAT_EQ(c.features[rank::kHeadingCommonness], std::log1p(pages_with_it)) << h;
  }
}

TEST(Features, PhraseMatchNeedsTheWordsSideBySide) {
  auto index = build(pages());
  bool memory = false, brain = false;
  for (const auto& c : pool(*index, "chemo brain")) {
    const auto hit = index->snapshot()->passage(c.passage);
    if (hit.doc_id == "memory") {
      EXPECT_FLOAT_EQ(c.features[rank::kPhraseMatch], 1.0f);
      memory = true;
    }
    if (hit.doc_id == "brain-chemo") {  // "chemotherapy" and "brain", never "chemo brain"
      EXPECT_FLOAT_EQ(c.features[rank::kPhraseMatch], 0.0f);
      brain = true;
    }
  }
  EXPECT_TRUE(memory && brain);
  // One word: no pairs, no phrase feature; a stopword between two words breaks the pair.
  for (const auto& c : pool(*index, "chemo")) EXPECT_EQ(c.features[rank::kPhraseMatch], 0.0f);
  // Pairs as the query spells them; a stopword between two words breaks the
  // pair, and a word no passage has leaves its pairs out.
  std::string words;
  for (int i = 0; i < 100; ++i) words += "word" + std::to_string(i) + " ";
  text::Analyzer analyzer;
  const std::string texts[] = {"chemo brain memory treatment", words};
  auto built = lexical::Bm25Index::build(analyzer, 2, [&](uint32_t i, lexical::Field f) -> std::string_view {
    return f == lexical::kBody ? std::string_view(texts[i]) : std::string_view();
  }, lexical::Bm25Params{});
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  const lexical::Bm25Index& bm25 = *built;
  std::vector<text::Token> tokens;
  const std::string q = "Chemo Brain after the treatment zzzunknown memory";
  analyzer.analyze(q, &tokens);
  const auto phrases = rank::query_phrases(q, tokens, bm25);
  ASSERT_EQ(phrases.size(), 1u);
  EXPECT_EQ(phrases[0].text, "chemo brain");
  EXPECT_EQ(phrases[0].first_term, bm25.find_term("chemo"));
  // A pasted page gives at most kMaxPhrases pairs, the first ones.
  analyzer.analyze(words, &tokens);
  const auto capped = rank::query_phrases(words, tokens, bm25);
  ASSERT_EQ(capped.size(), rank::kMaxPhrases);
  EXPECT_EQ(capped[0].text, "word0 word1");
}

TEST(Features, SectionSupportAndDenseZAreOverThePool) {
  auto index = build(pages());
  const auto cands = pool(*index, "second-line options when chemotherapy stops working");
  ASSERT_GT(cands.size(), 3u);
  std::map<std::string, std::pair<int, float>> sections;  // doc + heading path -> (passages, best cosine)
  double mean = 0;
  for (const auto& c : cands) mean += c.dense;
  mean /= static_cast<double>(cands.size());
  double var = 0;
  for (const auto& c : cands) var += (c.dense - mean) * (c.dense - mean);
  const double sd = std::sqrt(var / static_cast<double>(cands.size()));
  float best = -1;
  for (const auto& c : cands) {
    const auto hit = index->snapshot()->passage(c.passage);
    std::string key = hit.doc_id;
    for (const auto& h : hit.heading_path) key += " > " + h;
    auto& s = sections[key];
    s.first += 1;
    s.second = std::max(s.second == 0 ? -1.0f : s.second, c.dense);
    best = std::max(best, c.dense);
    EXPECT_NEAR(c.features[rank::kDenseZ], (c.dense - mean) / sd, 1e-4);
  }
  for (const auto& c : cands) {
    const auto hit = index->snapshot()->passage(c.passage);
    std::string key = hit.doc_id;
    for (const auto& h : hit.heading_path) key += " > " + h;
    EXPECT_FLOAT_EQ(c.features[rank::kSectionSupport], std::log1p(static_cast<float>(sections[key].first)));
    EXPECT_NEAR(c.features[rank::kSectionDenseGap], sections[key].second - best, 1e-6);
  }
}

// A term's dense-led weight is its share of the dense top 10 that contain it,
// so the dense-led BM25 never exceeds the plain one.
TEST(Features, DenseLedWeightsNeverExceedPlainBm25) {
  auto index = build(pages());
  for (const char* q : {"what happens when first-line treatment for mesothelioma stops working", "chemo brain",
                        "nivolumab"}) {
    for (const auto& c : pool(*index, q)) {
      EXPECT_LE(c.features[rank::kBm25DenseLed], c.features[rank::kBm25] + 1e-4f) << q;
      EXPECT_GE(c.features[rank::kBm25DenseLed], 0.0f);
      EXPECT_LE(c.features[rank::kCoverDenseLed], 1.0f + 1e-6f);
      EXPECT_LE(c.features[rank::kBm25DenseLedRel], 1.0f + 1e-6f);
    }
  }
  // One term: its weight is the share of the dense top 10 with a BM25 score,
  // and every passage's dense-led BM25 is that share of its BM25.
  for (const char* q : {"chemotherapy", "nivolumab", "brain"}) {
    const auto cands = pool(*index, q);
    int top = 0, containing = 0;
    for (const auto& c : cands) {
      if (c.features[rank::kDenseRank] < std::log2(2.0f + rank::kDenseLedDepth)) {
        ++top;
        containing += c.features[rank::kBm25] > 0;
      }
    }
    ASSERT_GT(top, 0) << q;
    const float share = static_cast<float>(containing) / static_cast<float>(top);
    for (const auto& c : cands) EXPECT_NEAR(c.features[rank::kBm25DenseLed], share * c.features[rank::kBm25], 1e-4) << q;
  }
}

TEST(Features, AudienceDirectionPointsFromHpToPatientPassages) {
  // Two hp rows along e0, two patient rows along e1, one unlabelled row along e2.
  const uint32_t dim = 3;
  const std::vector<float> vectors = {1, 0, 0, 0.8f, 0.6f, 0, 0, 1, 0, 0, 0.6f, 0.8f, 0, 0, 1};
  const std::vector<uint32_t> passage_doc = {0, 0, 1, 1, 2};
  const std::vector<uint8_t> audience = {1, 2, 0};
  const auto d = rank::audience_direction(vectors, dim, passage_doc, audience);
  ASSERT_EQ(d.size(), dim);
  // mean patient (0, 0.8, 0.4) - mean hp (0.9, 0.3, 0) = (-0.9, 0.5, 0.4), normalised.
  const float n = std::sqrt(0.81f + 0.25f + 0.16f);
  EXPECT_NEAR(d[0], -0.9f / n, 1e-6);
  EXPECT_NEAR(d[1], 0.5f / n, 1e-6);
  EXPECT_NEAR(d[2], 0.4f / n, 1e-6);
  // Without one of the audiences, or without vectors, there is no direction.
  EXPECT_TRUE(rank::audience_direction(vectors, dim, passage_doc, std::vector<uint8_t>{1, 1, 0}).empty());
  EXPECT_TRUE(rank::audience_direction({}, 0, passage_doc, audience).empty());
}

TEST(Features, AudienceFeatureHasOppositeSignsForTheTwoVersions) {
  auto index = build(pages());
  std::set<float> hp, patient;
  for (const auto& c : pool(*index, "what if the treatment stops working for my dad's mesothelioma")) {
    const auto hit = index->snapshot()->passage(c.passage);
    (hit.audience == "patient" ? patient : hp).insert(c.features[rank::kAudienceDense]);
  }
  ASSERT_EQ(hp.size(), 1u);  // one query: the same magnitude, sign by audience
  ASSERT_EQ(patient.size(), 1u);
  EXPECT_NE(*hp.begin(), 0.0f);
  EXPECT_FLOAT_EQ(*hp.begin(), -*patient.begin());
}

TEST(Features, UnknownShareCountsTokensTheIndexLacks) {
  auto index = build(pages());
  EXPECT_FLOAT_EQ(index->snapshot()->unknown_share("nivolumab glioma"), 0.0f);
  EXPECT_FLOAT_EQ(index->snapshot()->unknown_share("nivolumab dichloroacetate"), 0.5f);
  EXPECT_FLOAT_EQ(index->snapshot()->unknown_share("zzzqqq"), 1.0f);
  EXPECT_FLOAT_EQ(index->snapshot()->unknown_share("the of and"), 0.0f);  // no tokens at all
}

}  // namespace
}  // namespace medsearch
