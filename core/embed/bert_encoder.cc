// bert_encoder.cc: the BERT forward pass, batching, and the
// encoder's public methods. Loading the model's files (config, safetensors,
// checksums, model directories) is in model_files.cc; what both share is in
// bert_encoder_impl.h.
//
// The arithmetic is in kernels: the float32 ones of the CPU's level
// (kernels/dense.h, Eigen, chosen at load from cpu_level()) or, in bfloat16,
// the AMX ones (kernels/bf16_gemm.h). This file is baseline code.
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

#include <medsearch/encoder.h>

#include "core/embed/bert_encoder_impl.h"
#include "core/embed/kernels/bf16_gemm.h"
#include "core/embed/kernels/dense.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <utility>

namespace medsearch::embed {
namespace fs = std::filesystem;
using namespace internal;

namespace {

// Tokens per batch. Big enough that each GEMM streams its weights once for
// many rows (M >> the GEMM's register block), small enough that a batch's
// workspace (M x (H + max(4H, I)) floats, 7.5 KB per token for MiniLM) stays
// a few MB per thread. bench/embed/encoder_bench.cc measured the choice.
constexpr size_t kBatchTokens = 512;

// The rows up to which a GEMM counts as a query's: its weights stream from
// memory once, so it reads them in place (DenseKernels::small_gemm_nt_add, or
// AMX on a few rows) and splits the columns across the caller's arena.
constexpr size_t kSmallRows = 48;

// f(begin, end) for the columns [0, n) in blocks of `cols` (the last may be
// shorter), in parallel in the caller's arena.
template <class F>
void split_columns(size_t n, size_t cols, const F& f) {
  tbb::parallel_for(tbb::blocked_range<size_t>(0, (n + cols - 1) / cols), [&](const tbb::blocked_range<size_t>& r) {
    f(r.begin() * cols, std::min(n, r.end() * cols));
  });
}

// c (m x n) += a (m x k) w^T: the layers' GEMM. In bfloat16 on AMX when the
// layer has its tiles; else Eigen's for big batches, the in-place kernel for
// a few rows (it needs n and k to be multiples of its blocks, true of every
// BERT we know; otherwise Eigen). Results do not depend on the thread count:
// a column's sums do not depend on the split.
void gemm_add(const kernels::DenseKernels& dense, size_t m, const float* a, const Linear& layer, float* c,
              Workspace& ws) {
  if (layer.w16.rows() != 0) {
    const size_t n = layer.w16.rows();
    if (m > kSmallRows) {
      kernels::bf16_gemm_add(m, a, layer.w16, c, n, ws.a16);
      return;
    }
    const uint16_t* a16 = kernels::bf16_round_rows(m, layer.w16.cols(), a, ws.a16);
    split_columns(n, 128, [&](size_t begin, size_t end) {
      kernels::bf16_gemm_add_rounded(m, a16, layer.w16, begin, end, c, n);
    });
    return;
  }
  const size_t n = layer.w.rows, k = layer.w.cols;
  const float* w = layer.w.row(0);
  if (m > kSmallRows || n % dense.small_cols != 0 || k % dense.small_depth != 0) {
    dense.gemm_nt_add(m, n, k, a, w, c);
    return;
  }
  const size_t cols = dense.small_cols * std::max<size_t>(1, 96 / dense.small_cols);  // >= 96 columns per task
  split_columns(n, cols, [&](size_t begin, size_t end) { dense.small_gemm_nt_add(m, n, k, a, w, c, begin, end); });
}

// Every row of x (rows x v.size()) = v.
void fill_rows(float* x, size_t rows, const FloatBuffer& v) {
  for (size_t r = 0; r < rows; ++r) std::memcpy(x + r * v.size(), v.data(), v.size() * sizeof(float));
}

}  // namespace

void BertEncoder::Impl::forward(std::span<const uint32_t> batch, std::span<const std::span<const int32_t>> seqs,
                                Workspace& ws, float* out) const {
  const BertConfig& c = config;
  const kernels::DenseKernels& k = *dense;
  const size_t H = c.hidden, I = c.intermediate, d = c.hidden / c.heads;
  size_t M = 0, longest = 0;
  for (uint32_t s : batch) {
    M += seqs[s].size();
    longest = std::max(longest, seqs[s].size());
  }
  ws.reserve(M, longest, c);
  float* x = ws.x.data();  // M x H

  // Embeddings: word + position + type 0, then LayerNorm.
  float* row = x;
  for (uint32_t s : batch) {
    const auto ids = seqs[s];
    for (size_t t = 0; t < ids.size(); ++t, row += H) {
      const float* wr = word.row(static_cast<size_t>(ids[t]));
      const float* pr = pos_type.row(t);
      for (size_t j = 0; j < H; ++j) row[j] = wr[j] + pr[j];
    }
  }
  k.add_bias_layer_norm(x, M, H, nullptr, emb_ln_g.data(), emb_ln_b.data(), c.layer_norm_eps);

  for (const LayerWeights& w : layers) {
    // Fused Q/K/V projection.
    float* qkv = ws.a.data();  // M x 3H
    fill_rows(qkv, M, w.qkv_b);
    gemm_add(k, M, x, w.qkv, qkv, ws);

    // Attention, per text and head, on the text's own rows only.
    float* ctx = ws.a.data() + M * 3 * H;  // M x H
    size_t r0 = 0;
    if (bf16_attention) {
      // The rounded copy has 16 zero rows past the batch: a text's last
      // 16-row tile may reach them.
      const uint16_t* qkv16 = kernels::bf16_round_rows(M, 3 * H, qkv, ws.a16, M + 16);
      for (uint32_t s : batch) {
        const size_t T = seqs[s].size();
        kernels::bf16_attention(T, c.heads, d, qkv16 + r0 * 3 * H, 3 * H, ctx + r0 * H, H, ws.attention);
        r0 += T;
      }
    } else {
      for (uint32_t s : batch) {
        const size_t T = seqs[s].size();
        k.attention(T, c.heads, d, qkv + r0 * 3 * H, 3 * H, ctx + r0 * H, H, ws.scores.data());
        r0 += T;
      }
    }

    // Output projection onto the residual, then LayerNorm.
    gemm_add(k, M, ctx, w.attn_out, x, ws);
    k.add_bias_layer_norm(x, M, H, w.attn_out_b.data(), w.ln1_g.data(), w.ln1_b.data(), c.layer_norm_eps);

    // Feed-forward: exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
    float* f = ws.a.data();  // M x I
    fill_rows(f, M, w.ffn_in_b);
    gemm_add(k, M, x, w.ffn_in, f, ws);
    k.gelu(f, M * I);
    gemm_add(k, M, f, w.ffn_out, x, ws);
    k.add_bias_layer_norm(x, M, H, w.ffn_out_b.data(), w.ln2_g.data(), w.ln2_b.data(), c.layer_norm_eps);
  }

  // Pooling and L2 normalisation. The norm is taken in the workspace, not in
  // `out`: vectorised reductions peel unaligned leading elements, so their
  // summation order (and last bit) would depend on the caller's buffer.
  size_t r0 = 0;
  for (uint32_t s : batch) {
    const size_t T = seqs[s].size();
    k.pool(x + r0 * H, T, H, c.pooling == Pooling::kCls, c.normalize, ws.pooled.data(),
           out + static_cast<size_t>(s) * H);
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
  m.dense = &kernels::dense_kernels();
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
