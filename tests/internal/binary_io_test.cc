// Little-endian serialisation and whole-file I/O (core/internal/binary_io.h):
// round trips, the exact byte layout, bounds checks that turn every read past
// the end (and every forged count) into a kCorrupt Status naming the file,
// reader windows and aligned views, checksums, the streaming file writer
// (same bytes as in memory, errors kept until commit) and atomic writes that
// leave no temp file behind.
#include "core/internal/binary_io.h"
#include "tests/scratch_dir.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace medsearch::internal {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

struct Pair {
  int32_t a;
  float b;
};

// Everything the writer can put, in one buffer.
std::string sample_buffer() {
  BinaryWriter w;
  w.put<uint8_t>(0xab);
  w.put<uint32_t>(0xdeadbeef);
  w.put<int64_t>(-5);
  w.put<float>(1.5f);
  w.put<double>(-0.25);
  w.put(Pair{-7, 2.5f});
  w.put_string("hello");
  w.put_string("");
  w.put_string("nul\0inside"s);
  w.put_vector(std::vector<float>{1.0f, -2.0f, 3.5f});
  w.put_vector(std::vector<uint16_t>{});
  w.put_strings({"alpha", "", "gamma"});
  return w.buffer();
}

// Reads what sample_buffer() wrote, stopping at the first error.
Status read_sample(BinaryReader* r) {
  uint8_t u8;
  uint32_t u32;
  int64_t i64;
  float f;
  double d;
  Pair p;
  std::string s;
  std::vector<float> vf;
  std::vector<uint16_t> vu;
  std::vector<std::string> vs;
  MEDSEARCH_RETURN_IF_ERROR(r->get(&u8));
  MEDSEARCH_RETURN_IF_ERROR(r->get(&u32));
  MEDSEARCH_RETURN_IF_ERROR(r->get(&i64));
  MEDSEARCH_RETURN_IF_ERROR(r->get(&f));
  MEDSEARCH_RETURN_IF_ERROR(r->get(&d));
  MEDSEARCH_RETURN_IF_ERROR(r->get(&p));
  MEDSEARCH_RETURN_IF_ERROR(r->get_string(&s));
  MEDSEARCH_RETURN_IF_ERROR(r->get_string(&s));
  MEDSEARCH_RETURN_IF_ERROR(r->get_string(&s));
  MEDSEARCH_RETURN_IF_ERROR(r->get_vector(&vf));
  MEDSEARCH_RETURN_IF_ERROR(r->get_vector(&vu));
  MEDSEARCH_RETURN_IF_ERROR(r->get_strings(&vs));
  return Status::ok();
}

TEST(BinaryIo, RoundTripsEveryKindOfValue) {
  const std::string buf = sample_buffer();
  BinaryReader r(buf, "sample.bin");
  uint8_t u8 = 0;
  uint32_t u32 = 0;
  int64_t i64 = 0;
  float f = 0;
  double d = 0;
  Pair p{};
  std::string s1, s2, s3;
  std::vector<float> vf;
  std::vector<uint16_t> vu = {9, 9};  // overwritten by the empty vector
  std::vector<std::string> vs;
  ASSERT_TRUE(r.get(&u8).is_ok());
  ASSERT_TRUE(r.get(&u32).is_ok());
  ASSERT_TRUE(r.get(&i64).is_ok());
  ASSERT_TRUE(r.get(&f).is_ok());
  ASSERT_TRUE(r.get(&d).is_ok());
  ASSERT_TRUE(r.get(&p).is_ok());
  ASSERT_TRUE(r.get_string(&s1).is_ok());
  ASSERT_TRUE(r.get_string(&s2).is_ok());
  ASSERT_TRUE(r.get_string(&s3).is_ok());
  ASSERT_TRUE(r.get_vector(&vf).is_ok());
  ASSERT_TRUE(r.get_vector(&vu).is_ok());
  EXPECT_FALSE(r.at_end());
  ASSERT_TRUE(r.get_strings(&vs).is_ok());
  EXPECT_TRUE(r.at_end());

  EXPECT_EQ(u8, 0xab);
  EXPECT_EQ(u32, 0xdeadbeefu);
  EXPECT_EQ(i64, -5);
  EXPECT_EQ(f, 1.5f);
  EXPECT_EQ(d, -0.25);
  EXPECT_EQ(p.a, -7);
  EXPECT_EQ(p.b, 2.5f);
  EXPECT_EQ(s1, "hello");
  EXPECT_EQ(s2, "");
  EXPECT_EQ(s3, "nul\0inside"s);
  EXPECT_EQ(vf, (std::vector<float>{1.0f, -2.0f, 3.5f}));
  EXPECT_TRUE(vu.empty());
  EXPECT_EQ(vs, (std::vector<std::string>{"alpha", "", "gamma"}));
}

// The layout is part of every index file: little-endian values, a uint32
// length before a string or a string list, a uint64 count before a vector.
TEST(BinaryIo, LayoutIsLittleEndianWithLengthPrefixes) {
  BinaryWriter w;
  w.put<uint32_t>(0x01020304);
  EXPECT_EQ(w.buffer(), "\x04\x03\x02\x01"s);
  w.buffer().clear();
  w.put_string("ab");
  EXPECT_EQ(w.buffer(), "\x02\0\0\0ab"s);
  w.buffer().clear();
  w.put_vector(std::vector<uint16_t>{0x0102, 0x0304});
  EXPECT_EQ(w.buffer(), "\x02\0\0\0\0\0\0\0\x02\x01\x04\x03"s);
  w.buffer().clear();
  w.put_strings({"x", "yz"});
  EXPECT_EQ(w.buffer(), "\x02\0\0\0\x01\0\0\0x\x02\0\0\0yz"s);
}

// Every proper prefix of a valid buffer is refused with kCorrupt naming the
// file; nothing reads past the end.
TEST(BinaryIo, EveryTruncationIsCorruptAndNamesTheFile) {
  const std::string buf = sample_buffer();
  {
    BinaryReader whole(buf, "whole.bin");
    ASSERT_TRUE(read_sample(&whole).is_ok());
    EXPECT_TRUE(whole.at_end());
  }
  for (size_t n = 0; n < buf.size(); ++n) {
    // A copy of exactly n bytes, so reading past it is an ASan error too.
    const std::string cut = buf.substr(0, n);
    BinaryReader r(cut, "lexical.bin");
    const Status st = read_sample(&r);
    ASSERT_EQ(st.code(), StatusCode::kCorrupt) << "prefix of " << n << " bytes: " << st.to_string();
    EXPECT_NE(st.message().find("lexical.bin"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
  }
}

TEST(BinaryIo, ErrorsGiveTheByteOffset) {
  const std::string buf = "\x01\0\0\0\x02\0"s;  // a uint32, then 2 of 8 bytes
  BinaryReader r(buf, "docs.bin");
  uint32_t a = 0;
  ASSERT_TRUE(r.get(&a).is_ok());
  uint64_t b = 0;
  const Status st = r.get(&b);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_EQ(st.message(), "docs.bin: truncated data at byte 4");
  EXPECT_EQ(r.corrupt("bad magic").message(), "docs.bin: bad magic at byte 4");
  // The failed read consumed nothing: a smaller value still fits.
  uint16_t c = 0;
  ASSERT_TRUE(r.get(&c).is_ok());
  EXPECT_EQ(c, 2);
  EXPECT_TRUE(r.at_end());
}

// A count that the remaining bytes cannot hold is refused before anything
// of that size is allocated, including counts whose byte size overflows.
TEST(BinaryIo, ForgedCountsFailWithoutAllocating) {
  auto forged_vector = [](uint64_t count, size_t payload_bytes) {
    BinaryWriter w;
    w.put<uint64_t>(count);
    w.buffer().append(payload_bytes, '\x7f');
    return w.buffer();
  };
  for (const uint64_t count : {uint64_t{3}, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max(),
                               // count * sizeof(float) wraps around to 4: an overflowing
                               // size check would accept it.
                               (uint64_t{1} << 62) + 1}) {
    const std::string buf = forged_vector(count, 8);  // room for 2 floats
    BinaryReader r(buf, "vectors.bin");
    std::vector<float> v;
    const Status st = r.get_vector(&v);
    EXPECT_EQ(st.code(), StatusCode::kCorrupt) << count;
    EXPECT_NE(st.message().find("vectors.bin"), std::string::npos);
    EXPECT_EQ(v.capacity(), 0u) << count;
  }
  {
    const std::string buf = forged_vector(2, 8);  // exactly 2 floats: fine
    BinaryReader r(buf, "vectors.bin");
    std::vector<float> v;
    ASSERT_TRUE(r.get_vector(&v).is_ok());
    EXPECT_EQ(v.size(), 2u);
    EXPECT_TRUE(r.at_end());
  }
  {
    BinaryWriter w;
    w.put<uint32_t>(0xffffffff);  // a 4 GiB string in 3 bytes
    w.buffer().append("abc");
    BinaryReader r(w.buffer(), "terms.bin");
    std::string s;
    const Status st = r.get_string(&s);
    EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    EXPECT_NE(st.message().find("terms.bin"), std::string::npos);
    EXPECT_EQ(s.capacity(), std::string().capacity());  // nothing beyond the small-string buffer
  }
  {
    BinaryWriter w;
    w.put<uint32_t>(0xffffffff);  // 4 billion strings in 8 bytes
    w.put<uint64_t>(0);
    BinaryReader r(w.buffer(), "terms.bin");
    std::vector<std::string> v;
    const Status st = r.get_strings(&v);
    EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    EXPECT_NE(st.message().find("terms.bin"), std::string::npos);
    EXPECT_EQ(v.capacity(), 0u);
  }
}

// get_strings() bounds its count by the remaining bytes, but each string
// takes at least 4 (its length), as its own comment says.
TEST(BinaryIo, StringListCountIsBoundedByFourBytesPerString) {
  // (Once it checked `n > remaining`: a damaged file of S bytes could make
  // the reader allocate ~32 x S bytes of empty strings before failing.)
  BinaryWriter w;
  w.put<uint32_t>(1000);  // 1000 strings need at least 4000 bytes; 1000 follow
  w.buffer().append(1000, '\0');
  BinaryReader r(w.buffer(), "terms.bin");
  std::vector<std::string> v;
  const Status st = r.get_strings(&v);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_EQ(v.capacity(), 0u);
}

TEST(BinaryIo, ChecksumIsXxh64AsSixteenHexDigits) {
  // Reference values of XXH64 with seed 0 (xxHash's own test vectors).
  EXPECT_EQ(checksum_hex(""), "ef46db3751d8e999");
  EXPECT_EQ(checksum_hex("abc"), "44bc2cf5ad770999");
  // Leading zeros are kept, digits are lower case, and one flipped bit
  // anywhere changes the checksum.
  std::mt19937 rng(7);
  std::string data(4096, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const std::string base = checksum_hex(data);
  ASSERT_EQ(base.size(), 16u);
  EXPECT_EQ(base.find_first_not_of("0123456789abcdef"), std::string::npos) << base;
  EXPECT_EQ(checksum_hex(data), base);
  for (size_t at : {size_t{0}, size_t{1}, size_t{2047}, size_t{4095}}) {
    std::string flipped = data;
    flipped[at] ^= 0x10;
    EXPECT_NE(checksum_hex(flipped), base) << at;
  }
  EXPECT_NE(checksum_hex(std::string_view(data).substr(0, 4095)), base);  // truncation
}

// A reader over [begin, end) of a span: reads stop at `end`, offsets and
// alignment count from the span's start (as in a mapped vector file, whose
// payload sits between a header and a trailer).
TEST(BinaryIo, ReaderWindowStopsAtItsEndAndAlignsFromTheStart) {
  BinaryWriter w;
  w.put<uint32_t>(0xaaaaaaaa);  // [0, 4): "header", outside the window
  w.put<uint16_t>(7);           // [4, 6)
  w.align(16);                  // zeros up to 16
  w.put<uint64_t>(99);          // [16, 24)
  w.put<uint32_t>(0xbbbbbbbb);  // [24, 28): "trailer", outside the window
  ASSERT_EQ(w.offset(), 28u);
  EXPECT_EQ(w.buffer().substr(6, 10), std::string(10, '\0'));
  const std::string buf = w.buffer();
  BinaryReader r(buf, "window.bin", 4, 24);
  EXPECT_EQ(r.offset(), 4u);
  EXPECT_EQ(r.remaining(), 20u);
  uint16_t a = 0;
  ASSERT_TRUE(r.get(&a).is_ok());
  EXPECT_EQ(a, 7);
  const char* p = nullptr;
  EXPECT_EQ(r.view(9, 16, &p).message(), "window.bin: truncated data at byte 6");  // 16 + 9 > 24
  EXPECT_EQ(r.view(1, 32, &p).code(), StatusCode::kCorrupt);  // the padding alone passes the end
  EXPECT_EQ(r.view(SIZE_MAX, 1, &p).code(), StatusCode::kCorrupt);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(r.offset(), 6u);  // failed views consume nothing
  ASSERT_TRUE(r.view(8, 16, &p).is_ok());
  EXPECT_EQ(p - buf.data(), 16);
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  EXPECT_EQ(v, 99u);
  EXPECT_TRUE(r.at_end());
  uint8_t more = 0;
  EXPECT_EQ(r.get(&more).message(), "window.bin: truncated data at byte 24");  // the trailer stays unread
  EXPECT_TRUE(r.view(0, 8, &p).is_ok());  // empty, aligned, at the end
}

TEST(BinaryIo, Xxh3IsTheWritersChecksum) {
  // XXH3-64 of nothing, seed 0 (xxHash's reference value).
  EXPECT_EQ(xxh3_64(""), 0x2d06800538d394c2u);
  BinaryWriter w;
  EXPECT_EQ(w.checksum(), xxh3_64(""));
  w.put_string("passage");
  w.put<float>(0.25f);
  EXPECT_EQ(w.checksum(), xxh3_64(w.buffer()));
  std::string flipped = w.buffer();
  flipped[5] ^= 1;
  EXPECT_NE(xxh3_64(flipped), w.checksum());
  EXPECT_NE(xxh3_64(std::string_view(w.buffer()).substr(1)), w.checksum());
  // An in-memory writer has no file to commit.
  EXPECT_EQ(w.commit().code(), StatusCode::kInternal);
  EXPECT_TRUE(w.path().empty());
}

class BinaryIoFiles : public ::testing::Test {
 protected:
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  testing::ScratchDir scratch_{"binary_io_test"};
  const fs::path dir_ = scratch_.path();
};

TEST_F(BinaryIoFiles, WriteThenReadGivesTheSameBytes) {
  const fs::path file = dir_ / "documents.bin";
  std::string data = sample_buffer();
  data += std::string(100000, '\0') + "tail\xff";  // NULs and high bytes survive
  ASSERT_TRUE(write_file_atomic(file, data).is_ok());
  auto back = read_file(file);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, data);
  BinaryReader r(*back, file.string());
  EXPECT_TRUE(read_sample(&r).is_ok());

  // An empty file reads as an empty string.
  ASSERT_TRUE(write_file_atomic(dir_ / "empty", "").is_ok());
  auto empty = read_file(dir_ / "empty");
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
}

TEST_F(BinaryIoFiles, AtomicWriteReplacesTheWholeFileAndLeavesNoTempFile) {
  const fs::path file = dir_ / "manifest.json";
  ASSERT_TRUE(write_file_atomic(file, std::string(5000, 'a')).is_ok());
  EXPECT_EQ(listing(), std::vector<std::string>{"manifest.json"});
  // A shorter file over a longer one: nothing of the old one is left.
  ASSERT_TRUE(write_file_atomic(file, "short").is_ok());
  EXPECT_EQ(*read_file(file), "short");
  EXPECT_EQ(fs::file_size(file), 5u);
  EXPECT_EQ(listing(), std::vector<std::string>{"manifest.json"});
  // A temp file left by a crashed writer is taken over, not left behind.
  std::ofstream(dir_ / "manifest.json.tmp") << "stale half-written data";
  ASSERT_TRUE(write_file_atomic(file, "fresh").is_ok());
  EXPECT_EQ(*read_file(file), "fresh");
  EXPECT_EQ(listing(), std::vector<std::string>{"manifest.json"});
}

TEST_F(BinaryIoFiles, FailedWritesAreIoErrorsAndLeaveNothing) {
  // The directory does not exist: the temp file cannot be created.
  const fs::path missing = dir_ / "no" / "such" / "dir" / "file.bin";
  const Status st = write_file_atomic(missing, "data");
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find(missing.parent_path().string()), std::string::npos) << st.message();
  // The target is a non-empty directory: the rename fails, the temp file goes.
  const fs::path occupied = dir_ / "occupied";
  fs::create_directories(occupied / "child");
  const Status st2 = write_file_atomic(occupied, "data");
  EXPECT_EQ(st2.code(), StatusCode::kIoError);
  EXPECT_NE(st2.message().find("occupied"), std::string::npos) << st2.message();
  EXPECT_TRUE(fs::is_directory(occupied / "child"));
  EXPECT_EQ(listing(), std::vector<std::string>{"occupied"});
}

TEST_F(BinaryIoFiles, ReadingAMissingFileIsNotFound) {
  const auto r = read_file(dir_ / "gen-000001" / "lexical.bin");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("lexical.bin"), std::string::npos) << r.status().message();
}

// A path that exists but is not a readable file is a read failure.
TEST_F(BinaryIoFiles, ReadingADirectoryIsAnIoError) {
  // (Once a directory opened as a stream whose size read as LLONG_MAX, and
  // resizing the buffer threw std::bad_alloc out of a Result function.)
  Result<std::string> r = std::string();
  EXPECT_NO_THROW(r = read_file(dir_));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
}

TEST_F(BinaryIoFiles, SyncDirectory) {
  EXPECT_TRUE(sync_directory(dir_).is_ok());
  const Status st = sync_directory(dir_ / "missing");
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("missing"), std::string::npos);
}

// The same sequence of writes gives the same bytes in memory and streamed to
// a file (small values buffered, large arrays passed straight through, in
// order), and the streaming checksum covers every byte.
TEST_F(BinaryIoFiles, FileWriterWritesWhatTheMemoryWriterWould) {
  std::vector<uint32_t> big((3u << 20) / 4);  // 3 MiB: bypasses the buffer
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint32_t>(i * 2654435761u);
  std::vector<uint32_t> medium(200000, 0x01020304u);  // 800 KB: buffered, flushed by the next write
  const auto fill = [&](BinaryWriter& w) {
    w.put<uint8_t>(1);
    w.put_vector(medium);
    w.align(64);
    w.write(big.data(), big.size() * 4);
    w.put_string("between");
    w.align(4096);
    w.put_vector(medium);
    w.put_strings({"a", "bc"});
  };
  BinaryWriter memory;
  fill(memory);
  const fs::path file = dir_ / "vectors.msv";
  auto w = BinaryWriter::create_file(file);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  EXPECT_EQ(w->path(), file);
  fill(*w);
  EXPECT_EQ(w->offset(), memory.offset());
  EXPECT_LT(w->buffer().size(), BinaryWriter::kFlushBytes + 1);  // it streamed
  EXPECT_EQ(w->checksum(), memory.checksum());
  EXPECT_TRUE(fs::exists(dir_ / "vectors.msv.tmp"));
  EXPECT_FALSE(fs::exists(file));  // nothing at the path before commit()
  ASSERT_TRUE(w->commit().is_ok());
  EXPECT_EQ(listing(), std::vector<std::string>{"vectors.msv"});
  const auto back = read_file(file);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->size(), memory.buffer().size());
  EXPECT_TRUE(*back == memory.buffer());
  EXPECT_EQ(xxh3_64(*back), memory.checksum());
  const Status again = w->commit();
  EXPECT_EQ(again.code(), StatusCode::kInternal);
  EXPECT_NE(again.message().find("twice"), std::string::npos) << again.message();
}

// Dropped before commit(): the temp file goes, the old file stays.
TEST_F(BinaryIoFiles, AnAbandonedFileWriterLeavesTheOldFile) {
  const fs::path file = dir_ / "lexical.bin";
  ASSERT_TRUE(write_file_atomic(file, "old contents").is_ok());
  {
    auto w = BinaryWriter::create_file(file);
    ASSERT_TRUE(w.is_ok());
    std::string big(3u << 20, 'x');
    w->write(big.data(), big.size());
    EXPECT_GT(fs::file_size(dir_ / "lexical.bin.tmp"), 0u);
    BinaryWriter moved = std::move(w).value();  // ownership of the temp file moves with it
    EXPECT_EQ(moved.path(), file);
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"lexical.bin"});
  EXPECT_EQ(*read_file(file), "old contents");
}

TEST_F(BinaryIoFiles, FileWriterErrorsNameTheFile) {
  // No directory for the temp file.
  const auto missing = BinaryWriter::create_file(dir_ / "gone" / "x.bin");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("cannot create " + (dir_ / "gone" / "x.bin.tmp").string()),
            std::string::npos)
      << missing.status().message();
  // The path is a non-empty directory: commit()'s rename fails and the temp file goes.
  fs::create_directories(dir_ / "busy" / "child");
  auto w = BinaryWriter::create_file(dir_ / "busy");
  ASSERT_TRUE(w.is_ok());
  w->put<uint64_t>(1);
  const Status st = w->commit();
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("cannot rename onto " + (dir_ / "busy").string()), std::string::npos) << st.message();
  w = BinaryWriter();  // drops the failed writer
  EXPECT_EQ(listing(), std::vector<std::string>{"busy"});
}

// A write the OS refuses (here: past RLIMIT_FSIZE) is remembered; later
// writes are dropped, commit() reports it and nothing replaces the file.
TEST_F(BinaryIoFiles, AFailedWriteIsKeptUntilCommit) {
  const fs::path file = dir_ / "dense.idx";
  ASSERT_TRUE(write_file_atomic(file, "previous index").is_ok());
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of a signal
  rlimit small = old;
  small.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status st;
  {
    auto w = BinaryWriter::create_file(file);
    if (w.is_ok()) {
      const std::string big(3u << 20, 'v');
      w->write(big.data(), big.size());  // fails part-way
      w->put<uint32_t>(7);
      w->write(big.data(), big.size());
      EXPECT_EQ(w->offset(), 2 * big.size() + 4);
      st = w->commit();
    } else {
      st = w.status();
    }
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("cannot write " + file.string() + ".tmp"), std::string::npos) << st.message();
  EXPECT_EQ(listing(), std::vector<std::string>{"dense.idx"});
  EXPECT_EQ(*read_file(file), "previous index");
}

}  // namespace
}  // namespace medsearch::internal
