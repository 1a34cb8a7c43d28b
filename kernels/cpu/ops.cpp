#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/simd.h"

namespace moeflow::kernels {

void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, float eps, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * d;
    float* yr = out + r * d;
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
    for (int64_t i = 0; i < d; ++i) yr[i] = weight[i] * (xr[i] * scale);
  }
}

void rope_inv_freq(int64_t head_dim, double theta, float* inv_freq) {
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(theta), exponent);
  }
}

void rope_rotate_half(float* x, int64_t ld, int64_t n, int64_t heads, int64_t head_dim,
                      const int32_t* positions, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  float cos_v[512], sin_v[512];  // head_dim <= 1024
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[r]) * inv_freq[i];
      cos_v[i] = std::cos(angle);
      sin_v[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos_v[i] - b * sin_v[i];
        v[i + half] = b * cos_v[i] + a * sin_v[i];
      }
    }
  }
}

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const simd::vec av = simd::set1(a);
  for (; i + simd::kLanes <= n; i += simd::kLanes)
    simd::store(y + i, simd::fma(av, simd::load(x + i), simd::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void add_bias(float* y, const float* bias, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < d; ++i) y[r * d + i] += bias[i];
}

void softmax_rows(float* x, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r) {
    float* v = x + r * d;
    const float m = *std::max_element(v, v + d);
    float s = 0.0f;
    for (int64_t i = 0; i < d; ++i) {
      v[i] = std::exp(v[i] - m);
      s += v[i];
    }
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < d; ++i) v[i] *= inv;
  }
}

void clamp(float* x, int64_t n, float limit) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(x[i], -limit, limit);
}

}  // namespace moeflow::kernels
