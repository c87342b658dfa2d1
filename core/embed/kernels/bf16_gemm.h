// bf16_gemm.h: C += A W^T in bfloat16 on Intel AMX tiles, for the encoder's
// dense layers (bert_encoder.cc, Precision::kBFloat16).
//
// A (m x k) is float32 and is rounded to bfloat16 on the way in; W (n x k, a
// linear layer's [out, in] weights) is rounded once, at load, and stored in
// the tile order TDPBF16PS reads; products are accumulated in float32 onto C.
// Rounding both operands to bfloat16 (8-bit mantissa) changes each product by
// at most about 2^-8 relative; over k terms the errors mostly cancel.
//
// No Eigen here. The tile kernels (bf16_gemm_amx.cc) are compiled with
// -march=x86-64-v4 -mavx512bf16 -mamx-tile -mamx-bf16 (CMakeLists.txt: the
// object library medsearch_isa_amx) and must only be called after
// amx_bf16_available() said yes; the rest (bf16_gemm.cc) is baseline code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace medsearch::embed::kernels {

// True when this build has the kernel, the CPU has AMX-TILE and AMX-BF16 (and
// AVX512-BF16), cpu_level() is AMX (MEDSEARCH_CPU_LEVEL may lower it), and
// the kernel granted this process the tile state (arch_prctl
// ARCH_REQ_XCOMP_PERM, Linux 5.16+). The first call asks; later calls return
// the same answer. Thread-safe.
bool amx_bf16_available();

// Why amx_bf16_available() is false ("" when it is true).
const char* amx_bf16_unavailable_reason();

// W (n x k, row-major) rounded to bfloat16 (round to nearest even) and laid
// out as TDPBF16PS's B operand: for each block of 16 output columns and 32
// inputs, a 1 KB tile whose row r holds, for each of the 16 columns c, the
// pair W[c][2r], W[c][2r + 1]. Blocks are stored column block by column
// block, inputs innermost, so one column block's tiles are contiguous.
class Bf16PackedWeights {
 public:
  static constexpr size_t kColBlock = 32;  // n must be a multiple (two tiles)
  static constexpr size_t kDepthBlock = 32;  // k must be a multiple
  static bool supports(size_t n, size_t k) { return n > 0 && k > 0 && n % kColBlock == 0 && k % kDepthBlock == 0; }

  Bf16PackedWeights() = default;
  // Requires supports(n, k).
  Bf16PackedWeights(const float* w, size_t n, size_t k);

  size_t rows() const { return n_; }
  size_t cols() const { return k_; }
  const uint16_t* tile(size_t col_tile, size_t depth_block) const {
    return data_.data() + (col_tile * (k_ / kDepthBlock) + depth_block) * 512;
  }
  size_t bytes() const { return data_.size() * sizeof(uint16_t); }

 private:
  size_t n_ = 0, k_ = 0;
  std::vector<uint16_t> data_;
};

// Rounds one float to bfloat16 (nearest even; NaN stays NaN).
uint16_t to_bf16(float x);
float from_bf16(uint16_t x);

// out = bf16(a) for `count` floats, count % 32 == 0 (AVX512-BF16). Requires
// amx_bf16_available().
void bf16_round(const float* a, size_t count, uint16_t* out);

// Rounds A (m x k, contiguous rows, k % 32 == 0) to bfloat16 into `scratch`
// (grown as needed; reuse it across calls to avoid allocating), with zero
// rows after m up to a multiple of 32 (as bf16_gemm_add_rounded reads them)
// and at least up to min_rows. Returns scratch.data().
const uint16_t* bf16_round_rows(size_t m, size_t k, const float* a, std::vector<uint16_t>& scratch,
                                size_t min_rows = 0);

// C (m x n, row stride ldc floats) += A W^T over output columns
// [col_begin, col_end) (multiples of 32), A from bf16_round_rows. Only those
// columns of C's first m rows are read or written, so disjoint column ranges
// may run on different threads. Requires amx_bf16_available().
void bf16_gemm_add_rounded(size_t m, const uint16_t* a16, const Bf16PackedWeights& w, size_t col_begin,
                           size_t col_end, float* c, size_t ldc);

// Both of the above, all columns, single-threaded.
void bf16_gemm_add(size_t m, const float* a, const Bf16PackedWeights& w, float* c, size_t ldc,
                   std::vector<uint16_t>& scratch);

// Buffers of bf16_attention, grown as needed; one per thread.
struct AttentionScratch {
  std::vector<uint16_t> k_tiles, v_tiles, p16;
  std::vector<float> scores, tail;
};

// Self-attention of one text on AMX, every head:
//   ctx_h = softmax(q_h k_h^T) v_h
// with q already scaled by 1/sqrt(d). qkv16 holds the text's T rows of
// [q | k | v] (3 x heads x d bfloat16 each, row stride `ld` elements);
// rows up to T rounded up to 16 are read (their values only reach rows of
// the result that are dropped), so the caller pads. ctx gets T rows of
// heads x d floats (row stride `ldc`), overwritten. Scores and softmax are
// float32; the probabilities are rounded to bfloat16 for the product with v.
// Requires d % 32 == 0 and amx_bf16_available().
void bf16_attention(size_t T, size_t heads, size_t d, const uint16_t* qkv16, size_t ld, float* ctx, size_t ldc,
                    AttentionScratch& scratch);

// bf16_attention on buffers the caller sized (bf16_gemm.cc does, so that no
// std::vector code is emitted in the AMX object): k_tiles (T16/16 x d/32
// tiles), v_tiles (d/16 x T32/32 tiles), p16 (T16 x T32), scores (T16 x T16),
// tail (16 x 16), where T16 and T32 are T rounded up to 16 and 32.
struct AttentionBuffers {
  uint16_t* k_tiles;
  uint16_t* v_tiles;
  uint16_t* p16;
  float* scores;
  float* tail;
};
void bf16_attention_tiles(size_t T, size_t heads, size_t d, const uint16_t* qkv16, size_t ld, float* ctx, size_t ldc,
                          const AttentionBuffers& buffers);

}  // namespace medsearch::embed::kernels
