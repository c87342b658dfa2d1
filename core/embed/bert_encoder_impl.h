// bert_encoder_impl.h: what a loaded BertEncoder is made of (its weights,
// its per-batch workspaces, BertEncoder::Impl), shared by the two files that
// implement it: bert_encoder.cc (the forward pass, batching, the public
// methods) and model_files.cc (the model's files: config JSON, safetensors
// weights and their checksums, model directories). Not installed.
//
// No Eigen here or in the files that include this: they are compiled for the
// library's baseline, and the forward pass's arithmetic goes through the
// DenseKernels table of the CPU's level (kernels/dense.h) or the AMX kernels
// (kernels/bf16_gemm.h).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <medsearch/encoder.h>

#include "core/embed/kernels/bf16_gemm.h"
#include "core/embed/kernels/dense.h"

namespace medsearch::embed {
namespace internal {

// Floats on a 64-byte boundary (a cache line, an AVX-512 register), as Eigen
// allocates its own matrices: the kernels' vectorised reductions then add in
// the same order on every run (dense.h). resize() does not keep the contents.
class FloatBuffer {
 public:
  void resize(size_t n) {
    if (n == size_) return;
    data_.reset(n == 0 ? nullptr : static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64)));
    if (n != 0 && data_ == nullptr) throw std::bad_alloc();
    size_ = n;
  }
  size_t size() const { return size_; }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
  size_t size_ = 0;
};

// A row-major rows x cols matrix.
struct Matrix {
  FloatBuffer values;
  size_t rows = 0, cols = 0;

  void resize(size_t r, size_t c) {
    values.resize(r * c);
    rows = r;
    cols = c;
  }
  float* row(size_t r) { return values.data() + r * cols; }
  const float* row(size_t r) const { return values.data() + r * cols; }
};

inline constexpr const char* kFetchHint = "run tools/fetch_model.sh to (re)fetch the model";

// Reads the model's configuration from `dir` into `c` (model_files.cc).
Status read_config(const std::filesystem::path& dir, BertConfig* c);

// Weights: every matrix is [out, in], row-major, as in the checkpoint.

// A linear layer's weights: float32, or (Precision::kBFloat16) only their
// bfloat16 tiles.
struct Linear {
  Matrix w;
  kernels::Bf16PackedWeights w16;

  // Keeps only the bfloat16 copy when asked and the shape allows it.
  void set_precision(Precision p) {
    if (p != Precision::kBFloat16 || !kernels::Bf16PackedWeights::supports(w.rows, w.cols)) return;
    w16 = kernels::Bf16PackedWeights(w.row(0), w.rows, w.cols);
    w.resize(0, 0);
  }
};

struct LayerWeights {
  Linear qkv;  // 3H x H: query / sqrt(d), key, value stacked
  FloatBuffer qkv_b;  // 3H
  Linear attn_out;  // H x H
  FloatBuffer attn_out_b;
  FloatBuffer ln1_g, ln1_b;
  Linear ffn_in;  // I x H
  FloatBuffer ffn_in_b;
  Linear ffn_out;  // H x I
  FloatBuffer ffn_out_b;
  FloatBuffer ln2_g, ln2_b;
};

// Scratch for one batch; grows to the largest batch seen and is then reused.
struct Workspace {
  FloatBuffer x;       // M x H: the hidden states
  FloatBuffer a;       // M x max(4H, I): qkv (M x 3H) then ctx (M x H), later the FFN's M x I
  FloatBuffer scores;  // T x T: one head's attention matrix
  FloatBuffer pooled;  // H: one text's pooled vector
  std::vector<uint16_t> a16;  // a GEMM's or attention's input rounded to bfloat16 (Precision::kBFloat16)
  kernels::AttentionScratch attention;  // Precision::kBFloat16

  void reserve(size_t tokens, size_t longest, const BertConfig& c) {
    const size_t wide = std::max<size_t>(4 * c.hidden, c.intermediate);
    if (x.size() < tokens * c.hidden) x.resize(tokens * c.hidden);
    if (a.size() < tokens * wide) a.resize(tokens * wide);
    if (scores.size() < longest * longest) scores.resize(longest * longest);
    if (pooled.size() < c.hidden) pooled.resize(c.hidden);
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
  const kernels::DenseKernels* dense = nullptr;  // the float32 kernels of cpu_level()
  bool bf16_attention = false;  // attention on AMX too (bfloat16 and a head size that is a multiple of 32)
  WordPieceTokenizer tokenizer;
  std::string model_id;
  internal::Matrix word;      // vocab x H
  internal::Matrix pos_type;  // max_position x H: position + token type 0
  internal::FloatBuffer emb_ln_g, emb_ln_b;
  std::vector<internal::LayerWeights> layers;
  mutable internal::WorkspacePool pool;

  Status load_weights(const std::filesystem::path& file);  // model_files.cc
  Status run(std::span<const std::span<const int32_t>> seqs, std::span<float> out) const;
  // Encodes texts order[0..n) (a batch) into their rows of `out`.
  void forward(std::span<const uint32_t> batch, std::span<const std::span<const int32_t>> seqs,
               internal::Workspace& ws, float* out) const;
};

}  // namespace medsearch::embed
