// regressions_test.cc: one test per bug the libFuzzer targets of
// tests/fuzz found (tools/fuzz.sh), so each stays fixed in the normal suite.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <medsearch/index.h>

#include "core/index/options_io.h"
#include "core/internal/binary_io.h"
#include "core/text/analyzer.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

// fuzz_tokenizers: only the last "'s" of "A1's's" was dropped, so the token
// "a1's" re-analysed from its own span gave "a1" (seed tokenizers/double-possessive).
TEST(FuzzRegression, EveryFinalPossessiveIsDropped) {
  const text::Analyzer plain(text::AnalyzerOptions{.stem = false, .remove_stopwords = false, .compound_parts = false});
  EXPECT_THAT(plain.tokenize("cancer A1's's role"), ElementsAre("cancer", "a1", "role"));
  std::vector<text::Token> tokens;
  plain.analyze("A1's's", &tokens);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_THAT(plain.tokenize(std::string("A1's's").substr(tokens[0].begin, tokens[0].end - tokens[0].begin)),
              ElementsAre("a1"));
}

// fuzz_tokenizers: the Porter stemmer reduces "s" to nothing, and analyze()
// emitted an empty term, which every lone "s" of every text then matched.
TEST(FuzzRegression, StemmerNeverYieldsAnEmptyTerm) {
  const text::Analyzer porter(text::AnalyzerOptions{.stemmer = "porter"});
  ASSERT_TRUE(porter.options().stem);
  EXPECT_THAT(porter.terms("S"), ElementsAre("s"));
  EXPECT_THAT(porter.terms("s s vitamins"), ElementsAre("s", "s", "vitamin"));
  std::vector<text::Token> tokens;
  porter.analyze("S", &tokens);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].begin, 0u);
  EXPECT_EQ(tokens[0].end, 1u);
  EXPECT_THAT(text::Analyzer().terms("S"), ElementsAre("s"));  // the English stemmer already kept it
}

// fuzz_index_load: documents.bin with a checksum that matches but a heading
// path count of 2^32 - 1 made load() resize a vector to that many elements
// (96 GB: std::bad_alloc through a noexcept-free path, i.e. a crash) instead
// of failing as truncated data.
TEST(FuzzRegression, HugeHeadingPathCountIsCorruptNotAnAllocation) {
  io::Document d;
  d.doc_id = "a";
  d.corpus = "c";
  d.body = "pleural mesothelioma pemetrexed";
  auto index = Index::build({d}, BuildOptions{});
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  const fs::path dir = fs::temp_directory_path() / ("medsearch_fuzz_regression_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*index)->save(dir).is_ok());

  auto current = internal::read_file(dir / "CURRENT");
  ASSERT_TRUE(current.is_ok());
  std::string gen = *current;
  while (!gen.empty() && gen.back() == '\n') gen.pop_back();
  const fs::path gdir = dir / gen;

  // The build options, no documents, then the damaged count.
  internal::BinaryWriter w;
  write_options(BuildOptions{}, &w);
  w.put<uint32_t>(0);           // documents
  w.put<uint32_t>(0xFFFFFFFFu);  // heading paths
  const std::string documents = w.buffer();
  ASSERT_TRUE(internal::write_file_atomic(gdir / "documents.bin", documents).is_ok());
  // Keep the manifest's size and checksum in step, so the parser is reached.
  auto manifest = internal::read_file(gdir / "manifest.json");
  ASSERT_TRUE(manifest.is_ok());
  const std::string key = "\"documents.bin\": {";
  const size_t at = manifest->find(key);
  ASSERT_NE(at, std::string::npos);
  manifest->replace(at, manifest->find('}', at) - at,
                    key + "\"bytes\": " + std::to_string(documents.size()) + ", \"xxh64\": \"" +
                        internal::checksum_hex(documents) + "\"");
  ASSERT_TRUE(internal::write_file_atomic(gdir / "manifest.json", *manifest).is_ok());

  auto loaded = Index::load(dir);
  ASSERT_FALSE(loaded.is_ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt) << loaded.status().to_string();
  EXPECT_NE(loaded.status().message().find("documents.bin"), std::string::npos) << loaded.status().to_string();
  fs::remove_all(dir);
}

// fuzz_index_load: CURRENT holding "gen-000001" and a NUL passed the name
// check; the OS cut the path at the NUL, so load() tried to read the
// generation directory as its manifest and failed with kIoError ("cannot
// read .../gen-000001") instead of calling CURRENT corrupt.
TEST(FuzzRegression, CurrentWithANulIsCorrupt) {
  io::Document d;
  d.doc_id = "a";
  d.corpus = "c";
  d.body = "pleural mesothelioma pemetrexed";
  auto index = Index::build({d}, BuildOptions{});
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  const fs::path dir = fs::temp_directory_path() / ("medsearch_fuzz_current_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE((*index)->save(dir).is_ok());
  auto current = internal::read_file(dir / "CURRENT");
  ASSERT_TRUE(current.is_ok());
  std::string gen = *current;
  while (!gen.empty() && gen.back() == '\n') gen.pop_back();

  const std::string nul(1, '\0');
  for (const std::string& bad : std::vector<std::string>{gen + nul, gen + nul + "\n", gen + nul + "x", "gen-",
                                                         "gen-00000a\n", "gen-1/../" + gen}) {
    ASSERT_TRUE(internal::write_file_atomic(dir / "CURRENT", bad).is_ok());
    auto loaded = Index::load(dir);
    ASSERT_FALSE(loaded.is_ok());
    EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt) << loaded.status().to_string();
    EXPECT_NE(loaded.status().message().find("CURRENT"), std::string::npos) << loaded.status().to_string();
  }
  ASSERT_TRUE(internal::write_file_atomic(dir / "CURRENT", gen + "\r\n").is_ok());
  EXPECT_TRUE(Index::load(dir).is_ok());  // what save() writes, give or take the line end, still loads
  fs::remove_all(dir);
}

}  // namespace
}  // namespace medsearch
