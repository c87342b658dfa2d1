// Index::add() and Index::remove() (index.h, "Changing the documents"): every
// generation answers exactly as Index::build() over its documents, in every
// mode and level; removed documents are gone from every mode and filter;
// save/load after changes; errors change nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <medsearch/index.h>

#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;
using testing::answers;
using testing::corpus;
using testing::TinyEmbedder;

std::shared_ptr<const embed::Embedder> tiny() { return std::make_shared<TinyEmbedder>(); }

// build() over `docs` (copied: build consumes its documents).
std::unique_ptr<Index> rebuild(const std::vector<io::Document>& docs, const BuildOptions& options, bool vectors) {
  auto built = Index::build(docs, options, nullptr, vectors ? tiny() : nullptr);
  EXPECT_TRUE(built.is_ok()) << built.status().to_string();
  return built ? std::move(built).value() : nullptr;
}

std::vector<std::string> ids_of(const std::vector<io::Document>& docs) {
  std::vector<std::string> out;
  for (const auto& d : docs) out.push_back(d.doc_id);
  return out;
}

// One document whose words no other document has.
io::Document unique_document(const std::string& id) {
  io::Document d;
  d.doc_id = id;
  d.corpus = "papers";
  d.title = "zyxomab quorvatinib";
  d.body = "zyxomab quorvatinib glimmerase trial in recurrent mesothelioma.";
  return d;
}

class IndexMutation : public ::testing::TestWithParam<bool> {  // param: HNSW dense side
 protected:
  BuildOptions options() const {
    BuildOptions o;
    if (GetParam()) o.exact_below = 0;
    return o;
  }
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("medsearch_mutation_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(IndexMutation, AddedDocumentsAreFoundInEveryMode) {
  std::vector<io::Document> model = corpus("a", 30, 1);
  auto index = rebuild(model, options(), true);
  ASSERT_TRUE(index);
  EXPECT_EQ(index->generation(), 1u);
  std::vector<io::Document> added = corpus("b", 8, 2);
  added.push_back(unique_document("new"));
  model.insert(model.end(), added.begin(), added.end());
  ASSERT_TRUE(index->add(added).is_ok());
  EXPECT_EQ(index->generation(), 2u);
  EXPECT_EQ(index->num_documents(), 39u);
  for (SearchMode mode : testing::modes_of(*index)) {
    SearchOptions o;
    o.mode = mode;
    auto response = index->search("zyxomab quorvatinib glimmerase", o);
    ASSERT_TRUE(response.is_ok()) << response.status().to_string();
    EXPECT_EQ(response->generation, 2u);
    ASSERT_FALSE(response->hits.empty()) << static_cast<int>(mode);
    EXPECT_EQ(response->passage(0).doc_id, "new") << static_cast<int>(mode);
  }
  auto reference = rebuild(model, options(), true);
  EXPECT_EQ(answers(*index), answers(*reference));
}

TEST_P(IndexMutation, RemovedDocumentsAreGoneInEveryModeAndFilter) {
  std::vector<io::Document> model = corpus("a", 30, 1);
  model.push_back(unique_document("new"));
  auto index = rebuild(model, options(), true);
  ASSERT_TRUE(index);
  // Every paper ("papers" corpus: even numbers) but one, and the unique document.
  std::vector<std::string> gone{"new"};
  for (int i = 2; i < 30; i += 2) gone.push_back("a" + std::to_string(i));
  ASSERT_TRUE(index->remove(gone).is_ok());
  std::erase_if(model, [&](const io::Document& d) { return std::find(gone.begin(), gone.end(), d.doc_id) != gone.end(); });
  EXPECT_EQ(index->num_documents(), model.size());
  for (SearchMode mode : testing::modes_of(*index)) {
    for (ResultLevel level : {ResultLevel::kPassage, ResultLevel::kDocument}) {
      for (const std::vector<std::string>& corpora : {std::vector<std::string>{}, {"papers"}, {"guides"}}) {
        SearchOptions o;
        o.mode = mode;
        o.level = level;
        o.k = 50;
        o.filters.corpus = corpora;
        for (const auto& q : testing::kQueries) {
          auto hits = index->search(q + " zyxomab", o);
          ASSERT_TRUE(hits.is_ok()) << hits.status().to_string();
          for (const auto& h : hits->passages()) {
            EXPECT_EQ(std::find(gone.begin(), gone.end(), h.doc_id), gone.end()) << h.doc_id;
            if (!corpora.empty()) {
              EXPECT_EQ(h.corpus, corpora[0]);
            }
          }
        }
      }
    }
  }
  auto reference = rebuild(model, options(), true);
  EXPECT_EQ(answers(*index), answers(*reference));
  // A corpus without documents is unknown, as in a fresh build.
  ASSERT_TRUE(index->remove(std::vector<std::string>{"a0"}).is_ok());
  SearchOptions o;
  o.filters.corpus = {"papers"};
  auto r = index->search("lung", o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("unknown corpus filter 'papers'"), std::string::npos);
}

// Random adds and removes; after each, the index answers as a rebuild over its documents.
TEST_P(IndexMutation, EveryGenerationAnswersAsARebuild) {
  for (bool vectors : {false, true}) {
    std::vector<io::Document> model = corpus("s", 20, 3);
    auto index = rebuild(model, options(), vectors);
    ASSERT_TRUE(index);
    std::mt19937 rng(7);
    size_t next = 0;
    for (int round = 0; round < 8; ++round) {
      if (round % 2 == 0) {
        auto added = corpus("r" + std::to_string(next++) + "_", 1 + rng() % 5, 100 + round);
        model.insert(model.end(), added.begin(), added.end());
        ASSERT_TRUE(index->add(std::move(added)).is_ok());
      } else {
        std::vector<std::string> gone;
        for (int i = 0; i < 4; ++i) {
          const std::string id = model[rng() % model.size()].doc_id;
          if (std::find(gone.begin(), gone.end(), id) == gone.end()) gone.push_back(id);
        }
        ASSERT_TRUE(index->remove(gone).is_ok());
        std::erase_if(model, [&](const io::Document& d) {
          return std::find(gone.begin(), gone.end(), d.doc_id) != gone.end();
        });
      }
      EXPECT_EQ(index->generation(), 2u + round);
      auto reference = rebuild(model, options(), vectors);
      ASSERT_TRUE(reference);
      EXPECT_EQ(answers(*index), answers(*reference)) << "vectors " << vectors << " round " << round;
      EXPECT_EQ(index->stats().terms, reference->stats().terms);
      EXPECT_EQ(index->stats().corpora, reference->stats().corpora);
    }
  }
}

TEST_P(IndexMutation, SaveLoadAfterChangesAnswersTheSameTwice) {
  std::vector<io::Document> model = corpus("a", 30, 1);
  auto index = rebuild(model, options(), true);
  ASSERT_TRUE(index);
  ASSERT_TRUE(index->save(dir_).is_ok());
  ASSERT_TRUE(index->add(corpus("b", 6, 2)).is_ok());
  ASSERT_TRUE(index->remove(std::vector<std::string>{"a3", "b1", "a10"}).is_ok());
  const auto expected = answers(*index);
  ASSERT_TRUE(index->save(dir_).is_ok());  // over the saved generation
  for (int round = 0; round < 2; ++round) {
    auto loaded = Index::load(dir_);
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    EXPECT_EQ((*loaded)->num_documents(), 33u);
    ASSERT_TRUE((*loaded)->attach_embedder(tiny()).is_ok());
    EXPECT_EQ(answers(**loaded), expected) << "round " << round;
    // A loaded index takes changes too, and saves them.
    ASSERT_TRUE((*loaded)->remove(std::vector<std::string>{"a4"}).is_ok());
    ASSERT_TRUE((*loaded)->add(std::vector<io::Document>{unique_document("new")}).is_ok());
    const auto changed = answers(**loaded);
    ASSERT_TRUE((*loaded)->save(dir_ / "changed").is_ok());
    auto again = Index::load(dir_ / "changed");
    ASSERT_TRUE(again.is_ok()) << again.status().to_string();
    ASSERT_TRUE((*again)->attach_embedder(tiny()).is_ok());
    EXPECT_EQ(answers(**again), changed);
    fs::remove_all(dir_ / "changed");
  }
}

TEST_P(IndexMutation, ErrorsAreClearAndChangeNothing) {
  std::vector<io::Document> model = corpus("a", 10, 1);
  io::Document twin = model[0];
  twin.corpus = "other";  // same doc_id in a second corpus
  model.push_back(twin);
  auto index = rebuild(model, options(), true);
  ASSERT_TRUE(index);
  const auto before = answers(*index);
  auto fails = [&](Status st, StatusCode code, const std::string& says) {
    EXPECT_FALSE(st.is_ok());
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_NE(st.message().find(says), std::string::npos) << st.to_string();
  };
  fails(index->add({}), StatusCode::kInvalidArgument, "no documents");
  io::Document nameless = unique_document("");
  fails(index->add({nameless}), StatusCode::kInvalidArgument, "empty doc_id");
  fails(index->add({unique_document("x"), unique_document("x")}), StatusCode::kInvalidArgument, "duplicate doc_id 'x'");
  fails(index->add({model[1]}), StatusCode::kInvalidArgument, "already in corpus");
  fails(index->remove(std::vector<std::string>{}), StatusCode::kInvalidArgument, "no doc_ids");
  fails(index->remove(std::vector<std::string>{"a1", "nope"}), StatusCode::kUnknownId, "no document 'nope'");
  fails(index->remove(std::vector<std::string>{"a1", "a1"}), StatusCode::kInvalidArgument, "given twice");
  fails(index->remove(std::vector<std::string>{"a0"}), StatusCode::kInvalidArgument, "name the corpus");
  fails(index->remove(std::vector<std::string>{"a1"}, "other"), StatusCode::kUnknownId, "in corpus 'other'");
  fails(index->remove(ids_of(model), "papers"), StatusCode::kUnknownId, "no document");
  EXPECT_EQ(index->generation(), 1u);
  EXPECT_EQ(answers(*index), before);
  // Removing everything leaves no index to search.
  std::vector<std::string> all = ids_of(model);
  all.pop_back();  // the twin: a0 is named with its corpus below
  all.erase(all.begin());
  ASSERT_TRUE(index->remove(std::vector<std::string>{"a0"}, "other").is_ok());
  ASSERT_TRUE(index->remove(std::vector<std::string>{"a0"}, "papers").is_ok());
  fails(index->remove(all), StatusCode::kInvalidArgument, "no passages");
  EXPECT_EQ(index->num_documents(), 9u);
  // An index with vectors and no embedder cannot embed what is added.
  ASSERT_TRUE(index->save(dir_).is_ok());
  auto loaded = Index::load(dir_);
  ASSERT_TRUE(loaded.is_ok());
  fails((*loaded)->add({unique_document("new")}), StatusCode::kInvalidArgument, "attach its encoder");
  EXPECT_EQ((*loaded)->generation(), 1u);
  // Without vectors no embedder is needed.
  auto lexical = rebuild(corpus("a", 10, 1), options(), false);
  ASSERT_TRUE(lexical->add({unique_document("new")}).is_ok());
  EXPECT_FALSE(lexical->has_vectors());
}

INSTANTIATE_TEST_SUITE_P(Index, IndexMutation, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Hnsw" : "Flat"; });

}  // namespace
}  // namespace medsearch
