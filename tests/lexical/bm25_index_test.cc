// BM25 scores against an independent reference written here from the formula.
#include "core/lexical/bm25_index.h"

#include "core/internal/binary_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <algorithm>

namespace medsearch::lexical {
namespace {

struct Doc {
  std::string body, heading;
};

// Textbook Lucene BM25 over pre-analysed terms, field by field.
double reference_score(const std::vector<Doc>& docs, const text::Analyzer& an, const std::vector<std::string>& query,
                       size_t target, const Bm25Params& p) {
  double total = 0;
  for (int f = 0; f < 2; ++f) {
    std::vector<std::vector<std::string>> terms;
    double sum_len = 0;
    for (const auto& d : docs) {
      terms.push_back(an.terms(f == 0 ? d.body : d.heading));
      sum_len += terms.back().size();
    }
    const double avg = sum_len / docs.size();
    std::map<std::string, int> qtf;
    for (const auto& t : query) qtf[t]++;
    for (const auto& [t, count] : qtf) {
      double df = 0;
      for (const auto& ts : terms) df += std::count(ts.begin(), ts.end(), t) > 0;
      if (df == 0) continue;
      const double idf = std::log(1 + (docs.size() - df + 0.5) / (df + 0.5));
      const double tf = std::count(terms[target].begin(), terms[target].end(), t);
      if (tf == 0) continue;
      const double len = terms[target].size();
      const double tfn = tf / (tf + p.k1 * (1 - p.b + p.b * len / avg));
      total += count * (f == 0 ? 1.0 : p.heading_weight) * idf * tfn;
    }
  }
  return total;
}

Result<Bm25Index> build(const std::vector<Doc>& docs, const text::Analyzer& an, const Bm25Params& p) {
  return Bm25Index::build(an, static_cast<uint32_t>(docs.size()), [&](uint32_t i, Field f) -> std::string_view {
    return f == kBody ? docs[i].body : docs[i].heading;
  }, p);
}

std::vector<Doc> random_docs(size_t n, uint32_t seed) {
  static const char* kWords[] = {"tumor", "mesothelioma", "pemetrexed", "cisplatin", "recurrent", "stage",
                                 "surgery", "radiation", "nivolumab", "survival", "patients", "trial",
                                 "PD-L1", "BRCA1", "5-FU", "chemotherapy", "the", "of", "lung", "breast"};
  std::mt19937 rng(seed);
  std::vector<Doc> docs(n);
  for (auto& d : docs) {
    const int len = 3 + rng() % 40;
    for (int i = 0; i < len; ++i) d.body += std::string(kWords[rng() % 20]) + " ";
    for (int i = 0; i < 1 + static_cast<int>(rng() % 4); ++i) d.heading += std::string(kWords[rng() % 20]) + " ";
  }
  return docs;
}

TEST(Bm25Index, ScoresEqualReferenceImplementation) {
  text::Analyzer an;
  const auto docs = random_docs(200, 7);
  for (const Bm25Params p : {Bm25Params{}, Bm25Params{1.2f, 0.75f, 0.0f}, Bm25Params{0.5f, 1.0f, 2.0f}}) {
    auto index = build(docs, an, p);
    ASSERT_TRUE(index.is_ok());
    for (const std::string q : {"recurrent mesothelioma", "PD-L1 BRCA1 5-FU", "surgery surgery trial of the lung"}) {
      std::vector<text::Token> tokens;
      an.analyze(q, &tokens);
      const auto terms = index->resolve(tokens);
      const auto query_terms = an.terms(q);
      for (size_t d = 0; d < docs.size(); ++d) {
        EXPECT_NEAR(index->score(terms, d), reference_score(docs, an, query_terms, d, p), 1e-4)
            << "doc " << d << " query " << q;
      }
    }
  }
}

TEST(Bm25Index, TopKIsSortedWithDeterministicTies) {
  text::Analyzer an;
  // Identical passages tie exactly; the smaller passage number must come first.
  std::vector<Doc> docs(6, Doc{"pemetrexed after cisplatin", "treatment"});
  docs[3].body = "pemetrexed pemetrexed pemetrexed after cisplatin";
  auto index = build(docs, an, {});
  ASSERT_TRUE(index.is_ok());
  std::vector<text::Token> tokens;
  an.analyze("pemetrexed", &tokens);
  const auto terms = index->resolve(tokens);
  Bm25Index::Options o;
  o.k = 4;
  const auto hits = index->search(terms, o);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits[0].passage, 3u);
  EXPECT_EQ(hits[1].passage, 0u);
  EXPECT_EQ(hits[2].passage, 1u);
  EXPECT_EQ(hits[3].passage, 2u);
  EXPECT_EQ(hits[1].score, hits[2].score);
}

TEST(Bm25Index, TopKMatchesFullSortAndGroupsKeepBestPassage) {
  text::Analyzer an;
  const auto docs = random_docs(500, 11);
  auto index = build(docs, an, {});
  ASSERT_TRUE(index.is_ok());
  std::vector<text::Token> tokens;
  an.analyze("nivolumab survival lung", &tokens);
  const auto terms = index->resolve(tokens);
  std::vector<ScoredPassage> all;
  for (uint32_t d = 0; d < docs.size(); ++d) {
    const float s = index->score(terms, d);
    if (s > 0) all.push_back({d, s});
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.score > b.score || (a.score == b.score && a.passage < b.passage); });
  Bm25Index::Options o;
  o.k = 20;
  const auto hits = index->search(terms, o);
  ASSERT_EQ(hits.size(), 20u);
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(hits[i].passage, all[i].passage);
    EXPECT_FLOAT_EQ(hits[i].score, all[i].score);
  }
  // Groups of 5 consecutive passages; group 0 disallowed.
  std::vector<uint32_t> group_of(docs.size());
  for (uint32_t i = 0; i < docs.size(); ++i) group_of[i] = i / 5;
  std::vector<uint8_t> allowed(100, 1);
  allowed[all[0].passage / 5] = 0;
  o.group_of = group_of;
  o.group_allowed = allowed;
  o.one_per_group = true;
  o.num_groups = 100;
  o.k = 1000;
  const auto grouped = index->search(terms, o);
  std::set<uint32_t> groups;
  for (const auto& h : grouped) {
    EXPECT_TRUE(groups.insert(h.passage / 5).second) << "two passages of one group";
    EXPECT_NE(h.passage / 5, all[0].passage / 5) << "disallowed group returned";
    for (uint32_t q = (h.passage / 5) * 5; q < (h.passage / 5) * 5 + 5; ++q) {
      EXPECT_LE(index->score(terms, q), h.score) << "group's best passage not chosen";
    }
  }
}

TEST(Bm25Index, UnknownTermsGiveNoHitsAndSerializationRoundTrips) {
  text::Analyzer an;
  const auto docs = random_docs(50, 3);
  auto index = build(docs, an, {});
  ASSERT_TRUE(index.is_ok());
  std::vector<text::Token> tokens;
  an.analyze("zzzunknownzzz", &tokens);
  EXPECT_TRUE(index->resolve(tokens).empty());
  EXPECT_TRUE(index->search(index->resolve(tokens), {}).empty());

  internal::BinaryWriter w;
  index->serialize(&w);
  internal::BinaryReader r(w.buffer(), "mem");
  auto loaded = Bm25Index::deserialize(&r);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  tokens.clear();
  an.analyze("tumor stage radiation", &tokens);
  const auto terms = index->resolve(tokens);
  Bm25Index::Options o;
  o.k = 50;
  const auto a = index->search(terms, o), b = loaded->search(loaded->resolve(tokens), o);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].passage, b[i].passage);
    EXPECT_EQ(a[i].score, b[i].score);  // bit-identical
  }
  // Truncations are refused, never read out of bounds.
  for (size_t cut : {size_t{0}, size_t{5}, w.buffer().size() / 2, w.buffer().size() - 1}) {
    internal::BinaryReader t(std::string_view(w.buffer()).substr(0, cut), "cut");
    EXPECT_FALSE(Bm25Index::deserialize(&t).is_ok()) << "cut at " << cut;
  }
}

// merge() keeps some passages of one index, appends another's and scores bit
// for bit as build() over the same passages (its statistics are recomputed).
TEST(Bm25Index, MergeEqualsBuildOverTheKeptAndAddedPassages) {
  text::Analyzer an;
  const auto base_docs = random_docs(120, 5);
  std::vector<Doc> added_docs = random_docs(30, 6);
  added_docs[0].body += "glimmerase";  // a term only the added passages have
  auto base = build(base_docs, an, {});
  auto added = build(added_docs, an, {});
  ASSERT_TRUE(base.is_ok() && added.is_ok());
  std::mt19937 rng(9);
  for (int round = 0; round < 3; ++round) {
    std::vector<uint8_t> keep(base_docs.size());
    std::vector<Doc> kept;
    for (size_t i = 0; i < keep.size(); ++i) {
      keep[i] = round == 0 || rng() % 3 != 0;
      if (keep[i]) kept.push_back(base_docs[i]);
    }
    // Round 2 appends nothing: merge() then only drops passages.
    const Bm25Index empty;
    const Bm25Index& extra = round == 2 ? empty : *added;
    if (round != 2) kept.insert(kept.end(), added_docs.begin(), added_docs.end());
    const Bm25Index merged = Bm25Index::merge(*base, keep, extra);
    auto expected = build(kept, an, {});
    ASSERT_TRUE(expected.is_ok());
    ASSERT_EQ(merged.num_passages(), expected->num_passages());
    ASSERT_EQ(merged.num_terms(), expected->num_terms());
    for (uint32_t t = 0; t < merged.num_terms(); ++t) {
      ASSERT_EQ(merged.term(t), expected->term(t));
      ASSERT_EQ(merged.doc_freq(t, kBody), expected->doc_freq(t, kBody));
      ASSERT_EQ(merged.doc_freq(t, kHeading), expected->doc_freq(t, kHeading));
    }
    for (const std::string q : {"recurrent mesothelioma", "PD-L1 BRCA1 5-FU glimmerase", "surgery trial of the lung"}) {
      std::vector<text::Token> tokens;
      an.analyze(q, &tokens);
      Bm25Index::Options o;
      o.k = 40;
      const auto a = merged.search(merged.resolve(tokens), o), b = expected->search(expected->resolve(tokens), o);
      ASSERT_EQ(a.size(), b.size()) << q;
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].passage, b[i].passage) << q;
        EXPECT_EQ(a[i].score, b[i].score) << q;  // bit-identical
      }
    }
  }
}

}  // namespace
}  // namespace medsearch::lexical
