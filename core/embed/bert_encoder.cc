// bert_encoder.cc: the BERT forward pass in Eigen, batching, and the
// encoder's public methods. Loading the model's files (config, safetensors,
// checksums, model directories) is in model_files.cc; what both share is in
// bert_encoder_impl.h.
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
#include "core/embed/sgemm.h"
#include "core/internal/cpu.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <utility>
#include <unsupported/Eigen/SpecialFunctions>

namespace medsearch::embed {
namespace fs = std::filesystem;
using namespace internal;

namespace {

// Tokens per batch. Big enough that each GEMM streams its weights once for
// many rows (M >> the GEMM's register block), small enough that a batch's
// workspace (M x (H + max(4H, I)) floats, 7.5 KB per token for MiniLM) stays
// a few MB per thread. bench/embed/encoder_bench.cc measured the choice.
constexpr size_t kBatchTokens = 512;

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

void eigen_sgemm(int m, int n, int k, const float* a, const float* w, float* c) {
  MatrixMap(c, m, n).noalias() = ConstMatrixMap(a, m, k) * ConstMatrixMap(w, n, k).transpose();
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
