// The read-only file mapping (core/internal/mapped_file.h): contents and
// lifetime, empty files, bounds-checked views, and the errors for a missing
// file, a directory, a FIFO, a device and a file cut short under a reader.
#include "core/internal/mapped_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/internal/binary_io.h"
#include "tests/scratch_dir.h"

namespace medsearch::internal {
namespace {

namespace fs = std::filesystem;

class MappedFileTest : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  testing::ScratchDir scratch_{"mapped_file_test"};
  const fs::path dir_ = scratch_.path();
};

TEST_F(MappedFileTest, MapsTheWholeFile) {
  std::string bytes(10000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  const fs::path p = write("weights.bin", bytes);
  auto f = MappedFile::open(p);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->size(), bytes.size());
  EXPECT_EQ((*f)->bytes(), bytes);
  EXPECT_EQ((*f)->path(), p);
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->data()) % 4096, 0u);  // a mapping starts on a page
  // Releasing pages changes nothing that is read, at any offset and length.
  (*f)->release_pages(0, (*f)->size());
  (*f)->release_pages(100, 5000);
  (*f)->release_pages(20000, 10);  // past the end: nothing to do
  (*f)->release_pages(4096, SIZE_MAX);
  EXPECT_EQ((*f)->bytes(), bytes);
}

TEST_F(MappedFileTest, TheMappingOutlivesTheFileName) {
  const fs::path p = write("old.idx", "generation one");
  auto f = MappedFile::open(p);
  ASSERT_TRUE(f.is_ok());
  std::shared_ptr<const MappedFile> held = *f;
  fs::remove(p);
  write("old.idx", "generation two, longer");  // a new inode under the same name
  EXPECT_EQ(held->bytes(), "generation one");
}

TEST_F(MappedFileTest, AnEmptyFileMapsToNoBytes) {
  const fs::path p = write("empty", "");
  auto f = MappedFile::open(p);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->size(), 0u);
  EXPECT_EQ((*f)->data(), nullptr);
  EXPECT_TRUE((*f)->bytes().empty());
  EXPECT_TRUE((*f)->view(0, 0).is_ok());
  EXPECT_EQ((*f)->view(0, 1).status().code(), StatusCode::kCorrupt);
  (*f)->release_pages(0, 100);  // nothing mapped, nothing to release
  // A reader over it fails its first read as truncated data.
  BinaryReader r((*f)->bytes(), p.string());
  uint32_t v = 0;
  EXPECT_EQ(r.get(&v).message(), p.string() + ": truncated data at byte 0");
}

TEST_F(MappedFileTest, ViewsAreBoundsChecked) {
  const fs::path p = write("ten", "0123456789");
  auto f = MappedFile::open(p);
  ASSERT_TRUE(f.is_ok());
  auto mid = (*f)->view(3, 4);
  ASSERT_TRUE(mid.is_ok());
  EXPECT_EQ(*mid, "3456");
  EXPECT_TRUE((*f)->view(10, 0).is_ok());  // empty, at the end
  EXPECT_EQ(*(*f)->view(0, 10), "0123456789");
  struct Case {
    size_t offset, n;
  };
  for (const Case c : {Case{0, 11}, Case{9, 2}, Case{10, 1}, Case{11, 0}, Case{1, SIZE_MAX}, Case{SIZE_MAX, 2}}) {
    const auto v = (*f)->view(c.offset, c.n);
    ASSERT_FALSE(v.is_ok()) << c.offset << " + " << c.n;
    EXPECT_EQ(v.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(v.status().message().find(p.string()), std::string::npos) << v.status().message();
    EXPECT_NE(v.status().message().find("past the end of the file (10 bytes)"), std::string::npos)
        << v.status().message();
  }
}

TEST_F(MappedFileTest, AMissingFileIsNotFoundAndNamed) {
  const fs::path p = dir_ / "no" / "model.safetensors";
  const auto f = MappedFile::open(p);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.status().message(), "no such file: " + p.string());
}

TEST_F(MappedFileTest, ADirectoryIsAnIoError) {
  const auto f = MappedFile::open(dir_);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kIoError);
  EXPECT_EQ(f.status().message(), dir_.string() + " is a directory, not a file");
}

TEST_F(MappedFileTest, OtherNonRegularFilesAreIoErrors) {
  // A FIFO (opening it must not wait for a writer) and a character device.
  const fs::path fifo = dir_ / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const fs::path& p : {fifo, fs::path("/dev/null")}) {
    const auto f = MappedFile::open(p);
    ASSERT_FALSE(f.is_ok()) << p;
    EXPECT_EQ(f.status().code(), StatusCode::kIoError);
    EXPECT_EQ(f.status().message(), p.string() + " is not a regular file");
  }
}

TEST_F(MappedFileTest, AnUnreadableFileIsAnIoError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of their mode";
  const fs::path p = write("secret", "x");
  fs::permissions(p, fs::perms::none);
  const auto f = MappedFile::open(p);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kIoError);
  EXPECT_NE(f.status().message().find("cannot open " + p.string()), std::string::npos) << f.status().message();
}

// A file cut short (a crash mid-copy, say) maps fine; reading what is not
// there is kCorrupt at the offset where the data stops.
TEST_F(MappedFileTest, ATruncatedFileIsCorruptWhereItStops) {
  BinaryWriter w;
  w.put<uint64_t>(3);
  w.put_vector(std::vector<float>{1.0f, 2.0f, 3.0f});
  const fs::path p = write("rows.bin", w.buffer().substr(0, w.buffer().size() - 2));
  auto f = MappedFile::open(p);
  ASSERT_TRUE(f.is_ok());
  BinaryReader r((*f)->bytes(), p.string());
  uint64_t n = 0;
  ASSERT_TRUE(r.get(&n).is_ok());
  EXPECT_EQ(n, 3u);
  std::vector<float> rows;
  const Status st = r.get_vector(&rows);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_EQ(st.message(), p.string() + ": truncated data at byte 16");
}

}  // namespace
}  // namespace medsearch::internal
