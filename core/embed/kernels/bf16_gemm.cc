// bf16_gemm.cc: the parts of bf16_gemm.h compiled for the library's baseline:
// whether AMX may be used, bfloat16 rounding of single values, the weights'
// tile layout, and the wrappers that own buffers (std::vector code is emitted
// here, not in the AMX object, so the linker has only one copy of it to keep).
// The tile kernels themselves are in bf16_gemm_amx.cc.
#include "core/embed/kernels/bf16_gemm.h"

#include <algorithm>
#include <cstring>

#include "core/internal/cpu.h"

namespace medsearch::embed::kernels {

extern const bool kAmxKernelsCompiled;  // bf16_gemm_amx.cc

namespace {

const char* probe_amx() {
  using internal::CpuLevel;
  if (!kAmxKernelsCompiled) return "this build has no AMX kernel (the compiler lacks -mamx-bf16)";
  const internal::CpuFeatures& cpu = internal::cpu_features();
  if (!cpu.amx_tile || !cpu.amx_bf16) {
    return "this CPU has no AMX-BF16 (Intel Sapphire Rapids or later has it), or the operating system does not "
           "enable its tile state";
  }
  if (internal::supported_cpu_level() < CpuLevel::kAmx) return "this CPU has no AVX-512 with AVX512-BF16";
  if (internal::cpu_level() < CpuLevel::kAmx) return "MEDSEARCH_CPU_LEVEL leaves AMX out";
  // Linux hands out the 8 KB tile state only on request (5.16+).
  if (!internal::amx_tiles_permitted()) {
    return "the operating system did not grant the AMX tile state (Linux 5.16 or later is needed)";
  }
  return "";
}

const char* amx_reason() {
  static const char* const reason = probe_amx();  // thread-safe, once
  return reason;
}

}  // namespace

bool amx_bf16_available() { return amx_reason()[0] == '\0'; }
const char* amx_bf16_unavailable_reason() { return amx_reason(); }

uint16_t to_bf16(float x) {
  uint32_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t x) {
  const uint32_t u = static_cast<uint32_t>(x) << 16;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

Bf16PackedWeights::Bf16PackedWeights(const float* w, size_t n, size_t k) : n_(n), k_(k), data_(n * k) {
  const size_t depth_blocks = k / kDepthBlock;
  for (size_t ct = 0; ct < n / 16; ++ct) {
    for (size_t kb = 0; kb < depth_blocks; ++kb) {
      uint16_t* t = data_.data() + (ct * depth_blocks + kb) * 512;
      for (size_t r = 0; r < 16; ++r) {
        for (size_t col = 0; col < 16; ++col) {
          const float* src = w + (ct * 16 + col) * k + kb * kDepthBlock + 2 * r;
          t[r * 32 + col * 2] = to_bf16(src[0]);
          t[r * 32 + col * 2 + 1] = to_bf16(src[1]);
        }
      }
    }
  }
}

const uint16_t* bf16_round_rows(size_t m, size_t k, const float* a, std::vector<uint16_t>& scratch,
                                size_t min_rows) {
  const size_t m_pad = std::max((m + 31) / 32 * 32, min_rows);
  if (scratch.size() < m_pad * k) scratch.resize(m_pad * k);
  uint16_t* a16 = scratch.data();
  bf16_round(a, m * k, a16);
  std::fill(a16 + m * k, a16 + m_pad * k, uint16_t{0});
  return a16;
}

void bf16_gemm_add(size_t m, const float* a, const Bf16PackedWeights& w, float* c, size_t ldc,
                   std::vector<uint16_t>& scratch) {
  if (m == 0) return;
  bf16_gemm_add_rounded(m, bf16_round_rows(m, w.cols(), a, scratch), w, 0, w.rows(), c, ldc);
}

void bf16_attention(size_t T, size_t heads, size_t d, const uint16_t* qkv16, size_t ld, float* ctx, size_t ldc,
                    AttentionScratch& s) {
  if (T == 0) return;
  const size_t T16 = (T + 15) / 16 * 16, T32 = (T + 31) / 32 * 32;
  s.k_tiles.resize(T16 / 16 * (d / 32) * 512);
  s.v_tiles.resize(d / 16 * (T32 / 32) * 512);
  s.p16.resize(T16 * T32);
  s.scores.resize(T16 * T16);
  s.tail.resize(16 * 16);
  bf16_attention_tiles(T, heads, d, qkv16, ld, ctx, ldc,
                       {s.k_tiles.data(), s.v_tiles.data(), s.p16.data(), s.scores.data(), s.tail.data()});
}

}  // namespace medsearch::embed::kernels
