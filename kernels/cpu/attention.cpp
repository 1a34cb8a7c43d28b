#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/simd.h"

namespace moeflow::kernels {
namespace {

float dot(const float* a, const float* b, int64_t n) {
  simd::vec acc = simd::zero();
  int64_t i = 0;
  for (; i + simd::kLanes <= n; i += simd::kLanes)
    acc = simd::fma(simd::load(a + i), simd::load(b + i), acc);
  float s = simd::sum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void attention(const float* q, int64_t n, int64_t first_position, const float* k, const float* v,
               int64_t kv_len, const AttentionShape& shape, float* out) {
  const int64_t hd = shape.head_dim;
  const int64_t q_ld = shape.heads * hd;
  const int64_t kv_ld = shape.kv_heads * hd;
  const int64_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t tasks = n * shape.heads;
#pragma omp parallel if (tasks * kv_len * hd >= 65536)
  {
    std::vector<float> scores(kv_len);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t i = t / shape.heads;
      const int64_t h = t % shape.heads;
      const int64_t kvh = h / group;
      const int64_t pos = first_position + i;
      const int64_t end = std::min(pos + 1, kv_len);
      const int64_t begin =
          shape.sliding_window > 0 ? std::max<int64_t>(0, pos - shape.sliding_window + 1) : 0;
      const float* qi = q + i * q_ld + h * hd;
      float m = -INFINITY;
      for (int64_t j = begin; j < end; ++j) {
        scores[j] = dot(qi, k + j * kv_ld + kvh * hd, hd) * scale;
        m = std::max(m, scores[j]);
      }
      float total = 0.0f;
      for (int64_t j = begin; j < end; ++j) {
        scores[j] = std::exp(scores[j] - m);
        total += scores[j];
      }
      float* o = out + i * q_ld + h * hd;
      std::fill(o, o + hd, 0.0f);
      const float inv = 1.0f / total;
      for (int64_t j = begin; j < end; ++j) {
        const float w = scores[j] * inv;
        const float* vj = v + j * kv_ld + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += w * vj[d];
      }
    }
  }
}

}  // namespace moeflow::kernels
