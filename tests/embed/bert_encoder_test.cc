// BertEncoder against sentence-transformers (data/golden/all-minilm-l6-v2.jsonl,
// made by tools/make_encoder_golden.py), plus batching, blank texts,
// concurrency and damaged model files. Skipped when the model is not in the
// cache (tools/fetch_model.sh puts it there).
#include <medsearch/encoder.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace medsearch::embed {
namespace {
namespace fs = std::filesystem;

constexpr uint32_t kDim = 384;

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<float> embedding;
};

// A known model's folder (and golden file name), e.g. "all-minilm-l6-v2".
fs::path model_folder(const std::string& model) { return model_dir(model)->filename(); }

// data/golden/<model folder>.jsonl, made by tools/make_encoder_golden.py.
std::vector<GoldenCase> read_golden(const std::string& model) {
  std::vector<GoldenCase> out;
  const fs::path file = fs::path(MEDSEARCH_SOURCE_DIR) / "data" / "golden" / (model_folder(model).string() + ".jsonl");
  std::ifstream in(file);
  EXPECT_TRUE(in) << "cannot open " << file;
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    simdjson::dom::element doc;
    const simdjson::padded_string json(line);
    if (parser.parse(json).get(doc)) {
      ADD_FAILURE() << "bad golden line " << out.size() + 1;
      continue;
    }
    GoldenCase c;
    c.text = std::string(std::string_view(doc["text"]));
    for (auto id : simdjson::dom::array(doc["ids"])) c.ids.push_back(static_cast<int32_t>(int64_t(id)));
    for (auto v : simdjson::dom::array(doc["embedding"])) c.embedding.push_back(static_cast<float>(double(v)));
    EXPECT_EQ(c.embedding.size(), kDim);
    out.push_back(std::move(c));
  }
  return out;
}

double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// Worst cosine and largest component difference between `got` (n x kDim) and
// the golden embeddings; prints both, and the worst text.
struct Agreement {
  double worst_cosine = 1;
  double max_abs_diff = 0;
};
Agreement compare(const std::vector<GoldenCase>& golden, const std::vector<float>& got, const char* what) {
  Agreement a;
  size_t worst = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const float* g = golden[i].embedding.data();
    const float* e = got.data() + i * kDim;
    const double c = cosine(g, e, kDim);
    if (c < a.worst_cosine) {
      a.worst_cosine = c;
      worst = i;
    }
    for (size_t j = 0; j < kDim; ++j) a.max_abs_diff = std::max(a.max_abs_diff, std::fabs(double(g[j]) - e[j]));
  }
  std::printf("[golden %s] %zu texts: worst cosine %.9f (1 - %.2g; text %zu, %zu tokens), max abs diff %.3g\n",
              what, golden.size(), a.worst_cosine, 1 - a.worst_cosine, worst, golden[worst].ids.size(),
              a.max_abs_diff);
  return a;
}

// Agreement with the golden vectors each precision must reach (Precision's
// contract in bert_encoder.h).
struct Tolerance {
  double worst_cosine;
  double max_abs_diff;
};
Tolerance tolerance(Precision p) {
  return p == Precision::kFloat32 ? Tolerance{0.9999, 1e-4} : Tolerance{0.999, 1e-2};
}

// Every test runs once per known model and precision; bfloat16 is skipped
// where the CPU lacks AMX-BF16, a model that tools/fetch_model.sh has not
// installed is skipped too.
struct EncoderParam {
  std::string model;
  Precision precision;
};

class BertEncoderTest : public ::testing::TestWithParam<EncoderParam> {
 protected:
  static void TearDownTestSuite() {
    for (auto& [key, e] : encoders_) delete e;
    encoders_.clear();
  }
  void SetUp() override {
    const EncoderParam& param = GetParam();
    const fs::path dir = *model_dir(param.model);
    if (!fs::exists(dir / "model.safetensors")) GTEST_SKIP() << "no model at " << dir << "; run tools/fetch_model.sh";
    if (std::string why; !precision_available(param.precision, &why)) GTEST_SKIP() << why;
    BertEncoder*& e = encoders_[{param.model, param.precision}];
    if (e == nullptr) {  // loaded once per suite
      auto loaded = BertEncoder::load(dir, param.precision);
      ASSERT_TRUE(loaded) << loaded.status().to_string();
      e = std::move(loaded).value().release();
    }
    encoder_ = e;
    ASSERT_EQ(encoder_->precision(), param.precision);
  }
  void TearDown() override { encoder_ = nullptr; }
  static std::vector<GoldenCase> read_golden() { return embed::read_golden(GetParam().model); }
  static Precision precision() { return GetParam().precision; }

  static std::vector<float> embed(const std::vector<std::string_view>& texts, TextKind kind = TextKind::kPassage) {
    std::vector<float> out(texts.size() * kDim);
    Status st = encoder_->embed(texts, kind, out);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return out;
  }

  static std::map<std::pair<std::string, Precision>, BertEncoder*> encoders_;
  static BertEncoder* encoder_;  // this test's, from encoders_
};
std::map<std::pair<std::string, Precision>, BertEncoder*> BertEncoderTest::encoders_;
BertEncoder* BertEncoderTest::encoder_ = nullptr;

std::vector<EncoderParam> every_model_and_precision() {
  std::vector<EncoderParam> out;
  for (const std::string& m : known_models()) {
    for (Precision p : {Precision::kFloat32, Precision::kBFloat16}) out.push_back({m, p});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Models, BertEncoderTest, ::testing::ValuesIn(every_model_and_precision()),
                         [](const ::testing::TestParamInfo<EncoderParam>& info) {
                           std::string name = model_folder(info.param.model).string() + "_" +
                                              precision_name(info.param.precision);
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(KnownModels, DefaultFirstAndBaseKept) {
  const std::vector<std::string> models = known_models();
  ASSERT_FALSE(models.empty());
  EXPECT_NE(std::find(models.begin(), models.end(), "all-MiniLM-L6-v2"), models.end());  // still selectable
  EXPECT_EQ(model_folder("ALL-MINILM-L6-V2"), "all-minilm-l6-v2");
  EXPECT_EQ(model_dir("bge-small-en").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model_dir("bge-small-en").status().message().find("all-MiniLM-L6-v2"), std::string::npos);
  // An index remembers its model: model_dir_for() finds that model's folder.
  if (std::getenv("MEDSEARCH_MODEL_DIR") == nullptr) {
    EXPECT_EQ(model_dir_for("all-MiniLM-L6-v2@34cb29e344fee166"), *model_dir("all-MiniLM-L6-v2"));
    EXPECT_EQ(model_dir_for("no-such-model@0"), default_model_dir());
    EXPECT_EQ(default_model_dir(), *model_dir(models[0]));
  }
}

// The CLI and Index.load(encoder="auto") find an index's encoder by the
// model_id its vectors carry.
TEST_P(BertEncoderTest, EncoderForFindsTheModelOfAnIndex) {
  if (std::getenv("MEDSEARCH_MODEL_DIR") != nullptr) GTEST_SKIP() << "MEDSEARCH_MODEL_DIR overrides the lookup";
  auto found = encoder_for(encoder_->model_id(), GetParam().precision);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  EXPECT_EQ((*found)->model_id(), encoder_->model_id());
  EXPECT_EQ((*found)->precision(), GetParam().precision);
  // An unknown model falls back to the default folder, whose model is another: refused by name.
  auto other = encoder_for("no-such-model@0", GetParam().precision);
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("no-such-model@0"), std::string::npos) << other.status().to_string();
}

TEST_P(BertEncoderTest, ReportsTheModel) {
  EXPECT_EQ(encoder_->dim(), kDim);
  EXPECT_EQ(encoder_->model_id().substr(0, encoder_->model_id().find('@')), GetParam().model);
  if (GetParam().model == "all-MiniLM-L6-v2") {
    EXPECT_EQ(encoder_->model_id(), "all-MiniLM-L6-v2@34cb29e344fee166");
  }
  const BertConfig& c = encoder_->config();
  EXPECT_EQ(c.layers, 6u);
  EXPECT_EQ(c.heads, 12u);
  EXPECT_EQ(c.intermediate, 1536u);
  EXPECT_EQ(c.max_seq_length, 256u);
  EXPECT_EQ(c.pooling, Pooling::kMean);
  EXPECT_TRUE(c.query_prefix.empty());
  // 6 layers x (2*128*384*(1152 + 384 + 2*1536) + 4*128*128*384).
  EXPECT_DOUBLE_EQ(encoder_->flops(128), 6.0 * (2.0 * 128 * 384 * 4608 + 4.0 * 128 * 128 * 384));
}

TEST_P(BertEncoderTest, ReproducesGoldenFromIds) {
  const auto golden = read_golden();
  ASSERT_GT(golden.size(), 200u);
  std::vector<std::vector<int32_t>> batch;
  for (const auto& g : golden) batch.push_back(g.ids);
  std::vector<float> got(golden.size() * kDim);
  ASSERT_TRUE(encoder_->embed_ids(batch, got).is_ok());
  const Agreement a = compare(golden, got, precision_name(precision()));
  EXPECT_GE(a.worst_cosine, tolerance(precision()).worst_cosine);
  EXPECT_LT(a.max_abs_diff, tolerance(precision()).max_abs_diff);
}

TEST_P(BertEncoderTest, ReproducesGoldenFromText) {
  const auto golden = read_golden();
  ASSERT_GT(golden.size(), 200u);
  std::vector<std::string_view> texts;
  size_t id_mismatches = 0;
  std::vector<int32_t> ids;
  for (const auto& g : golden) {
    texts.push_back(g.text);
    encoder_->tokenizer().encode(g.text, encoder_->config().max_seq_length, &ids);
    if (ids != g.ids && ++id_mismatches <= 5) ADD_FAILURE() << "token ids differ for: " << g.text;
  }
  EXPECT_EQ(id_mismatches, 0u);
  const std::vector<float> got = embed(texts);
  const Agreement a = compare(golden, got, precision_name(precision()));
  EXPECT_GE(a.worst_cosine, tolerance(precision()).worst_cosine);
}

TEST_P(BertEncoderTest, BatchEqualsOneByOne) {
  const auto golden = read_golden();
  std::vector<std::string_view> texts;
  for (size_t i = 0; i < golden.size(); i += 4) texts.push_back(golden[i].text);  // all lengths
  const std::vector<float> batched = embed(texts);
  double max_diff = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> one = embed({texts[i]});
    for (size_t j = 0; j < kDim; ++j) max_diff = std::max(max_diff, std::fabs(double(one[j]) - batched[i * kDim + j]));
  }
  std::printf("[batch] %zu texts: max |batched - one by one| = %.3g\n", texts.size(), max_diff);
  EXPECT_LT(max_diff, 1e-5);
}

TEST_P(BertEncoderTest, BlankTextIsClsSep) {
  std::vector<float> cls_sep(kDim);
  const std::vector<int32_t> ids = {encoder_->tokenizer().cls_id(), encoder_->tokenizer().sep_id()};
  ASSERT_TRUE(encoder_->embed_ids(std::span(&ids, 1), cls_sep).is_ok());
  double norm = 0;
  for (float v : cls_sep) {
    ASSERT_TRUE(std::isfinite(v));
    norm += double(v) * v;
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  for (TextKind kind : {TextKind::kPassage, TextKind::kQuery}) {
    const std::vector<float> got = embed({"", " ", "\t\n \u3000"}, kind);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(0, std::memcmp(got.data() + i * kDim, cls_sep.data(), kDim * sizeof(float))) << "text " << i;
    }
  }
}

TEST_P(BertEncoderTest, ConcurrentEmbedGivesIdenticalResults) {
  const auto golden = read_golden();
  std::vector<std::string_view> texts;
  for (size_t i = 0; i < golden.size(); i += 6) texts.push_back(golden[i].text);
  const std::vector<float> expected = embed(texts);
  constexpr int kThreads = 4, kRounds = 2;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> out(expected.size());
      for (int r = 0; r < kRounds; ++r) {
        // Threads alternate between the whole batch and single texts.
        if ((t + r) % 2 == 0) {
          if (!encoder_->embed(texts, TextKind::kPassage, out).is_ok()) ++mismatches[t];
        } else {
          for (size_t i = 0; i < texts.size(); i += 7) {
            if (!encoder_->embed(std::span(&texts[i], 1), TextKind::kPassage, std::span(out).subspan(i * kDim, kDim))
                     .is_ok()) {
              ++mismatches[t];
            }
          }
        }
        for (size_t i = 0; i < texts.size(); ++i) {
          if ((t + r) % 2 != 0 && i % 7 != 0) continue;
          const float* a = out.data() + i * kDim;
          const float* b = expected.data() + i * kDim;
          // A single text is one batch, so it may differ from the batched
          // result by rounding; the same call must agree bit for bit.
          if ((t + r) % 2 == 0 ? std::memcmp(a, b, kDim * sizeof(float)) != 0 : cosine(a, b, kDim) < 0.99999) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_P(BertEncoderTest, RejectsBadInput) {
  std::vector<float> out(kDim);
  const std::vector<std::vector<int32_t>> empty_seq = {{}};
  EXPECT_EQ(encoder_->embed_ids(empty_seq, out).code(), StatusCode::kInvalidArgument);
  const std::vector<std::vector<int32_t>> bad_id = {{101, 30522, 102}};
  EXPECT_EQ(encoder_->embed_ids(bad_id, out).code(), StatusCode::kInvalidArgument);
  const std::vector<std::vector<int32_t>> negative = {{101, -1, 102}};
  EXPECT_EQ(encoder_->embed_ids(negative, out).code(), StatusCode::kInvalidArgument);
  const std::vector<std::vector<int32_t>> too_long = {std::vector<int32_t>(513, 1000)};
  EXPECT_EQ(encoder_->embed_ids(too_long, out).code(), StatusCode::kInvalidArgument);
  std::vector<float> small(kDim - 1);
  const std::vector<std::string_view> one = {"text"};
  EXPECT_EQ(encoder_->embed(one, TextKind::kPassage, small).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(encoder_->embed({}, TextKind::kPassage, {}).is_ok());
}

// ---------------------------------------------------------------------------
// Damaged model directories: a copy of the real one with one thing broken.

class DamagedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = *model_dir("all-MiniLM-L6-v2");  // float32 weights, which some damage below assumes
    if (!fs::exists(source_ / "model.safetensors")) GTEST_SKIP() << "no model; run tools/fetch_model.sh";
    dir_ = fs::temp_directory_path() / ("medsearch_bert_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(source_, dir_, fs::copy_options::recursive);
    std::ifstream in(dir_ / "model.safetensors", std::ios::binary);
    weights_.assign(std::istreambuf_iterator<char>(in), {});
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void write_weights(const std::string& bytes) {
    std::ofstream out(dir_ / "model.safetensors", std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // Loads dir_ and expects failure with `code` and all of `words` in the message.
  void expect_error(StatusCode code, std::initializer_list<const char*> words) {
    auto r = BertEncoder::load(dir_);
    ASSERT_FALSE(r) << "loaded a damaged model";
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    for (const char* w : words) EXPECT_NE(r.status().message().find(w), std::string::npos) << r.status().to_string();
  }

  fs::path source_, dir_;
  std::string weights_;
};

TEST_F(DamagedModelTest, IntactCopyLoads) {
  auto r = BertEncoder::load(dir_);
  ASSERT_TRUE(r) << r.status().to_string();
}

TEST_F(DamagedModelTest, MissingWeights) {
  fs::remove(dir_ / "model.safetensors");
  expect_error(StatusCode::kNotFound, {"model.safetensors", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, MissingDirectory) {
  fs::remove_all(dir_);
  expect_error(StatusCode::kNotFound, {"does not exist", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, MissingConfig) {
  fs::remove(dir_ / "config.json");
  expect_error(StatusCode::kNotFound, {"config.json", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, MissingVocab) {
  fs::remove(dir_ / "vocab.txt");
  auto r = BertEncoder::load(dir_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("tools/fetch_model.sh"), std::string::npos) << r.status().to_string();
}

TEST_F(DamagedModelTest, TruncatedWeights) {
  for (size_t size : {weights_.size() / 2, weights_.size() - 1, size_t{100}, size_t{4}, size_t{0}}) {
    SCOPED_TRACE(size);
    write_weights(weights_.substr(0, size));
    expect_error(StatusCode::kCorrupt, {"truncated", "tools/fetch_model.sh"});
  }
}

TEST_F(DamagedModelTest, TrailingBytes) {
  write_weights(weights_ + "extra");
  expect_error(StatusCode::kCorrupt, {"unexpected bytes", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, FlippedDataByte) {
  std::string bad = weights_;
  bad[bad.size() / 2] ^= 0x10;
  write_weights(bad);
  expect_error(StatusCode::kCorrupt, {"checksum", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, UnpinnedWeightsLoadOnlyWhenAllowed) {
  // Changed weights (a candidate model of one's own): refused unless MEDSEARCH_ALLOW_UNPINNED_MODEL=1,
  // then loaded under a name that says so.
  std::string changed = weights_;
  changed[changed.size() / 2] ^= 0x10;
  write_weights(changed);
  ::setenv("MEDSEARCH_ALLOW_UNPINNED_MODEL", "0", 1);
  expect_error(StatusCode::kCorrupt, {"checksum", "MEDSEARCH_ALLOW_UNPINNED_MODEL=1"});
  ::setenv("MEDSEARCH_ALLOW_UNPINNED_MODEL", "1", 1);
  auto r = BertEncoder::load(dir_);
  ::unsetenv("MEDSEARCH_ALLOW_UNPINNED_MODEL");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ((*r)->model_id().rfind("unpinned:" + dir_.filename().string() + "@", 0), 0u) << (*r)->model_id();
}

TEST_F(DamagedModelTest, FlippedHeaderByte) {
  std::string bad = weights_;
  bad[8] ^= 0x01;  // the header's opening '{'
  write_weights(bad);
  expect_error(StatusCode::kCorrupt, {"header", "tools/fetch_model.sh"});
}

TEST_F(DamagedModelTest, ConfigDisagreesWithWeights) {
  // A config that the (intact, pinned) weights do not fit: shapes are checked.
  std::ifstream in(dir_ / "config.json");
  std::string config((std::istreambuf_iterator<char>(in)), {});
  const size_t at = config.find("\"intermediate_size\": 1536");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 25, "\"intermediate_size\": 1024");
  std::ofstream(dir_ / "config.json", std::ios::trunc) << config;
  expect_error(StatusCode::kCorrupt, {"intermediate.dense.weight", "[1024,384]"});
}

}  // namespace
}  // namespace medsearch::embed
