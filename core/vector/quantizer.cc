#include "core/vector/quantizer.h"

#include <algorithm>
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

void Int8Quantizer::encode_with(const float* x, size_t dim, float inv, int8_t* out) {
  for (size_t j = 0; j < dim; ++j) {
    const float v = std::nearbyint(x[j] * inv);
    out[j] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
}

float Int8Quantizer::encode_own_scale(const float* x, size_t dim, int8_t* out) {
  float m = 0.0f;
  for (size_t j = 0; j < dim; ++j) m = std::max(m, std::fabs(x[j]));
  const float scale = m > 0.0f ? m / 127.0f : 1.0f;
  encode_with(x, dim, 1.0f / scale, out);
  return scale;
}

}  // namespace medsearch::vector::internal
