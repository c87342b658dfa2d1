// quantizer.h: symmetric int8 quantization with one global scale chosen from
// the data: code = clamp(round(x / scale), -127, 127).
//
// Why one global scale and not one per dimension: with a single scale the
// graph distance stays a plain integer dot product / L2 (vpdpbusd, 64
// products per instruction); per-dimension scales would put a weight inside
// every product. The exact float32 rescoring stage restores the ranking.
// The scale is the 99.99th percentile of |x| over (up to 2^20 components of)
// the first batch, so one outlier does not flatten everything else; larger
// components clip to +-127.
// Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>

#include <medsearch/vector_types.h>

namespace medsearch::vector::internal {

class Int8Quantizer {
 public:
  bool fitted() const { return scale_ > 0.0f; }
  float scale() const { return scale_; }
  void set_scale(float s) { scale_ = s; }
  void fit(MatrixView sample);
  void encode(const float* x, size_t dim, int8_t* out) const { encode_with(x, dim, 1.0f / scale_, out); }
  // Encodes with the vector's own scale (max|x| / 127); returns that scale.
  // Inner-product rankings only need a positive factor, so a query keeps its
  // full precision this way.
  static float encode_own_scale(const float* x, size_t dim, int8_t* out);

 private:
  static void encode_with(const float* x, size_t dim, float inv_scale, int8_t* out);
  float scale_ = 0.0f;
};

}  // namespace medsearch::vector::internal
