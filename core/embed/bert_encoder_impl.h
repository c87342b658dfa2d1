// bert_encoder_impl.h: what a loaded BertEncoder is made of (its weights,
// its per-batch workspaces, BertEncoder::Impl), shared by the two files that
// implement it: bert_encoder.cc (the forward pass, batching, the public
// methods) and model_files.cc (the model's files: config JSON, safetensors
// weights and their checksums, model directories). Not installed.
//
// It instantiates Eigen, so only core/embed/*.cc include it: they are all
// compiled for MEDSEARCH_EIGEN_ARCH (CMakeLists.txt), and the first Eigen
// include of each must come after EIGEN_DONT_PARALLELIZE below.
#pragma once

// The encoder parallelises over batches with oneTBB; Eigen must stay
// single-threaded inside each batch (it would otherwise use OpenMP if the
// build ever enabled it).
#define EIGEN_DONT_PARALLELIZE

#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <medsearch/encoder.h>

#include "core/embed/kernels/bf16_gemm.h"

// GCC 12 reports Eigen's AVX-512 packet code (built on _mm512_undefined_*)
// as maybe-uninitialized when this file is compiled for x86-64-v4.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>

namespace medsearch::embed {
namespace internal {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using StridedMap = Eigen::Map<RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using Index = Eigen::Index;

inline constexpr const char* kFetchHint = "run tools/fetch_model.sh to (re)fetch the model";

// Reads the model's configuration from `dir` into `c` (model_files.cc).
Status read_config(const std::filesystem::path& dir, BertConfig* c);

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

}  // namespace internal

struct BertEncoder::Impl {
  BertConfig config;
  Precision precision = Precision::kFloat32;
  bool bf16_attention = false;  // attention on AMX too (bfloat16 and a head size that is a multiple of 32)
  WordPieceTokenizer tokenizer;
  std::string model_id;
  internal::RowMatrix word;      // vocab x H
  internal::RowMatrix pos_type;  // max_position x H: position + token type 0
  internal::RowVector emb_ln_g, emb_ln_b;
  std::vector<internal::LayerWeights> layers;
  mutable internal::WorkspacePool pool;

  Status load_weights(const std::filesystem::path& file);  // model_files.cc
  Status run(std::span<const std::span<const int32_t>> seqs, std::span<float> out) const;
  // Encodes texts order[0..n) (a batch) into their rows of `out`.
  void forward(std::span<const uint32_t> batch, std::span<const std::span<const int32_t>> seqs,
               internal::Workspace& ws, float* out) const;
};

}  // namespace medsearch::embed
