// VectorStore (core/vector/vector_store.h) under each backing: rows written
// are the rows read, growth keeps them and zeroes new rows, reserve() means no
// reallocation, memory is counted under the right backing, the spill file is
// unlinked and closed, and a mapped store is zero-copy until its first resize,
// then a private copy that leaves the file as it was.
#include "core/vector/vector_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/vector/index_file.h"
#include "tests/scratch_dir.h"

namespace medsearch::vector {
namespace {

namespace fs = std::filesystem;
using Backing = VectorStore::Backing;

constexpr size_t kDim = 5;

// A distinct, recognisable value for component j of row i.
float value(size_t i, size_t j) { return static_cast<float>(i) * 10.0f + static_cast<float>(j) + 0.5f; }

std::vector<float> row_values(size_t i) {
  std::vector<float> r(kDim);
  for (size_t j = 0; j < kDim; ++j) r[j] = value(i, j);
  return r;
}

// Rows [begin, end) hold row_values(i).
void expect_rows(const VectorStore& s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    const auto span = s.row_span(i);
    ASSERT_EQ(span.size(), kDim);
    ASSERT_EQ(std::vector<float>(span.begin(), span.end()), row_values(i)) << "row " << i;
    ASSERT_EQ(s.row(i), s.data() + i * kDim);
  }
}

void expect_zero_rows(const VectorStore& s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    for (size_t j = 0; j < kDim; ++j) ASSERT_EQ(s.row(i)[j], 0.0f) << "row " << i << " component " << j;
  }
}

class VectorStoreBacking : public ::testing::TestWithParam<Backing> {};

TEST_P(VectorStoreBacking, RowsRoundTripAndSurviveGrowth) {
  VectorStore s(kDim, GetParam());
  EXPECT_EQ(s.dim(), kDim);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.is_mapped_file());
  ASSERT_TRUE(s.resize(3).is_ok());
  EXPECT_EQ(s.size(), 3u);
  expect_zero_rows(s, 0, 3);
  for (size_t i = 0; i < 3; ++i) s.set_row(i, row_values(i).data());
  expect_rows(s, 0, 3);
  // Far beyond the first capacity: the rows move (realloc / mremap) and keep their values.
  ASSERT_TRUE(s.resize(5000).is_ok());
  EXPECT_EQ(s.size(), 5000u);
  expect_rows(s, 0, 3);
  expect_zero_rows(s, 3, 5000);
  for (size_t i = 3; i < 5000; ++i) s.set_row(i, row_values(i).data());
  // mutable_row writes in place.
  s.mutable_row(4999)[2] = value(4999, 2);
  s.mutable_row(17)[0] = -1.0f;
  EXPECT_EQ(s.row(17)[0], -1.0f);
  s.mutable_row(17)[0] = value(17, 0);
  expect_rows(s, 0, 5000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.data()) % 64, 0u);
}

// resize() promises zeroed new rows, also where a shrink left old values.
TEST_P(VectorStoreBacking, RegrownRowsAreZero) {
  VectorStore s(kDim, GetParam());
  ASSERT_TRUE(s.resize(10).is_ok());
  for (size_t i = 0; i < 10; ++i) s.set_row(i, row_values(i).data());
  ASSERT_TRUE(s.resize(4).is_ok());
  EXPECT_EQ(s.size(), 4u);
  expect_rows(s, 0, 4);
  ASSERT_TRUE(s.resize(10).is_ok());
  expect_rows(s, 0, 4);
  expect_zero_rows(s, 4, 10);
  ASSERT_TRUE(s.resize(0).is_ok());
  ASSERT_TRUE(s.resize(2).is_ok());
  expect_zero_rows(s, 0, 2);
}

TEST_P(VectorStoreBacking, ReserveMeansNoReallocation) {
  VectorStore s(kDim, GetParam());
  ASSERT_TRUE(s.resize(2).is_ok());
  s.set_row(0, row_values(0).data());
  s.set_row(1, row_values(1).data());
  ASSERT_TRUE(s.reserve(700).is_ok());
  EXPECT_EQ(s.size(), 2u);  // contents unchanged
  expect_rows(s, 0, 2);
  const float* at = s.data();
  for (size_t n = 3; n <= 700; n += 97) {
    ASSERT_TRUE(s.resize(n).is_ok());
    EXPECT_EQ(s.data(), at) << n;
  }
  ASSERT_TRUE(s.resize(700).is_ok());
  for (size_t i = 0; i < 700; ++i) s.set_row(i, row_values(i).data());
  EXPECT_EQ(s.data(), at);
  ASSERT_TRUE(s.reserve(10).is_ok());  // smaller than the size: a no-op
  EXPECT_EQ(s.data(), at);
  expect_rows(s, 0, 700);
}

TEST_P(VectorStoreBacking, MemoryIsCountedUnderItsBacking) {
  VectorStore s(kDim, GetParam());
  EXPECT_EQ(s.heap_bytes(), 0u);
  EXPECT_EQ(s.mapped_bytes(), 0u);
  ASSERT_TRUE(s.resize(1000).is_ok());
  const size_t used = 1000 * kDim * sizeof(float);
  if (GetParam() == Backing::kHeap) {
    EXPECT_GE(s.heap_bytes(), used);
    EXPECT_LT(s.heap_bytes(), 2 * used);  // geometric growth, but not wildly over
    EXPECT_EQ(s.mapped_bytes(), 0u);
  } else {
    EXPECT_EQ(s.heap_bytes(), 0u);
    EXPECT_GE(s.mapped_bytes(), used);
    EXPECT_LT(s.mapped_bytes(), 2 * used);
  }
}

TEST_P(VectorStoreBacking, MovesTransferTheRows) {
  VectorStore a(kDim, GetParam());
  ASSERT_TRUE(a.resize(100).is_ok());
  for (size_t i = 0; i < 100; ++i) a.set_row(i, row_values(i).data());
  const float* at = a.data();
  VectorStore b(std::move(a));
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b.data(), at);  // no copy
  expect_rows(b, 0, 100);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.heap_bytes() + a.mapped_bytes(), 0u);

  VectorStore c(kDim, GetParam());
  ASSERT_TRUE(c.resize(3).is_ok());  // released by the assignment
  c = std::move(b);
  EXPECT_EQ(c.size(), 100u);
  expect_rows(c, 0, 100);
  // The moved-from stores are empty but usable.
  ASSERT_TRUE(b.resize(2).is_ok());
  expect_zero_rows(b, 0, 2);
}

INSTANTIATE_TEST_SUITE_P(VectorStore, VectorStoreBacking, ::testing::Values(Backing::kHeap, Backing::kSpill),
                         [](const ::testing::TestParamInfo<Backing>& info) {
                           return info.param == Backing::kHeap ? "Heap" : "Spill";
                         });

class VectorStoreFiles : public ::testing::Test {
 protected:

  // Open descriptors of this process on files in dir_ (unlinked ones too).
  int fds_into_dir() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      const fs::path target = fs::read_symlink(e.path(), ec);
      if (!ec && target.string().rfind(dir_.string() + "/", 0) == 0) ++n;
    }
    return n;
  }

  // An index file whose payload is `rows` rows of row_values(), 64-byte aligned.
  fs::path write_rows(size_t rows) {
    const fs::path file = dir_ / "rows.msv";
    auto w = internal::create_index_file(file, IndexKind::kFlat);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    w->put<uint64_t>(rows);
    w->align(64);
    for (size_t i = 0; i < rows; ++i) w->write(row_values(i).data(), kDim * sizeof(float));
    EXPECT_TRUE(internal::finish_index_file(*w).is_ok());
    return file;
  }

  // The rows of write_rows()'s file, in place in its mapping.
  const float* map_rows(const fs::path& file, size_t rows, std::shared_ptr<const internal::MappedFile>* out) {
    auto v = internal::open_verified(file);
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    if (!v) return nullptr;
    auto c = internal::payload_reader(*v->file, file.string());
    uint64_t n = 0;
    EXPECT_TRUE(c.get(&n).is_ok());
    EXPECT_EQ(n, rows);
    const char* p = nullptr;
    EXPECT_TRUE(c.view(rows * kDim * sizeof(float), 64, &p).is_ok());
    *out = v->file;
    return reinterpret_cast<const float*>(p);
  }

  testing::ScratchDir scratch_{"vector_store_test"};
  const fs::path dir_ = scratch_.path();
};

// Points $TMPDIR (where spill files go) at `dir` for one scope.
class ScopedTmpdir {
 public:
  explicit ScopedTmpdir(const fs::path& dir) {
    if (const char* old = std::getenv("TMPDIR")) saved_ = old;
    ::setenv("TMPDIR", dir.c_str(), 1);
  }
  ~ScopedTmpdir() {
    if (saved_) {
      ::setenv("TMPDIR", saved_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
  ScopedTmpdir(const ScopedTmpdir&) = delete;
  ScopedTmpdir& operator=(const ScopedTmpdir&) = delete;

 private:
  std::optional<std::string> saved_;
};

// The spill backing lives in an unlinked file under $TMPDIR: nothing appears
// in the directory, and the descriptor goes with the store.
TEST_F(VectorStoreFiles, SpillFileIsUnlinkedAndClosed) {
  const ScopedTmpdir tmpdir(dir_);
  {
    VectorStore s(kDim, Backing::kSpill);
    ASSERT_TRUE(s.resize(300).is_ok());
    for (size_t i = 0; i < 300; ++i) s.set_row(i, row_values(i).data());
    ASSERT_TRUE(s.resize(3000).is_ok());  // grows the file and the mapping
    expect_rows(s, 0, 300);
    EXPECT_EQ(fs::directory_iterator(dir_), fs::directory_iterator()) << "the spill file has a name";
    EXPECT_EQ(fds_into_dir(), 1);
    VectorStore moved(std::move(s));
    expect_rows(moved, 0, 300);
    EXPECT_EQ(fds_into_dir(), 1);
  }
  EXPECT_EQ(fds_into_dir(), 0);  // closed exactly once, with the last owner
}

class VectorStoreMapped : public VectorStoreFiles, public ::testing::WithParamInterface<Backing> {};

TEST_P(VectorStoreMapped, ZeroCopyUntilTheFirstResize) {
  const size_t rows = 40;
  const fs::path file = write_rows(rows);
  const std::string before = [&] {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  std::shared_ptr<const internal::MappedFile> mapping;
  const float* in_file = map_rows(file, rows, &mapping);
  ASSERT_NE(in_file, nullptr);
  VectorStore s = VectorStore::mapped(kDim, GetParam(), mapping, in_file, rows);
  EXPECT_TRUE(s.is_mapped_file());
  EXPECT_EQ(s.size(), rows);
  EXPECT_EQ(s.data(), in_file);  // zero copy
  expect_rows(s, 0, rows);
  EXPECT_EQ(s.heap_bytes(), 0u);
  EXPECT_EQ(s.mapped_bytes(), rows * kDim * sizeof(float));

  // The store keeps the mapping alive on its own.
  std::weak_ptr<const internal::MappedFile> weak = mapping;
  mapping.reset();
  EXPECT_FALSE(weak.expired());
  expect_rows(s, 0, rows);

  // The first resize copies the rows to the write backing and lets the file go.
  ASSERT_TRUE(s.resize(rows + 1).is_ok());
  EXPECT_FALSE(s.is_mapped_file());
  EXPECT_TRUE(weak.expired());
  EXPECT_NE(s.data(), in_file);
  expect_rows(s, 0, rows);
  expect_zero_rows(s, rows, rows + 1);
  if (GetParam() == Backing::kHeap) {
    EXPECT_GE(s.heap_bytes(), (rows + 1) * kDim * sizeof(float));
    EXPECT_EQ(s.mapped_bytes(), 0u);
  } else {
    EXPECT_EQ(s.heap_bytes(), 0u);
    EXPECT_GE(s.mapped_bytes(), (rows + 1) * kDim * sizeof(float));
  }
  // Writes go to the copy, never to the file.
  for (size_t i = 0; i <= rows; ++i) s.set_row(i, row_values(i + 1000).data());
  std::ifstream in(file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), before);
}

// reserve() on a mapped store copies too (even within the mapped row count),
// so set_row may follow it.
TEST_P(VectorStoreMapped, ReserveAlsoCopiesAMappedStore) {
  const size_t rows = 8;
  const fs::path file = write_rows(rows);
  std::shared_ptr<const internal::MappedFile> mapping;
  const float* in_file = map_rows(file, rows, &mapping);
  ASSERT_NE(in_file, nullptr);
  VectorStore s = VectorStore::mapped(kDim, GetParam(), std::move(mapping), in_file, rows);
  ASSERT_TRUE(s.reserve(rows).is_ok());
  EXPECT_FALSE(s.is_mapped_file());
  EXPECT_EQ(s.size(), rows);
  expect_rows(s, 0, rows);
  s.set_row(0, row_values(99).data());
  EXPECT_EQ(s.row(0)[0], value(99, 0));
  // A shrinking resize of a mapped store keeps the leading rows.
  auto again = map_rows(file, rows, &mapping);
  VectorStore t = VectorStore::mapped(kDim, GetParam(), std::move(mapping), again, rows);
  ASSERT_TRUE(t.resize(3).is_ok());
  EXPECT_FALSE(t.is_mapped_file());
  EXPECT_EQ(t.size(), 3u);
  expect_rows(t, 0, 3);
}

INSTANTIATE_TEST_SUITE_P(VectorStore, VectorStoreMapped, ::testing::Values(Backing::kHeap, Backing::kSpill),
                         [](const ::testing::TestParamInfo<Backing>& info) {
                           return info.param == Backing::kHeap ? "CopyToHeap" : "CopyToSpill";
                         });

}  // namespace
}  // namespace medsearch::vector
