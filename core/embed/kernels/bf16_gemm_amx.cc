// bf16_gemm_amx.cc: the AMX-BF16 GEMM and attention of bf16_gemm.h.
//
// The GEMM computes C in blocks of 32 rows x 32 columns held in four tile
// registers (tmm0..3, 16 x 16 floats each), loaded from C and stored back
// once per block; for each 32-deep slice of k it loads two 16 x 32 bf16 tiles
// of A (tmm4, tmm5) and two of W (tmm6, tmm7) and issues four TDPBF16PS.
// Row blocks are the outer loop: a block of A (32 rows: 24 KB at k = 384,
// 96 KB at k = 1536) stays in L1/L2 while the weights stream past it from L2
// (BM_Bf16Gemm: 1.2-1.4x faster than columns outer, which re-reads A from L2 for
// every column block).
// Rows beyond m (the last block) are zeros in the rounded copy of A and go
// through a small buffer instead of C.
#include "core/embed/kernels/bf16_gemm.h"

// GCC 12 reports the AVX-512 reductions (built on _mm512_undefined_*) as
// maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>


#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__AVX512F__)
#define MEDSEARCH_HAVE_AMX 1
#else
#define MEDSEARCH_HAVE_AMX 0
#endif

namespace medsearch::embed::kernels {

// Read by bf16_gemm.cc (compiled for the baseline), which must not call into
// this file before it knows the CPU can run it.
extern const bool kAmxKernelsCompiled = MEDSEARCH_HAVE_AMX;

#if MEDSEARCH_HAVE_AMX
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

constexpr TileConfig eight_full_tiles() {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  return cfg;
}
// A constant in read-only memory, not a stack object filled before the
// LDTILECFG: GCC 12 does not see that instruction read its operand and drops
// the stores filling it when configure_tiles() is not inlined (the tiles are
// then unconfigured and the first TILELOADD faults, SIGILL).
constexpr TileConfig kEightFullTiles = eight_full_tiles();

// Eight tiles of 16 rows x 64 bytes.
void configure_tiles() { _tile_loadconfig(&kEightFullTiles); }

// out = bf16(a), `count` floats, count % 32 == 0.
void round_to_bf16(const float* a, size_t count, uint16_t* out) {
  for (size_t i = 0; i < count; i += 32) {
    const __m512 lo = _mm512_loadu_ps(a + i);
    const __m512 hi = _mm512_loadu_ps(a + i + 16);
    _mm512_storeu_si512(out + i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

}  // namespace

void bf16_round(const float* a, size_t count, uint16_t* out) { round_to_bf16(a, count, out); }

void bf16_gemm_add_rounded(size_t m, const uint16_t* a16, const Bf16PackedWeights& w, size_t col_begin,
                           size_t col_end, float* c, size_t ldc) {
  if (m == 0 || col_begin >= col_end) return;
  const size_t k = w.cols(), depth_blocks = k / Bf16PackedWeights::kDepthBlock;
  configure_tiles();
  alignas(64) float tail[32 * 32];
  const size_t a_stride = k * sizeof(uint16_t);
  for (size_t i = 0; i < m; i += 32) {
    const size_t rows = std::min<size_t>(32, m - i);
    for (size_t j = col_begin; j < col_end; j += 32) {
      const size_t ct = j / 16;
      float* cb = c + i * ldc + j;
      size_t c_ld = ldc;
      if (rows < 32) {  // through `tail`, so no tile touches rows past m
        std::fill(tail, tail + 32 * 32, 0.0f);
        for (size_t r = 0; r < rows; ++r) std::memcpy(tail + r * 32, c + (i + r) * ldc + j, 32 * sizeof(float));
        cb = tail;
        c_ld = 32;
      }
      const size_t c_stride = c_ld * sizeof(float);
      const uint16_t* ab = a16 + i * k;
      _tile_loadd(0, cb, c_stride);
      _tile_loadd(1, cb + 16, c_stride);
      if (rows > 16) {
        _tile_loadd(2, cb + 16 * c_ld, c_stride);
        _tile_loadd(3, cb + 16 * c_ld + 16, c_stride);
        for (size_t kb = 0; kb < depth_blocks; ++kb) {
          _tile_loadd(4, ab + kb * 32, a_stride);
          _tile_loadd(5, ab + 16 * k + kb * 32, a_stride);
          _tile_loadd(6, w.tile(ct, kb), 64);
          _tile_loadd(7, w.tile(ct + 1, kb), 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(2, cb + 16 * c_ld, c_stride);
        _tile_stored(3, cb + 16 * c_ld + 16, c_stride);
      } else {  // the second row tile would be all padding
        for (size_t kb = 0; kb < depth_blocks; ++kb) {
          _tile_loadd(4, ab + kb * 32, a_stride);
          _tile_loadd(6, w.tile(ct, kb), 64);
          _tile_loadd(7, w.tile(ct + 1, kb), 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
        }
      }
      _tile_stored(0, cb, c_stride);
      _tile_stored(1, cb + 16, c_stride);
      if (rows < 32) {
        for (size_t r = 0; r < rows; ++r) std::memcpy(c + (i + r) * ldc + j, tail + r * 32, 32 * sizeof(float));
      }
    }
  }
  _tile_release();
}

namespace {

// exp(x) for x <= 0 (softmax after subtracting the row's maximum): Cephes'
// expf, relative error below 2e-7; x below -87 gives about 1.6e-38, not 0.
inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}

__mmask16 first_lanes(size_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

// row[0, T) = softmax(row[0, T)) rounded to bfloat16 into out[0, T), and
// out[T, width) = 0 (width % 32 == 0).
void softmax_to_bf16(float* row, size_t T, size_t width, uint16_t* out) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (size_t j = 0; j < T; j += 16) {
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), first_lanes(T - j), row + j));
  }
  const __m512 row_max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (size_t j = 0; j < T; j += 16) {
    const __mmask16 lanes = first_lanes(T - j);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, row + j), row_max));
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(lanes, e));
    _mm512_mask_storeu_ps(row + j, lanes, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (size_t j = 0; j < width; j += 32) {
    const __m512 lo = _mm512_mul_ps(_mm512_maskz_loadu_ps(j < T ? first_lanes(T - j) : 0, row + j), inv);
    const __m512 hi = _mm512_mul_ps(_mm512_maskz_loadu_ps(j + 16 < T ? first_lanes(T - j - 16) : 0, row + j + 16), inv);
    _mm512_storeu_si512(out + j, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

}  // namespace

void bf16_attention_tiles(size_t T, size_t heads, size_t d, const uint16_t* qkv16, size_t ld, float* ctx, size_t ldc,
                          const AttentionBuffers& s) {
  const size_t T16 = (T + 15) / 16 * 16, T32 = (T + 31) / 32 * 32, H = heads * d;
  const size_t depth_blocks = d / 32, key_tiles = T16 / 16, key_blocks = T32 / 32, dim_tiles = d / 16;
  configure_tiles();
  for (size_t h = 0; h < heads; ++h) {
    const uint16_t* q = qkv16 + h * d;
    const uint16_t* k = qkv16 + H + h * d;
    const uint16_t* v = qkv16 + 2 * H + h * d;
    // k as B of q k^T: tile (key tile kt, depth block db), row r holds for
    // each of its 16 keys the pair of dimensions db * 32 + 2r, +1. Keys past T are 0.
    for (size_t kt = 0; kt < key_tiles; ++kt) {
      for (size_t db = 0; db < depth_blocks; ++db) {
        uint32_t* t = reinterpret_cast<uint32_t*>(s.k_tiles + (kt * depth_blocks + db) * 512);
        for (size_t c = 0; c < 16; ++c) {
          const size_t key = kt * 16 + c;
          if (key < T) {
            const uint16_t* src = k + key * ld + db * 32;
            for (size_t r = 0; r < 16; ++r) std::memcpy(t + r * 16 + c, src + 2 * r, sizeof(uint32_t));
          } else {
            for (size_t r = 0; r < 16; ++r) t[r * 16 + c] = 0;
          }
        }
      }
    }
    // v as B of p v: tile (dimension tile ct, key block kb), row r holds for
    // each of its 16 dimensions the values of keys kb * 32 + 2r, +1.
    for (size_t ct = 0; ct < dim_tiles; ++ct) {
      for (size_t kb = 0; kb < key_blocks; ++kb) {
        uint16_t* t = s.v_tiles + (ct * key_blocks + kb) * 512;
        for (size_t r = 0; r < 16; ++r) {
          const size_t key0 = kb * 32 + 2 * r, key1 = key0 + 1;
          const uint16_t* src0 = v + key0 * ld + ct * 16;
          const uint16_t* src1 = v + key1 * ld + ct * 16;
          for (size_t c = 0; c < 16; ++c) {
            t[r * 32 + 2 * c] = key0 < T ? src0[c] : uint16_t{0};
            t[r * 32 + 2 * c + 1] = key1 < T ? src1[c] : uint16_t{0};
          }
        }
      }
    }
    // Scores, T16 x T16 (rows and columns past T are dropped below).
    float* scores = s.scores;
    for (size_t qt = 0; qt < T16 / 16; ++qt) {
      for (size_t kt = 0; kt < key_tiles; ++kt) {
        _tile_zero(0);
        for (size_t db = 0; db < depth_blocks; ++db) {
          _tile_loadd(4, q + qt * 16 * ld + db * 32, ld * sizeof(uint16_t));
          _tile_loadd(6, s.k_tiles + (kt * depth_blocks + db) * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
        }
        _tile_stored(0, scores + qt * 16 * T16 + kt * 16, T16 * sizeof(float));
      }
    }
    for (size_t i = 0; i < T16; ++i) {
      uint16_t* p = s.p16 + i * T32;
      if (i < T) {
        softmax_to_bf16(scores + i * T16, T, T32, p);
      } else {
        std::fill(p, p + T32, uint16_t{0});
      }
    }
    // ctx_h = p v, 16 x 16 tiles; the last rows through `tail`.
    for (size_t qt = 0; qt < T16 / 16; ++qt) {
      const size_t rows = std::min<size_t>(16, T - qt * 16);
      for (size_t ct = 0; ct < dim_tiles; ++ct) {
        _tile_zero(1);
        for (size_t kb = 0; kb < key_blocks; ++kb) {
          _tile_loadd(5, s.p16 + qt * 16 * T32 + kb * 32, T32 * sizeof(uint16_t));
          _tile_loadd(7, s.v_tiles + (ct * key_blocks + kb) * 512, 64);
          _tile_dpbf16ps(1, 5, 7);
        }
        float* dst = ctx + qt * 16 * ldc + h * d + ct * 16;
        if (rows == 16) {
          _tile_stored(1, dst, ldc * sizeof(float));
        } else {
          _tile_stored(1, s.tail, 64);
          for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * ldc, s.tail + r * 16, 16 * sizeof(float));
        }
      }
    }
  }
  _tile_release();
}

#else

// amx_bf16_available() is false in this build, so no caller gets here.
void bf16_round(const float*, size_t, uint16_t*) { __builtin_trap(); }
void bf16_attention_tiles(size_t, size_t, size_t, const uint16_t*, size_t, float*, size_t, const AttentionBuffers&) {
  __builtin_trap();
}
void bf16_gemm_add_rounded(size_t, const uint16_t*, const Bf16PackedWeights&, size_t, size_t, float*, size_t) {
  __builtin_trap();
}

#endif

}  // namespace medsearch::embed::kernels
