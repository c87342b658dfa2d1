// Directories replaced whole (core/internal/generation_dir.h): a published
// generation becomes current and older ones go; an unpublished one leaves no
// trace and the current one untouched; leftovers of killed writers are
// cleared; a foreign directory is refused; a damaged CURRENT is an error.
// (Killing a writer at random moments is tests/index/crash_safe_save_test.cc.)
#include "core/internal/generation_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/internal/binary_io.h"
#include "tests/scratch_dir.h"

namespace medsearch::internal {
namespace {

namespace fs = std::filesystem;

class GenerationDirTest : public ::testing::Test {
 protected:
  // Writes one generation holding `file` with `text`; published or not.
  Status write(const std::string& text, bool publish = true) {
    auto writer = GenerationWriter::begin(dir_, "test store");
    if (!writer) return writer.status();
    MEDSEARCH_RETURN_IF_ERROR(write_file_atomic(writer->partial() / "file", text));
    return publish ? writer->publish() : Status::ok();
  }
  std::string current_text() {
    auto gen = current_generation(dir_, "test store");
    if (!gen) return "error: " + gen.status().to_string();
    auto text = read_file(dir_ / *gen / "file");
    return text ? *text : "error: " + text.status().to_string();
  }
  std::set<std::string> entries() {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.insert(e.path().filename().string());
    return out;
  }
  testing::ScratchDir scratch_{"generation_dir_test"};
  const fs::path dir_ = scratch_.path();
};

TEST_F(GenerationDirTest, PublishedGenerationsReplaceEachOther) {
  ASSERT_TRUE(write("one").is_ok());
  EXPECT_EQ(current_text(), "one");
  EXPECT_EQ(entries(), (std::set<std::string>{"CURRENT", "gen-000001"}));
  ASSERT_TRUE(write("two").is_ok());
  EXPECT_EQ(current_text(), "two");
  EXPECT_EQ(entries(), (std::set<std::string>{"CURRENT", "gen-000002"}));
}

TEST_F(GenerationDirTest, AnUnpublishedGenerationLeavesNoTrace) {
  ASSERT_TRUE(write("one").is_ok());
  ASSERT_TRUE(write("half", /*publish=*/false).is_ok());
  EXPECT_EQ(current_text(), "one");
  EXPECT_EQ(entries(), (std::set<std::string>{"CURRENT", "gen-000001"}));
}

TEST_F(GenerationDirTest, LeftoversOfKilledWritersAreCleared) {
  // A partial generation and a complete one never made current, as a killed
  // writer leaves them; CURRENT still names gen-000001.
  ASSERT_TRUE(write("one").is_ok());
  fs::create_directories(dir_ / "gen-000007.partial");
  fs::create_directories(dir_ / "gen-000008");
  ASSERT_TRUE(write("two").is_ok());
  EXPECT_EQ(current_text(), "two");
  EXPECT_EQ(entries(), (std::set<std::string>{"CURRENT", "gen-000009"}));
  // Without CURRENT only partial generations go: a complete one may be all that is left.
  fs::remove_all(dir_);
  fs::create_directories(dir_ / "gen-000003.partial");
  fs::create_directories(dir_ / "gen-000002");
  auto writer = GenerationWriter::begin(dir_, "test store");
  ASSERT_TRUE(writer.is_ok()) << writer.status().to_string();
  EXPECT_EQ(writer->partial().filename(), "gen-000004.partial");
  EXPECT_TRUE(fs::exists(dir_ / "gen-000002"));
  EXPECT_FALSE(fs::exists(dir_ / "gen-000003.partial"));
}

TEST_F(GenerationDirTest, AForeignDirectoryIsRefused) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "notes.txt") << "mine";
  auto writer = GenerationWriter::begin(dir_, "test store");
  ASSERT_FALSE(writer.is_ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(writer.status().message().find("not empty and not a test store"), std::string::npos);
  EXPECT_EQ(entries(), (std::set<std::string>{"notes.txt"}));
}

TEST_F(GenerationDirTest, MissingOrDamagedCurrentIsAnError) {
  auto missing = current_generation(dir_, "test store");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no test store at"), std::string::npos);
  ASSERT_TRUE(write("one").is_ok());
  for (const std::string bad : {"../../etc\n", "gen-\n", "gen-12x\n", "", "gen-000009\n"}) {
    ASSERT_TRUE(write_file_atomic(dir_ / "CURRENT", bad).is_ok());
    auto gen = current_generation(dir_, "test store");
    EXPECT_EQ(gen.status().code(), StatusCode::kCorrupt) << "CURRENT '" << bad << "'";
  }
}

}  // namespace
}  // namespace medsearch::internal
