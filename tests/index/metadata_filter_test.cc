// Filters on any metadata key (issue 12, item 4): equality and any-of on
// strings, ranges on numbers and dates, checked against a brute-force reading
// of the documents' metadata; errors for unknown keys, values and bounds;
// the same answers after save and load and after add(); the text form
// (add_filter) that the CLI uses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <medsearch/corpus.h>
#include <medsearch/index.h>

namespace medsearch {
namespace {

namespace fs = std::filesystem;

const char* kJournals[] = {"Cell", "Nature", "Lancet", "BMJ"};

// `n` abstracts that all mention "tumour", each with a year, a journal, a
// publication date, a list of MeSH terms and (for some) a free-text note.
std::vector<io::Document> papers(const std::string& tag, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<io::Document> docs;
  for (size_t i = 0; i < n; ++i) {
    io::Document d;
    d.doc_id = tag + std::to_string(i);
    d.corpus = "papers";
    d.body = "tumour response number " + std::to_string(i) + " in a cohort";
    const int year = 2000 + static_cast<int>(rng() % 25);
    d.metadata.push_back({"year", {std::to_string(year)}});
    d.metadata.push_back({"journal", {kJournals[rng() % 4]}});
    char date[16];
    std::snprintf(date, sizeof(date), "%d-%02d-%02d", year, 1 + static_cast<int>(rng() % 12), 1 + static_cast<int>(rng() % 28));
    d.metadata.push_back({"published", {date}});
    std::vector<std::string> mesh;
    for (const char* m : {"Humans", "Mice", "Apoptosis"}) {
      if (rng() % 2) mesh.emplace_back(m);
    }
    if (!mesh.empty()) d.metadata.push_back({"mesh", mesh});
    if (i % 5 == 0) d.metadata.push_back({"note", {"retracted"}});
    docs.push_back(std::move(d));
  }
  return docs;
}

// The documents a filter should let through, read straight from the metadata.
std::set<std::string> expected(const std::vector<io::Document>& docs, const std::vector<MetadataFilter>& filters) {
  std::set<std::string> out;
  for (const auto& d : docs) {
    bool all = true;
    for (const auto& f : filters) {
      bool any = false;
      for (const auto& field : d.metadata) {
        if (field.key != f.key) continue;
        for (const auto& v : field.values) {
          bool ok = f.any_of.empty() || std::find(f.any_of.begin(), f.any_of.end(), v) != f.any_of.end();
          // Test data: years compare as integers, dates as their text (ISO order).
          const bool date = v.size() == 10 && v[4] == '-';
          auto cmp = [&](const std::string& bound) {
            return date ? v.compare(bound) : std::stoi(v) - std::stoi(bound);
          };
          if (!f.min.empty()) ok = ok && cmp(f.min) >= 0;
          if (!f.max.empty()) ok = ok && cmp(f.max) <= 0;
          any = any || ok;
        }
      }
      all = all && any;
    }
    if (all) out.insert(d.doc_id);
  }
  return out;
}

std::set<std::string> found(const Index& index, const std::vector<MetadataFilter>& filters) {
  SearchOptions o;
  o.k = 1000;
  o.filters.metadata = filters;
  auto hits = index.search("tumour", o);
  EXPECT_TRUE(hits.is_ok()) << hits.status().to_string();
  std::set<std::string> out;
  if (!hits) return out;
  for (const auto& h : hits->passages()) out.insert(h.doc_id);
  return out;
}

const std::vector<std::vector<MetadataFilter>> kCases = {
    {{"journal", {"Cell"}, "", ""}},
    {{"journal", {"Cell", "BMJ"}, "", ""}},
    {{"mesh", {"Mice"}, "", ""}},
    {{"year", {}, "2010", ""}},
    {{"year", {}, "", "2004"}},
    {{"year", {}, "2010", "2015"}},
    {{"year", {"2012", "2013"}, "2013", ""}},
    {{"published", {}, "2012-06-01", "2018-02-28"}},
    {{"journal", {"Nature"}, "", ""}, {"year", {}, "2005", "2020"}, {"mesh", {"Humans", "Apoptosis"}, "", ""}},
    {{"note", {"retracted"}, "", ""}},
};

TEST(MetadataFilter, MatchesTheDocumentsMetadata) {
  const auto docs = papers("p", 300, 7);
  auto index = Index::build(docs, BuildOptions{});
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  for (const auto& filters : kCases) {
    const auto want = expected(docs, filters);
    ASSERT_FALSE(want.empty()) << filters[0].key;
    ASSERT_LT(want.size(), docs.size()) << filters[0].key;
    EXPECT_EQ(found(**index, filters), want) << filters[0].key << " (" << filters.size() << " filters)";
  }
  // Hits carry their document's metadata.
  SearchOptions o;
  o.k = 1;
  auto hit = (*index)->search("tumour", o);
  ASSERT_TRUE(hit.is_ok() && !hit->hits.empty());
  const Passage top = hit->passage(0);
  const auto& d = *std::find_if(docs.begin(), docs.end(), [&](const io::Document& x) { return x.doc_id == top.doc_id; });
  EXPECT_EQ(top.metadata, d.metadata);
}

TEST(MetadataFilter, SurvivesSaveLoadAndAdd) {
  auto docs = papers("p", 120, 11);
  auto index = Index::build(docs, BuildOptions{});
  ASSERT_TRUE(index.is_ok());
  const fs::path dir = fs::temp_directory_path() / ("medsearch_metadata_filter_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*index)->save(dir).is_ok());
  auto loaded = Index::load(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  for (const auto& filters : kCases) EXPECT_EQ(found(**loaded, filters), expected(docs, filters)) << filters[0].key;

  // Added documents, one with a key no document had: filterable at once.
  auto more = papers("q", 40, 12);
  more[3].metadata.push_back({"trial", {"NCT0001"}});
  ASSERT_TRUE((*loaded)->add(more).is_ok());
  docs.insert(docs.end(), more.begin(), more.end());
  for (const auto& filters : kCases) EXPECT_EQ(found(**loaded, filters), expected(docs, filters)) << filters[0].key;
  EXPECT_EQ(found(**loaded, {{"trial", {"NCT0001"}, "", ""}}), std::set<std::string>{"q3"});
  // And removed ones leave it.
  const std::vector<std::string> gone = {"q3"};
  ASSERT_TRUE((*loaded)->remove(gone).is_ok());
  SearchOptions o;
  o.filters.metadata = {{"trial", {"NCT0001"}, "", ""}};
  EXPECT_EQ((*loaded)->search("tumour", o).status().code(), StatusCode::kInvalidArgument);
  fs::remove_all(dir);
}

TEST(MetadataFilter, UnknownKeysValuesAndBoundsAreErrors) {
  auto index = Index::build(papers("p", 50, 3), BuildOptions{});
  ASSERT_TRUE(index.is_ok());
  const std::vector<std::pair<MetadataFilter, std::string>> bad = {
      {{"publisher", {"Elsevier"}, "", ""}, "unknown metadata key 'publisher'; keys in this index: journal, mesh"},
      {{"journal", {"Science"}, "", ""}, "no document has journal = 'Science'"},
      {{"year", {}, "recent", ""}, "bound 'recent' is neither a number nor a YYYY-MM-DD date"},
      {{"year", {}, "", "2020-13-01"}, "bound '2020-13-01'"},
  };
  for (const auto& [filter, message] : bad) {
    SearchOptions o;
    o.filters.metadata = {filter};
    auto r = (*index)->search("tumour", o);
    ASSERT_FALSE(r.is_ok()) << filter.key;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().to_string();
  }
  // A range no document meets is an empty answer, not an error.
  SearchOptions o;
  o.filters.metadata = {{"year", {}, "2090", ""}};
  auto none = (*index)->search("tumour", o);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->hits.empty());
}

TEST(MetadataFilter, TextForm) {
  SearchFilters f;
  for (const char* spec : {"audience=patient", "cancer_type=lung", "corpus=pdq", "reviewed_after=2024-01-01",
                           "year>=2010", "year<=2015", "journal=Cell", "journal=BMJ", "url=https://x.org/?a=b"}) {
    ASSERT_TRUE(add_filter(spec, &f).is_ok()) << spec;
  }
  EXPECT_EQ(f.audience, std::vector<std::string>{"patient"});
  EXPECT_EQ(f.cancer_type, std::vector<std::string>{"lung"});
  EXPECT_EQ(f.corpus, std::vector<std::string>{"pdq"});
  EXPECT_EQ(f.reviewed_after, "2024-01-01");
  const std::vector<MetadataFilter> want = {
      {"year", {}, "2010", "2015"}, {"journal", {"Cell", "BMJ"}, "", ""}, {"url", {"https://x.org/?a=b"}, "", ""}};
  EXPECT_EQ(f.metadata, want);
  for (const char* spec : {"year", "=2010", "year=", "year>2010", "audience>=hp", ">=3"}) {
    SearchFilters g;
    const Status st = add_filter(spec, &g);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << spec;
  }
}

// The guideline pages' front matter is filterable as it is written.
TEST(MetadataFilter, FrontMatterKeys) {
  io::Document a, b;
  a.doc_id = "a";
  b.doc_id = "b";
  a.corpus = b.corpus = "pages";
  a.format = b.format = io::DocFormat::kMarkdown;
  a.body = "---\ncancerTypes:\n- breast\n- lung\nreviewFrequency: quarterly\n---\n# A\n\nTumour board notes.\n";
  b.body = "---\ncancerTypes: [colorectal]\nreviewFrequency: yearly\n---\n# B\n\nTumour board notes.\n";
  std::vector<io::Document> docs;
  for (auto* d : {&a, &b}) {
    io::Document parsed;
    ASSERT_TRUE(io::parse_markdown_document(d->body, &parsed).is_ok());
    parsed.doc_id = d->doc_id;
    parsed.corpus = d->corpus;
    docs.push_back(std::move(parsed));
  }
  auto index = Index::build(docs, BuildOptions{});
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  SearchOptions o;
  SearchFilters f;
  ASSERT_TRUE(add_filter("cancerTypes=lung", &f).is_ok());
  o.filters = f;
  auto hits = (*index)->search("tumour board", o);
  ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
  ASSERT_EQ(hits->hits.size(), 1u);
  EXPECT_EQ(hits->passage(0).doc_id, "a");
}

}  // namespace
}  // namespace medsearch
