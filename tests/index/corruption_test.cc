// Damaged index files (issue "hardening", item 5): every byte flip and
// truncation of every file of a saved index, and of a vector index file, is
// refused by load with a Status that names the damaged file; nothing crashes
// and nothing loads silently different.
//
// Per file: the first and last byte and 50 seeded offsets flipped with seeded
// masks, and for CURRENT and manifest.json every bit of every byte,
// truncation to 0, 1, half and all but one byte, one byte appended, and the
// file removed.
//
// The only damage allowed to load is damage that changes nothing a reader
// looks at, and then the index must answer exactly as before:
//   - CURRENT is "gen-NNNNNN\n" and load strips trailing '\n' and '\r', so its
//     last byte may become '\r' or go (the generation it names is the same);
//   - manifest.json is read as JSON: damage that leaves the same JSON value
//     (whitespace between tokens becoming other whitespace, the trailing
//     newline going) changes nothing; every other change of the manifest
//     must be refused.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <medsearch/index.h>
#include <medsearch/vector_index.h>

#include "tests/index/tiny_corpus.h"
#include "tests/scratch_dir.h"
#include "tests/vector/test_data.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;
using testing::answers;
using testing::corpus;
using testing::TinyEmbedder;

using testing::read_bytes;
using testing::write_bytes;  // a new inode each time: a mapping of the old file must not change

// One damaged version of a file and what it is called in failure messages.
struct Damage {
  std::string bytes;  // the file's new content; `remove`: none
  std::string what;
  bool remove = false;
  size_t offset = 0;  // flips: the byte changed
  bool flip = false;
};

// The damaged versions of `original` (see the comment at the top).
std::vector<Damage> damages(const std::string& original, uint32_t seed, bool every_bit) {
  std::vector<Damage> out;
  const size_t n = original.size();
  auto flip = [&](size_t at, uint8_t mask) {
    Damage d{original, "byte " + std::to_string(at) + " ^ " + std::to_string(mask), false, at, true};
    d.bytes[at] = static_cast<char>(d.bytes[at] ^ mask);
    out.push_back(std::move(d));
  };
  if (every_bit) {
    for (size_t at = 0; at < n; ++at) {
      for (int bit = 0; bit < 8; ++bit) flip(at, static_cast<uint8_t>(1u << bit));
    }
  }
  if (n > 64) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<size_t> offset(1, n - 2);
    std::uniform_int_distribution<int> mask(1, 255);
    flip(0, static_cast<uint8_t>(mask(rng)));
    flip(n - 1, static_cast<uint8_t>(mask(rng)));
    for (int i = 0; i < 50; ++i) flip(offset(rng), static_cast<uint8_t>(mask(rng)));
  }
  for (size_t len : {size_t{0}, size_t{1}, n / 2, n - 1}) {
    out.push_back({original.substr(0, len), "truncated to " + std::to_string(len) + " bytes"});
  }
  out.push_back({original + "x", "one byte appended"});
  out.push_back({"", "removed", true});
  return out;
}

// Whether `d` leaves the file meaning what it meant (see the top comment).
bool harmless(const std::string& name, const std::string& original, const Damage& d) {
  if (d.remove) return false;
  if (name == "CURRENT") {
    auto strip = [](std::string s) {
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      return s;
    };
    return strip(d.bytes) == strip(original);
  }
  if (name == "manifest.json") {
    // The same JSON value: whitespace between tokens.
    simdjson::dom::parser p1, p2;
    simdjson::dom::element a, b;
    if (p1.parse(original).get(a) || p2.parse(d.bytes).get(b)) return false;
    return simdjson::minify(a) == simdjson::minify(b);
  }
  return false;
}

struct Tally {
  int trials = 0, refused = 0, harmless = 0;
};

// Applies every damage to `file`, calls `load` and checks its outcome; the
// file is restored afterwards. `name` must appear in every error message;
// `loaded_answers` gives the answers of what loaded (empty: not comparable).
Tally damage_file(const fs::path& file, const std::string& name, uint32_t seed, const std::function<Status()>& load,
                  const std::function<std::vector<std::string>()>& loaded_answers,
                  const std::vector<std::string>& expected) {
  const std::string original = read_bytes(file);
  EXPECT_FALSE(original.empty()) << file;
  Tally tally;
  // Every bit of small files and of the manifest, the one file without a
  // checksum of its own (a damaged value must be caught by comparison with
  // what the data files hold).
  for (const Damage& d : damages(original, seed, original.size() <= 64 || name == "manifest.json")) {
    ++tally.trials;
    if (d.remove) {
      fs::remove(file);
    } else {
      write_bytes(file, d.bytes);
    }
    const Status st = load();
    if (st.is_ok()) {
      EXPECT_TRUE(harmless(name, original, d)) << name << ", " << d.what << ": loaded without an error";
      EXPECT_EQ(loaded_answers(), expected) << name << ", " << d.what << ": loaded, and answers differently";
      ++tally.harmless;
    } else {
      ++tally.refused;
      StatusCode want = d.remove ? StatusCode::kNotFound : StatusCode::kCorrupt;
      // A flip that turns the manifest's version into an older one reads as an older index.
      if (name == "manifest.json" && st.message().find("format version ") != std::string::npos &&
          st.code() == StatusCode::kOldFormat) {
        want = StatusCode::kOldFormat;
      }
      EXPECT_EQ(st.code(), want) << name << ", " << d.what << ": " << st.to_string();
      EXPECT_NE(st.message().find(name), std::string::npos)
          << name << ", " << d.what << ": the message does not name the file: " << st.to_string();
    }
    write_bytes(file, original);
  }
  EXPECT_TRUE(load().is_ok()) << file << " restored";
  return tally;
}

class IndexCorruption : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("medsearch_corruption_test_" + std::to_string(::getpid()) + (GetParam() ? "_hnsw" : "_flat"));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Index files, with vectors; dense.idx is an HNSW graph or a flat index.
TEST_P(IndexCorruption, DamagedFilesAreRefusedAndNamed) {
  BuildOptions options;
  options.exact_below = GetParam() ? 0 : 1u << 30;
  auto built = Index::build(corpus("c", 30, 5), options, nullptr, std::make_shared<TinyEmbedder>());
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  ASSERT_TRUE((*built)->save(dir_).is_ok());
  const auto expected = answers(**built);

  std::unique_ptr<Index> loaded;
  auto load = [&]() -> Status {
    loaded.reset();
    auto r = Index::load(dir_);
    if (!r) return r.status();
    loaded = std::move(r).value();
    return loaded->attach_embedder(std::make_shared<TinyEmbedder>());
  };
  ASSERT_TRUE(load().is_ok());
  ASSERT_EQ(answers(*loaded), expected);
  auto loaded_answers = [&] { return answers(*loaded); };

  std::string gen;
  std::ifstream(dir_ / "CURRENT") >> gen;
  Tally all;
  uint32_t seed = GetParam() ? 100 : 200;
  for (const char* name : {"CURRENT", "manifest.json", "documents.bin", "lexical.bin", "vectors.bin", "dense.idx"}) {
    const fs::path file = name == std::string("CURRENT") ? dir_ / name : dir_ / gen / name;
    ASSERT_TRUE(fs::exists(file)) << file;
    const Tally t = damage_file(file, name, ++seed, load, loaded_answers, expected);
    std::printf("[ corrupt  ] %s, %s (%ju bytes): %d trials, %d refused, %d harmless\n",
                GetParam() ? "HNSW" : "flat", name, static_cast<uintmax_t>(fs::file_size(file)), t.trials,
                t.refused, t.harmless);
    all.trials += t.trials;
    all.refused += t.refused;
    all.harmless += t.harmless;
  }
  std::printf("[ corrupt  ] %s index: %d trials, %d refused, %d harmless\n", GetParam() ? "HNSW" : "flat",
              all.trials, all.refused, all.harmless);
}

INSTANTIATE_TEST_SUITE_P(Index, IndexCorruption, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Hnsw" : "Flat"; });

// A vector index file on its own (core/vector/index_file.h): checksummed as a
// whole, so any damage is kCorrupt naming the file.
TEST(VectorIndexCorruption, DamagedFilesAreRefusedAndNamed) {
  const auto data = vector::testing::clustered(300, 1, 24, 6, true, 9);
  struct Case {
    const char* label;
    vector::IndexKind kind;
    vector::VectorDType dtype;
  };
  Tally all;
  uint32_t seed = 300;
  for (const Case& c : {Case{"flat", vector::IndexKind::kFlat, vector::VectorDType::kFloat32},
                        Case{"hnsw-f32", vector::IndexKind::kHnsw, vector::VectorDType::kFloat32},
                        Case{"hnsw-int8", vector::IndexKind::kHnsw, vector::VectorDType::kInt8}}) {
    vector::IndexOptions o;
    o.dim = data.dim;
    o.kind = c.kind;
    o.dtype = c.dtype;
    o.ef_construction = 40;
    auto index = vector::make_vector_index(o);
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    ASSERT_TRUE((*index)->add(data.base_view(), {}).is_ok());
    const std::vector<vector::DocId> gone{3, 5};
    ASSERT_TRUE((*index)->remove(gone).is_ok());  // deletion flags are part of the file too
    const std::string name = std::string("medsearch_corruption_test_") + std::to_string(::getpid()) + "_" + c.label +
                             ".msv";
    const fs::path file = fs::temp_directory_path() / name;
    ASSERT_TRUE((*index)->save(file).is_ok());
    std::unique_ptr<vector::VectorIndex> loaded;
    auto load = [&]() -> Status {
      loaded.reset();
      auto r = vector::load_vector_index(file);
      if (!r) return r.status();
      loaded = std::move(r).value();
      return Status::ok();
    };
    const Tally t = damage_file(file, name, ++seed, load, [] { return std::vector<std::string>{}; }, {"never"});
    std::printf("[ corrupt  ] vector index %s (%ju bytes): %d trials, %d refused, %d harmless\n", c.label,
                static_cast<uintmax_t>(fs::file_size(file)), t.trials, t.refused, t.harmless);
    EXPECT_EQ(t.harmless, 0);
    all.trials += t.trials;
    all.refused += t.refused;
    fs::remove(file);
  }
  std::printf("[ corrupt  ] vector index files: %d trials, %d refused\n", all.trials, all.refused);
}

}  // namespace
}  // namespace medsearch
