#include "core/vector/quantizer.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <vector>

namespace medsearch::vector::internal {

void Int8Quantizer::fit(MatrixView sample) {
  std::vector<float> mags;
  const size_t total = sample.rows * sample.dim;
  const size_t step = std::max<size_t>(1, total / (size_t{1} << 20));
  mags.reserve(total / step + 1);
  for (size_t i = 0; i < sample.rows; ++i) {
    const float* r = sample.row(i);
    for (size_t j = (i * sample.dim) % step; j < sample.dim; j += step) mags.push_back(std::fabs(r[j]));
  }
  float p = 0.0f;
  if (!mags.empty()) {
    const size_t idx = std::min(mags.size() - 1, static_cast<size_t>(0.9999 * static_cast<double>(mags.size())));
    std::nth_element(mags.begin(), mags.begin() + static_cast<ptrdiff_t>(idx), mags.end());
    p = mags[idx];
  }
  scale_ = p > 0.0f ? p / 127.0f : 1.0f / 127.0f;
}

// Both loops below run once per query (encode_own_scale) and once per added
// row, so they are written to vectorise at the baseline ISA: integer max over
// the magnitude bits (the order of non-negative finite floats), and rounding by
// adding and subtracting 1.5 * 2^23, which rounds half to even like
// nearbyint() in the default rounding mode (GCC otherwise calls libm's
// nearbyintf once per component). Inputs are finite (add() and search() check),
// and the clamp keeps |v| far below 2^22, where the trick is exact.
void Int8Quantizer::encode_with(const float* x, size_t dim, float inv, int8_t* out) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  for (size_t j = 0; j < dim; ++j) {
    const float v = std::clamp(x[j] * inv, -127.0f, 127.0f);
    out[j] = static_cast<int8_t>((v + kRound) - kRound);
  }
}

float Int8Quantizer::encode_own_scale(const float* x, size_t dim, int8_t* out) {
  uint32_t bits = 0;
  for (size_t j = 0; j < dim; ++j) bits = std::max(bits, std::bit_cast<uint32_t>(x[j]) & 0x7fffffffu);
  const float m = std::bit_cast<float>(bits);
  const float scale = m > 0.0f ? m / 127.0f : 1.0f;
  encode_with(x, dim, 1.0f / scale, out);
  return scale;
}

}  // namespace medsearch::vector::internal
