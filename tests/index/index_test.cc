// Index facade: build, search with provenance, filters, persistence, concurrency.
#include <medsearch/index.h>

#include <gtest/gtest.h>

#include <fstream>
#include <atomic>
#include <set>
#include <thread>
#include <unistd.h>

#include <medsearch/corpus.h>

namespace medsearch {
namespace {

namespace fs = std::filesystem;

io::Document markdown_doc(std::string doc_id, std::string url, std::string reviewed, std::string body) {
  io::Document d;
  d.doc_id = std::move(doc_id);
  d.corpus = "guides";
  d.title = "Mesothelioma Treatment (PDQ®) - NCI";
  d.url = url;
  io::derive_from_url(url, &d.audience, &d.cancer_type);
  d.last_reviewed = std::move(reviewed);
  d.format = io::DocFormat::kMarkdown;
  d.body = std::move(body);
  return d;
}

std::vector<io::Document> fixture() {
  std::vector<io::Document> docs;
  docs.push_back(markdown_doc("hp/meso.md", "https://www.cancer.gov/types/mesothelioma/hp/meso-pdq", "2025-12-30",
                              "# Mesothelioma Treatment (PDQ®)–Health Professional Version\n\n"
                              "## Treatment of Recurrent Malignant Mesothelioma\n\n"
                              "Second-line options include gemcitabine with ramucirumab, nivolumab and vinorelbine "
                              "for disease that progressed after first-line platinum chemotherapy.\n\n"
                              "## Stage Information\n\nStaging uses the TNM system for pleural mesothelioma.\n"));
  docs.push_back(markdown_doc("patient/meso.md", "https://www.cancer.gov/types/mesothelioma/patient/meso-pdq",
                              "2024-01-15",
                              "# Mesothelioma Treatment (PDQ®)–Patient Version\n\n"
                              "## Treatment of Recurrent Mesothelioma\n\n"
                              "If the cancer comes back, treatment may include chemotherapy or a clinical trial.\n"));
  io::Document lit;
  lit.doc_id = "123";
  lit.corpus = "papers";
  lit.title = "Nivolumab in relapsed mesothelioma";
  lit.body = "A randomised trial of nivolumab versus placebo in relapsed malignant mesothelioma after platinum.";
  docs.push_back(lit);
  return docs;
}

std::unique_ptr<Index> build_fixture() {
  auto index = Index::build(fixture(), BuildOptions{});
  EXPECT_TRUE(index.is_ok()) << index.status().to_string();
  return std::move(index).value();
}

// (passage id, score) of each hit, best first.
std::vector<std::pair<std::string, float>> ids_and_scores(const SearchResponse& response) {
  std::vector<std::pair<std::string, float>> out;
  for (size_t i = 0; i < response.hits.size(); ++i) out.emplace_back(response.passage(i).passage_id, response.hits[i].score);
  return out;
}

std::vector<std::pair<std::string, float>> ranking(const Index& index, std::string_view q, const SearchOptions& o) {
  auto response = index.search(q, o);
  EXPECT_TRUE(response.is_ok()) << response.status().to_string();
  return response ? ids_and_scores(*response) : std::vector<std::pair<std::string, float>>{};
}

TEST(Index, SearchReturnsProvenance) {
  auto index = build_fixture();
  auto response = index->search("nivolumab after first-line chemotherapy stops working", SearchOptions{});
  ASSERT_TRUE(response.is_ok());
  ASSERT_FALSE(response->hits.empty());
  const Passage top = response->passage(0);
  const Hit& top_hit = response->hits[0];
  EXPECT_EQ(top.doc_id, "hp/meso.md");
  EXPECT_EQ(top.url, "https://www.cancer.gov/types/mesothelioma/hp/meso-pdq");
  EXPECT_EQ(top.audience, "hp");
  EXPECT_EQ(top.cancer_type, "mesothelioma");
  ASSERT_EQ(top.heading_path.size(), 2u);
  EXPECT_EQ(top.heading_path[1], "Treatment of Recurrent Malignant Mesothelioma");
  const Snapshot& snapshot = *response->snapshot;
  EXPECT_EQ(top.number, top_hit.passage);
  EXPECT_EQ(snapshot.clean_text(snapshot.document_of(top.number)).substr(top.begin, top.end - top.begin), top.text);
  EXPECT_NEAR(top_hit.score, top_hit.body_score + index->options().bm25.heading_weight * top_hit.heading_score, 1e-4);
  const auto& hits = response->hits;
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
}

TEST(Index, FiltersRestrictAndUnknownValuesAreErrors) {
  auto index = build_fixture();
  SearchOptions o;
  o.k = 100;
  o.filters.audience = {"patient"};
  for (const auto& h : index->search("mesothelioma treatment", o)->passages()) EXPECT_EQ(h.audience, "patient");
  o.filters = {};
  o.filters.corpus = {"papers"};
  auto papers = index->search("mesothelioma nivolumab", o);
  ASSERT_TRUE(papers.is_ok());
  ASSERT_EQ(papers->hits.size(), 1u);
  EXPECT_EQ(papers->passage(0).doc_id, "123");
  o.filters = {};
  o.filters.reviewed_after = "2025-01-01";
  for (const auto& h : index->search("mesothelioma", o)->passages()) EXPECT_EQ(h.doc_id, "hp/meso.md");
  o.filters = {};
  o.filters.cancer_type = {"mesothelioma"};
  for (const auto& h : index->search("mesothelioma", o)->passages()) EXPECT_EQ(h.cancer_type, "mesothelioma");

  SearchOptions bad;
  bad.filters.audience = {"doctors"};
  EXPECT_EQ(index->search("x", bad).status().code(), StatusCode::kInvalidArgument);
  bad.filters = {};
  bad.filters.corpus = {"nope"};
  EXPECT_EQ(index->search("x", bad).status().code(), StatusCode::kInvalidArgument);
  bad.filters = {};
  bad.filters.reviewed_after = "2025-13-40";
  EXPECT_EQ(index->search("x", bad).status().code(), StatusCode::kInvalidArgument);
  bad.filters = {};
  bad.filters.cancer_type = {"unicorn"};
  EXPECT_EQ(index->search("x", bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(Index, EmptyQueriesAndBadArguments) {
  auto index = build_fixture();
  EXPECT_EQ(index->search("", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->search("  \n\t", {}).status().code(), StatusCode::kInvalidArgument);
  auto stop_only = index->search("the of and", {});
  ASSERT_TRUE(stop_only.is_ok());
  EXPECT_TRUE(stop_only->hits.empty());
  SearchOptions o;
  o.k = 0;
  EXPECT_EQ(index->search("mesothelioma", o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Index::build({}, {}).status().code(), StatusCode::kInvalidArgument);
  auto dup = fixture();
  dup.push_back(dup[0]);
  EXPECT_EQ(Index::build(std::move(dup), {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(Index, DocumentLevelGivesOneHitPerDocument) {
  auto index = build_fixture();
  SearchOptions o;
  o.level = ResultLevel::kDocument;
  o.k = 10;
  auto hits = index->search("mesothelioma", o);
  ASSERT_TRUE(hits.is_ok());
  std::set<std::string> docs;
  for (const auto& h : hits->passages()) EXPECT_TRUE(docs.insert(h.doc_id).second);
  EXPECT_EQ(docs.size(), 3u);
}

class IndexPersistence : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("medsearch_index_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path current_gen() {
    std::ifstream in(dir_ / "CURRENT");
    std::string g;
    in >> g;
    return dir_ / g;
  }
  fs::path dir_;
};

TEST_F(IndexPersistence, SaveLoadGivesIdenticalResultsTwice) {
  auto index = build_fixture();
  ASSERT_TRUE(index->save(dir_).is_ok());
  auto loaded = Index::load(dir_);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  ASSERT_TRUE((*loaded)->save(dir_).is_ok());  // a second generation replaces the first
  auto reloaded = Index::load(dir_);
  ASSERT_TRUE(reloaded.is_ok());
  for (const auto* q : {"recurrent mesothelioma", "nivolumab placebo", "staging TNM"}) {
    for (auto level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
      SearchOptions o;
      o.level = level;
      EXPECT_EQ(ranking(*index, q, o), ranking(**loaded, q, o));
      EXPECT_EQ(ranking(*index, q, o), ranking(**reloaded, q, o));
    }
  }
  EXPECT_EQ(index->stats().passages, (*reloaded)->stats().passages);
  int generations = 0;
  for (const auto& e : fs::directory_iterator(dir_)) generations += e.path().filename().string().rfind("gen-", 0) == 0;
  EXPECT_EQ(generations, 1);
}

TEST_F(IndexPersistence, CorruptOrTruncatedFilesAreRefused) {
  auto index = build_fixture();
  ASSERT_TRUE(index->save(dir_).is_ok());
  const fs::path gen = current_gen();
  for (const char* name : {"documents.bin", "lexical.bin"}) {
    const fs::path file = gen / name;
    std::string original;
    {
      std::ifstream in(file, std::ios::binary);
      original.assign(std::istreambuf_iterator<char>(in), {});
    }
    // Flip one byte in the middle.
    std::string flipped = original;
    flipped[flipped.size() / 2] ^= 0x5A;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << flipped;
    auto r = Index::load(dir_);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    // Truncate.
    std::ofstream(file, std::ios::binary | std::ios::trunc) << original.substr(0, original.size() / 3);
    r = Index::load(dir_);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
    std::ofstream(file, std::ios::binary | std::ios::trunc) << original;
    ASSERT_TRUE(Index::load(dir_).is_ok());
  }
  // Unsupported version.
  {
    std::ifstream in(gen / "manifest.json");
    std::string m((std::istreambuf_iterator<char>(in)), {});
    const auto at = m.find("\"version\": 3");
    ASSERT_NE(at, std::string::npos);
    m.replace(at, 12, "\"version\": 99");
    std::ofstream(gen / "manifest.json", std::ios::trunc) << m;
    auto r = Index::load(dir_);
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(r.status().message().find("version 99"), std::string::npos);
  }
  EXPECT_EQ(Index::load(dir_ / "nowhere").status().code(), StatusCode::kNotFound);
}

TEST_F(IndexPersistence, FailedSaveLeavesPreviousIndexIntact) {
  auto first = build_fixture();
  ASSERT_TRUE(first->save(dir_).is_ok());
  const auto before = ranking(*first, "mesothelioma treatment", {});
  // A second, different index whose save cannot switch CURRENT (its temp
  // file's name is taken by a directory), so the save fails midway.
  auto docs = fixture();
  docs.pop_back();
  auto second = Index::build(std::move(docs), {});
  ASSERT_TRUE(second.is_ok());
  fs::create_directory(dir_ / "CURRENT.tmp");
  EXPECT_FALSE((*second)->save(dir_).is_ok());
  fs::remove(dir_ / "CURRENT.tmp");
  auto loaded = Index::load(dir_);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(ranking(**loaded, "mesothelioma treatment", {}), before);
  EXPECT_EQ((*loaded)->num_documents(), 3u);
}

TEST_F(IndexPersistence, RefusesToOverwriteForeignDirectory) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "precious.txt") << "not an index";
  auto index = build_fixture();
  EXPECT_EQ(index->save(dir_).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(dir_ / "precious.txt"));
}

TEST(Index, ConcurrentSearchesAgreeWithSequential) {
  auto index = build_fixture();
  const std::vector<std::string> queries{"recurrent mesothelioma", "nivolumab", "staging", "chemotherapy trial",
                                         "platinum vinorelbine"};
  std::vector<std::vector<std::pair<std::string, float>>> expected;
  for (const auto& q : queries) expected.push_back(ranking(*index, q, {}));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const size_t qi = (i + t) % queries.size();
        auto response = index->search(queries[qi], {});
        if (!response || ids_and_scores(*response) != expected[qi]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  auto batch = index->search_batch(queries, {});
  ASSERT_TRUE(batch.is_ok());
  for (size_t i = 0; i < queries.size(); ++i) EXPECT_EQ(ids_and_scores((*batch)[i]), expected[i]);
}

}  // namespace
}  // namespace medsearch
