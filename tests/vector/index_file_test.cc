// The vector index container (core/vector/index_file.h) on its own: the
// header and trailer layout, create_index_file -> open_verified ->
// payload_reader round trips (small, aligned and >1 MiB writes), crash safety
// of the temp file, and every kind of damage open_verified must refuse with
// kCorrupt naming the file. The whole-index damage sweep is
// tests/index/corruption_test.cc.
#include "core/vector/index_file.h"
#include "tests/scratch_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>
#define XXH_INLINE_ALL  // the reference checksum, without linking xxHash here
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace medsearch::vector::internal {
namespace {

namespace fs = std::filesystem;

using testing::read_bytes;
using testing::write_bytes;  // a new inode each time: a mapping of the old file must not change

// Rewrites the trailer's checksum to match the (edited) bytes before it.
std::string reseal(std::string bytes) {
  const uint64_t h = XXH3_64bits(bytes.data(), bytes.size() - kTrailerBytes);
  std::memcpy(bytes.data() + bytes.size() - kTrailerBytes, &h, 8);
  return bytes;
}

template <typename T>
T load_at(const std::string& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

class IndexFile : public ::testing::Test {
 protected:

  // A file with a uint32, 64-byte-aligned floats and a trailing uint16.
  fs::path write_small(const std::string& name, IndexKind kind = IndexKind::kHnsw) {
    const fs::path file = dir_ / name;
    auto w = create_index_file(file, kind);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    w->put<uint32_t>(7);
    w->align(64);
    w->write(floats_.data(), floats_.size() * sizeof(float));
    w->put<uint16_t>(0xbeef);
    EXPECT_TRUE(finish_index_file(*w).is_ok());
    return file;
  }

  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  testing::ScratchDir scratch_{"index_file_test"};
  const fs::path dir_ = scratch_.path();
  const std::vector<float> floats_ = {0.5f, -1.0f, 2.25f, 3.0f, 1e-7f};
};

TEST_F(IndexFile, HeaderPayloadAndTrailerLayout) {
  const fs::path file = write_small("flat.msv", IndexKind::kFlat);
  const std::string bytes = read_bytes(file);
  // header 16 | uint32 at 16 | pad to 64 | 5 floats at 64 | uint16 at 84 | trailer 16
  ASSERT_EQ(bytes.size(), 64 + floats_.size() * sizeof(float) + 2 + kTrailerBytes);
  EXPECT_EQ(bytes.substr(0, 8), "MSVECIDX");
  EXPECT_EQ(load_at<uint32_t>(bytes, 8), kFormatVersion);
  EXPECT_EQ(load_at<uint32_t>(bytes, 12), static_cast<uint32_t>(IndexKind::kFlat));
  EXPECT_EQ(load_at<uint32_t>(bytes, 16), 7u);
  EXPECT_EQ(bytes.substr(20, 44), std::string(44, '\0'));  // zero padding
  EXPECT_EQ(load_at<float>(bytes, 64), 0.5f);
  EXPECT_EQ(load_at<uint16_t>(bytes, 84), 0xbeef);
  EXPECT_EQ(bytes.substr(bytes.size() - 8), "MSVECEND");
  EXPECT_EQ(load_at<uint64_t>(bytes, bytes.size() - 16), XXH3_64bits(bytes.data(), bytes.size() - kTrailerBytes));
}

TEST_F(IndexFile, WrittenValuesReadBackThroughThePayloadReader) {
  const fs::path file = write_small("hnsw.msv");
  EXPECT_EQ(listing(), std::vector<std::string>{"hnsw.msv"});  // no temp file left
  auto v = open_verified(file);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(v->kind, IndexKind::kHnsw);
  auto c = payload_reader(*v->file, file.string());
  EXPECT_EQ(c.offset(), kHeaderBytes);
  uint32_t n = 0;
  ASSERT_TRUE(c.get(&n).is_ok());
  EXPECT_EQ(n, 7u);
  const char* rows = nullptr;
  ASSERT_TRUE(c.view(floats_.size() * sizeof(float), 64, &rows).is_ok());
  EXPECT_EQ(rows - v->file->data(), 64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(rows) % 64, 0u);  // usable in place
  std::vector<float> back(floats_.size());
  std::memcpy(back.data(), rows, back.size() * sizeof(float));
  EXPECT_EQ(back, floats_);
  uint16_t tail = 0;
  ASSERT_TRUE(c.get(&tail).is_ok());
  EXPECT_EQ(tail, 0xbeef);
  EXPECT_TRUE(c.at_end());
  // Releasing pages does not change what is read.
  v->file->release_pages(0, v->file->size());
  std::memcpy(back.data(), rows, back.size() * sizeof(float));
  EXPECT_EQ(back, floats_);
}

// Writes of 1 MiB or more bypass the buffer; what was buffered before them
// must still come first, and the checksum covers everything.
TEST_F(IndexFile, LargeWritesKeepTheirOrder) {
  const fs::path file = dir_ / "large.msv";
  std::vector<uint32_t> big((3u << 20) / 4);  // 3 MiB
  std::iota(big.begin(), big.end(), 1u);
  std::vector<uint32_t> medium(200000);  // 800 KB: buffered, then flushed by the next write
  std::iota(medium.begin(), medium.end(), 5000000u);
  {
    auto w = create_index_file(file, IndexKind::kFlat);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    w->put<uint64_t>(big.size());
    w->write(medium.data(), medium.size() * 4);
    w->write(big.data(), big.size() * 4);
    w->put<uint32_t>(99);
    w->write(medium.data(), medium.size() * 4);
    ASSERT_TRUE(finish_index_file(*w).is_ok());
  }
  auto v = open_verified(file);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  auto c = payload_reader(*v->file, file.string());
  uint64_t n = 0;
  ASSERT_TRUE(c.get(&n).is_ok());
  ASSERT_EQ(n, big.size());
  auto read_u32s = [&](size_t count) {
    const char* p = nullptr;
    EXPECT_TRUE(c.view(count * 4, 1, &p).is_ok());
    std::vector<uint32_t> out(count);
    if (p) std::memcpy(out.data(), p, count * 4);
    return out;
  };
  EXPECT_EQ(read_u32s(medium.size()), medium);
  EXPECT_EQ(read_u32s(big.size()), big);
  uint32_t mark = 0;
  ASSERT_TRUE(c.get(&mark).is_ok());
  EXPECT_EQ(mark, 99u);
  EXPECT_EQ(read_u32s(medium.size()), medium);
  EXPECT_TRUE(c.at_end());
}

// A writer dropped before finish_index_file() removes its temp file and
// leaves the file at the path as it was: the old index or none.
TEST_F(IndexFile, AbandonedWriterLeavesTheOldFile) {
  const fs::path file = write_small("dense.idx");
  const std::string old_bytes = read_bytes(file);
  {
    auto w = create_index_file(file, IndexKind::kFlat);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    w->put<uint64_t>(123);
    EXPECT_TRUE(fs::exists(dir_ / "dense.idx.tmp"));
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"dense.idx"});
  EXPECT_EQ(read_bytes(file), old_bytes);
  {
    auto w = create_index_file(dir_ / "new.idx", IndexKind::kFlat);
    ASSERT_TRUE(w.is_ok());
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"dense.idx"});
  // A writer whose directory is missing fails to create, as an I/O error.
  auto bad = create_index_file(dir_ / "missing" / "x.idx", IndexKind::kFlat);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kIoError);
}

// Each kind of damage is refused by open_verified with kCorrupt naming the
// file, and the reason.
TEST_F(IndexFile, DamageIsCorruptAndNamesTheFile) {
  const fs::path file = write_small("hnsw.msv");
  const std::string good = read_bytes(file);
  ASSERT_TRUE(open_verified(file).is_ok());
  struct Case {
    std::string what, bytes, reason;
  };
  std::vector<Case> cases;
  auto edited = [&](size_t at, char value) {
    std::string b = good;
    b[at] = value;
    return b;
  };
  cases.push_back({"payload byte flipped", edited(70, static_cast<char>(good[70] ^ 0x01)), "checksum mismatch"});
  cases.push_back({"padding byte set", edited(40, 1), "checksum mismatch"});
  cases.push_back({"checksum byte flipped", edited(good.size() - 12, static_cast<char>(good[good.size() - 12] ^ 0x80)),
                   "checksum mismatch"});
  cases.push_back({"magic", edited(0, 'X'), "not a medsearch vector index"});
  {
    std::string b = good;
    const uint32_t version = kFormatVersion + 1;
    std::memcpy(b.data() + 8, &version, 4);
    cases.push_back({"newer version (resealed)", reseal(b), "format version 2, this build reads 1"});
  }
  {
    std::string b = good;
    const uint32_t kind = 7;
    std::memcpy(b.data() + 12, &kind, 4);
    cases.push_back({"unknown kind (resealed)", reseal(b), "unknown index kind"});
    cases.push_back({"unknown kind", b, "checksum mismatch"});
  }
  cases.push_back({"end marker", edited(good.size() - 1, 'x'), "no end marker"});
  cases.push_back({"last byte cut", good.substr(0, good.size() - 1), "no end marker"});
  cases.push_back({"byte appended", good + '\0', "no end marker"});
  cases.push_back({"payload cut", good.substr(0, 40) + good.substr(good.size() - kTrailerBytes), "checksum mismatch"});
  cases.push_back({"header only", good.substr(0, kHeaderBytes + kTrailerBytes - 1), "file too short"});
  cases.push_back({"one byte", good.substr(0, 1), "file too short"});
  cases.push_back({"empty", "", "empty file"});
  for (const Case& c : cases) {
    write_bytes(file, c.bytes);
    const auto r = open_verified(file);
    ASSERT_FALSE(r.is_ok()) << c.what;
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << c.what << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find(file.string()), std::string::npos) << c.what << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(c.reason), std::string::npos) << c.what << ": " << r.status().message();
  }
  write_bytes(file, good);
  EXPECT_TRUE(open_verified(file).is_ok());
  fs::remove(file);
  const auto missing = open_verified(file);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// The payload reader stays inside the payload: it never reads the trailer,
// and a read or view past the payload's end is kCorrupt at the current
// offset.
TEST_F(IndexFile, PayloadReadsStopAtThePayloadEnd) {
  const fs::path file = dir_ / "four.msv";
  {
    auto w = create_index_file(file, IndexKind::kFlat);
    ASSERT_TRUE(w.is_ok());
    w->put<uint32_t>(1);  // payload: 4 bytes, then 16 of trailer
    ASSERT_TRUE(finish_index_file(*w).is_ok());
  }
  auto v = open_verified(file);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  {
    auto c = payload_reader(*v->file, "four.msv");
    uint64_t too_big = 0;
    const Status st = c.get(&too_big);  // the trailer would have 8 bytes to give
    EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    EXPECT_EQ(st.message(), "four.msv: truncated data at byte 16");
    EXPECT_EQ(c.offset(), kHeaderBytes);  // nothing consumed
    const char* p = nullptr;
    EXPECT_EQ(c.view(5, 1, &p).code(), StatusCode::kCorrupt);
    EXPECT_EQ(c.view(1, 64, &p).code(), StatusCode::kCorrupt);  // aligning alone passes the end
    EXPECT_EQ(c.view(SIZE_MAX, 1, &p).code(), StatusCode::kCorrupt);
    EXPECT_EQ(p, nullptr);
    ASSERT_TRUE(c.view(4, 4, &p).is_ok());
    uint32_t one = 0;
    std::memcpy(&one, p, 4);
    EXPECT_EQ(one, 1u);
    EXPECT_TRUE(c.at_end());
    uint8_t more = 0;
    EXPECT_EQ(c.get(&more).code(), StatusCode::kCorrupt);
    EXPECT_TRUE(c.view(0, 1, &p).is_ok());  // an empty view at the end is fine
  }
  {
    auto c = payload_reader(*v->file, "four.msv");
    const char* p = nullptr;
    EXPECT_EQ(c.view(0, 64, &p).code(), StatusCode::kCorrupt);  // even empty: 64 is past the end (20)
    EXPECT_EQ(c.offset(), kHeaderBytes);
  }
}

// align(a) pads with zeros for any a, including a larger than 64.
TEST_F(IndexFile, AlignPadsWithZerosBeyondSixtyFourBytes) {
  // (Once it padded from a 64-byte array of zeros with up to a - 1 bytes,
  // reading past the array for a > 64.)
  const fs::path file = dir_ / "page.msv";
  {
    auto w = create_index_file(file, IndexKind::kFlat);
    ASSERT_TRUE(w.is_ok());
    w->align(4096);
    w->put<uint8_t>(1);
    ASSERT_TRUE(finish_index_file(*w).is_ok());
  }
  const std::string bytes = read_bytes(file);
  ASSERT_EQ(bytes.size(), 4096 + 1 + kTrailerBytes);
  const auto padding = std::string_view(bytes).substr(kHeaderBytes, 4096 - kHeaderBytes);
  EXPECT_EQ(std::count(padding.begin(), padding.end(), '\0'), static_cast<ptrdiff_t>(padding.size()));
}

}  // namespace
}  // namespace medsearch::vector::internal
