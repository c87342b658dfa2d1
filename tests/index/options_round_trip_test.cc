// Every build option survives save and load (issue 12, item 2): for each
// field of BuildOptions, an index built with a non-default value reports the
// same options after load, answers every query in every mode exactly as
// before, adds documents as before (chunked and analysed with the saved
// options), and, saved again after the add (when the ANN graph is left out
// and load() rebuilds it from the vectors), rebuilds its dense side with the
// saved kind and parameters.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <functional>
#include <string>
#include <vector>

#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;
using testing::answer;
using testing::corpus;
using testing::TinyEmbedder;

struct OptionCase {
  std::string name;
  std::function<void(BuildOptions*)> set;
};

void PrintTo(const OptionCase& c, std::ostream* os) { *os << c.name; }

std::vector<OptionCase> cases() {
  return {
      {"analyzer_stem", [](BuildOptions* o) { o->analyzer.stem = false; }},
      {"analyzer_remove_stopwords", [](BuildOptions* o) { o->analyzer.remove_stopwords = false; }},
      {"analyzer_stemmer", [](BuildOptions* o) { o->analyzer.stemmer = "porter"; }},
      {"analyzer_compound_parts", [](BuildOptions* o) { o->analyzer.compound_parts = false; }},
      {"markdown_chunker_max_tokens", [](BuildOptions* o) { o->markdown_chunker.max_tokens = 30; }},
      {"markdown_chunker_overlap_tokens", [](BuildOptions* o) { o->markdown_chunker.overlap_tokens = 2; }},
      {"markdown_chunker_min_tokens", [](BuildOptions* o) { o->markdown_chunker.min_tokens = 12; }},
      {"plain_chunker_max_tokens", [](BuildOptions* o) { o->plain_chunker.max_tokens = 50; }},
      {"plain_chunker_overlap_tokens", [](BuildOptions* o) { o->plain_chunker.overlap_tokens = 9; }},
      {"plain_chunker_min_tokens", [](BuildOptions* o) { o->plain_chunker.min_tokens = 45; }},
      {"bm25_k1", [](BuildOptions* o) { o->bm25.k1 = 1.7f; }},
      {"bm25_b", [](BuildOptions* o) { o->bm25.b = 0.85f; }},
      {"bm25_heading_weight", [](BuildOptions* o) { o->bm25.heading_weight = 1.3f; }},
      {"embed_batch", [](BuildOptions* o) { o->embed_batch = 7; }},
      {"exact_below", [](BuildOptions* o) { o->exact_below = 0; }},
      {"hnsw_m", [](BuildOptions* o) {
         o->exact_below = 0;
         o->hnsw_m = 5;
       }},
      {"hnsw_ef_construction", [](BuildOptions* o) {
         o->exact_below = 0;
         o->hnsw_ef_construction = 17;
       }},
  };
}

// Documents whose words the options treat differently: a hyphenated
// compound with a digit, stopwords, words the English and Porter stemmers
// stem differently, and sections long enough to be split.
std::vector<io::Document> documents(const std::string& tag, uint32_t seed) {
  auto docs = corpus(tag, 24, seed);
  const char* extra[] = {
      "Her2-positive breast cancer is treated with trastuzumab; the generously dosed regimen is given "
      "before and after surgery, and the fairly common side effects are what the patients report most.",
      "PD-L1 expression guides the use of nivolumab in the lung, where the tumour is what it is and "
      "the dosing is generally weekly; arguing about the schedule is common.",
  };
  for (size_t i = 0; i < docs.size(); ++i) docs[i].body += "\n\n" + std::string(extra[i % 2]);
  return docs;
}

const std::vector<std::string> kQueries = {
    "her2 positive breast", "her2-positive",           "pd-l1 nivolumab",        "what is the generous dose",
    "argue about schedule",  "recurrent mesothelioma chemotherapy", "lung nivolumab survival", "leukemia imatinib remission"};

std::vector<std::string> answers(const Index& index) {
  std::vector<std::string> out{"passages " + std::to_string(index.num_passages()), "dense " + index.stats().dense_index};
  for (const auto& q : kQueries) {
    for (SearchMode mode : testing::modes_of(index)) {
      for (ResultLevel level : {ResultLevel::kPassage, ResultLevel::kDocument}) out.push_back(answer(index, q, mode, level));
    }
  }
  return out;
}

class OptionRoundTrip : public ::testing::TestWithParam<OptionCase> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("medsearch_options_" + std::to_string(::getpid()) + "_" + GetParam().name);
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Index> load() {
    auto loaded = Index::load(dir_);
    EXPECT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    if (!loaded) return nullptr;
    EXPECT_TRUE((*loaded)->attach_embedder(std::make_shared<TinyEmbedder>()).is_ok());
    return std::move(loaded).value();
  }
  fs::path dir_;
};

TEST_P(OptionRoundTrip, SavedAndRestored) {
  BuildOptions options;
  GetParam().set(&options);
  ASSERT_NE(options, BuildOptions{}) << "the case changes no option";
  auto built = Index::build(documents("d", 3), options, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  Index& original = **built;
  ASSERT_EQ(original.options(), options);
  ASSERT_TRUE(original.save(dir_).is_ok());

  auto loaded = load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->options(), options);
  EXPECT_EQ(answers(*loaded), answers(original));

  // Added documents are chunked and analysed with the saved options.
  ASSERT_TRUE(original.add(documents("added", 11)).is_ok());
  ASSERT_TRUE(loaded->add(documents("added", 11)).is_ok());
  const auto after_add = answers(original);
  EXPECT_EQ(answers(*loaded), after_add);

  // Saved after add(), the graph is left out: load() rebuilds the dense side
  // from the vectors, with the saved kind and parameters.
  ASSERT_TRUE(loaded->save(dir_).is_ok());
  auto reloaded = load();
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->options(), options);
  EXPECT_EQ(reloaded->stats().dense_index, original.stats().dense_index);
  EXPECT_EQ(answers(*reloaded), after_add);
}

INSTANTIATE_TEST_SUITE_P(EveryField, OptionRoundTrip, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<OptionCase>& info) { return info.param.name; });

// The number of members of an aggregate: the longest brace list of
// convert-to-anything values it can be initialised from.
struct AnyField {
  template <typename T>
  operator T() const;
};
template <typename T, typename... Fields>
constexpr size_t field_count() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; }) {
    return field_count<T, Fields..., AnyField>();
  } else {
    return sizeof...(Fields);
  }
}

// One case per field: a field added to BuildOptions or to the option structs
// in it fails this test until it has a case above (and is saved, options_io.cc).
TEST(OptionsTest, EveryFieldHasACase) {
  static_assert(field_count<BuildOptions>() == 8, "BuildOptions changed: add a case and save the new field");
  const size_t fields = field_count<text::AnalyzerOptions>() + 2 * field_count<text::ChunkerOptions>() +
                        field_count<lexical::Bm25Params>() + (field_count<BuildOptions>() - 4);
  EXPECT_EQ(cases().size(), fields);
}

// All cases at once: an index with every option changed round-trips.
TEST(OptionsTest, AllAtOnce) {
  BuildOptions options;
  for (const auto& c : cases()) c.set(&options);
  auto built = Index::build(documents("d", 3), options, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  const fs::path dir = fs::temp_directory_path() / ("medsearch_options_all_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*built)->save(dir).is_ok());
  auto loaded = Index::load(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ((*loaded)->options(), options);
  ASSERT_TRUE((*loaded)->attach_embedder(std::make_shared<TinyEmbedder>()).is_ok());
  EXPECT_EQ(answers(**loaded), answers(**built));
  fs::remove_all(dir);
}

// Options out of range fail build() with a message naming the option,
// instead of being clamped or ignored (an unknown stemmer used to turn
// stemming off silently).
TEST(OptionsTest, OutOfRangeOptionsFailTheBuild) {
  const std::vector<std::pair<std::function<void(BuildOptions*)>, std::string>> bad = {
      {[](BuildOptions* o) { o->analyzer.stemmer = "klingon"; }, "klingon"},
      {[](BuildOptions* o) { o->markdown_chunker.max_tokens = 0; }, "markdown_chunker.max_tokens"},
      {[](BuildOptions* o) { o->plain_chunker.overlap_tokens = 400; }, "plain_chunker.overlap_tokens"},
      {[](BuildOptions* o) { o->bm25.k1 = -1; }, "bm25.k1"},
      {[](BuildOptions* o) { o->bm25.b = 1.5f; }, "bm25.b"},
      {[](BuildOptions* o) { o->bm25.heading_weight = std::numeric_limits<float>::infinity(); }, "heading_weight"},
      {[](BuildOptions* o) { o->embed_batch = 0; }, "embed_batch"},
      {[](BuildOptions* o) { o->hnsw_m = 1; }, "hnsw_m"},
      {[](BuildOptions* o) { o->hnsw_ef_construction = 0; }, "hnsw_ef_construction"},
  };
  for (const auto& [set, name] : bad) {
    BuildOptions options;
    set(&options);
    EXPECT_FALSE(validate(options).is_ok()) << name;
    auto built = Index::build(corpus("c", 4, 1), options);
    ASSERT_FALSE(built.is_ok()) << name;
    EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(built.status().message().find(name), std::string::npos) << built.status().to_string();
  }
  // Without stemming, the stemmer's name is not used and not checked.
  BuildOptions unstemmed;
  unstemmed.analyzer.stem = false;
  unstemmed.analyzer.stemmer = "klingon";
  EXPECT_TRUE(validate(unstemmed).is_ok());
}

// An index saved by an older build (format version 1: before every option
// was saved; 2: before documents had metadata) is refused with a message that
// says what to do.
TEST(OptionsTest, VersionOneIndexIsRefusedWithAReason) {
  auto built = Index::build(corpus("c", 4, 1), BuildOptions{});
  ASSERT_TRUE(built.is_ok());
  const fs::path dir = fs::temp_directory_path() / ("medsearch_options_v1_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*built)->save(dir).is_ok());
  std::string gen;
  std::ifstream(dir / "CURRENT") >> gen;
  const fs::path manifest = dir / gen / "manifest.json";
  std::string text;
  {
    std::ifstream in(manifest);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = text.find("\"version\": 3");
  ASSERT_NE(at, std::string::npos) << text;
  for (const char* older : {"\"version\": 1", "\"version\": 2"}) {
    std::string old_text = text;
    old_text.replace(at, 12, older);
    std::ofstream(manifest) << old_text;
    auto loaded = Index::load(dir);
    ASSERT_FALSE(loaded.is_ok());
    EXPECT_EQ(loaded.status().code(), StatusCode::kOldFormat);
    EXPECT_NE(loaded.status().message().find("build the index again"), std::string::npos) << loaded.status().to_string();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace medsearch
