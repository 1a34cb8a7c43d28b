// Causal grouped-query attention against a naive double-precision reference: prefill, decode and
// a chunk in the middle of a sequence, with and without a sliding window, for several head layouts.
#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace moeflow {
namespace {

using kernels::AttentionShape;

std::vector<float> random_vector(int64_t size, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(size);
  for (auto& e : v) e = dist(rng);
  return v;
}

// softmax(q k^T / sqrt(d)) v per query head, in double, with query head h reading kv head
// h / (heads / kv_heads); query i sits at position first + i and sees keys j <= first + i with
// first + i - j < window (when window > 0).
std::vector<double> reference_attention(const std::vector<float>& q, int64_t n, int64_t first,
                                        const std::vector<float>& k, const std::vector<float>& v,
                                        int64_t kv_len, const AttentionShape& s) {
  const int64_t hd = s.head_dim, group = s.heads / s.kv_heads;
  std::vector<double> out(n * s.heads * hd, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = first + i;
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t kvh = h / group;
      std::vector<double> scores(kv_len, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < kv_len; ++j) {
        if (j > pos) continue;
        if (s.sliding_window > 0 && pos - j >= s.sliding_window) continue;
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d)
          dot += static_cast<double>(q[(i * s.heads + h) * hd + d]) *
                 k[(j * s.kv_heads + kvh) * hd + d];
        scores[j] = dot / std::sqrt(static_cast<double>(hd));
        m = std::max(m, scores[j]);
      }
      double total = 0.0;
      for (int64_t j = 0; j < kv_len; ++j) total += std::exp(scores[j] - m);
      for (int64_t j = 0; j < kv_len; ++j) {
        const double w = std::exp(scores[j] - m) / total;
        if (w == 0.0) continue;
        for (int64_t d = 0; d < hd; ++d)
          out[(i * s.heads + h) * hd + d] += w * v[(j * s.kv_heads + kvh) * hd + d];
      }
    }
  }
  return out;
}

struct Layout {
  int64_t heads, kv_heads;
};

// Runs one call on fresh random inputs and compares every output with the reference.
void check_case(const AttentionShape& shape, int64_t kv_len, int64_t first, int64_t n,
                uint32_t seed) {
  const std::string what =
      "heads " + std::to_string(shape.heads) + "/" + std::to_string(shape.kv_heads) + " head_dim " +
      std::to_string(shape.head_dim) + " window " + std::to_string(shape.sliding_window) +
      " kv_len " + std::to_string(kv_len) + " first " + std::to_string(first) + " n " +
      std::to_string(n);
  SCOPED_TRACE(what);
  std::mt19937 rng(seed);
  // q scaled up so that the softmax is far from uniform and the scores matter.
  const auto q = random_vector(n * shape.heads * shape.head_dim, rng, 2.0f);
  const auto k = random_vector(kv_len * shape.kv_heads * shape.head_dim, rng, 1.0f);
  const auto v = random_vector(kv_len * shape.kv_heads * shape.head_dim, rng, 1.0f);
  std::vector<float> out(n * shape.heads * shape.head_dim, std::numeric_limits<float>::quiet_NaN());
  kernels::attention(q.data(), n, first, k.data(), v.data(), kv_len, shape, out.data());
  const auto want = reference_attention(q, n, first, k, v, kv_len, shape);
  int64_t failures = 0;
  for (size_t e = 0; e < out.size(); ++e) {
    const double tolerance = 1e-5 * (1.0 + std::fabs(want[e]));
    if (std::isnan(out[e]) || !(std::fabs(out[e] - want[e]) <= tolerance)) {
      if (++failures <= 3) ADD_FAILURE() << "out[" << e << "] = " << out[e] << ", want " << want[e];
    }
  }
}

class AttentionTest : public ::testing::TestWithParam<Layout> {};

// Every query of a sequence at once (first_position 0, n == kv_len).
TEST_P(AttentionTest, PrefillMatchesReference) {
  uint32_t seed = 1;
  for (int64_t head_dim : {16, 64})
    for (int64_t window : {0, 3})
      for (int64_t kv_len : {1, 9, 40}) {  // 40 with 8 heads runs the parallel region
        const AttentionShape s{GetParam().heads, GetParam().kv_heads, head_dim, window};
        check_case(s, kv_len, 0, kv_len, seed++);
      }
}

// One new token against the cache (n = 1, first_position = kv_len - 1).
TEST_P(AttentionTest, DecodeMatchesReference) {
  uint32_t seed = 100;
  for (int64_t head_dim : {16, 64})
    for (int64_t window : {0, 3})
      for (int64_t kv_len : {1, 2, 3, 4, 13}) {
        const AttentionShape s{GetParam().heads, GetParam().kv_heads, head_dim, window};
        check_case(s, kv_len, kv_len - 1, 1, seed++);
      }
}

// A chunk of several tokens after a cached prefix (first_position > 0, n > 1).
TEST_P(AttentionTest, ChunkAfterPrefixMatchesReference) {
  uint32_t seed = 200;
  for (int64_t head_dim : {16, 64})
    for (int64_t window : {0, 3})
      for (auto [first, n] : {std::pair<int64_t, int64_t>{1, 2}, {5, 4}, {7, 12}}) {
        const AttentionShape s{GetParam().heads, GetParam().kv_heads, head_dim, window};
        check_case(s, first + n, first, n, seed++);
      }
}

INSTANTIATE_TEST_SUITE_P(HeadLayouts, AttentionTest,
                         ::testing::Values(Layout{4, 4}, Layout{4, 2}, Layout{8, 1}),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           return "h" + std::to_string(info.param.heads) + "_kv" +
                                  std::to_string(info.param.kv_heads);
                         });

// The first query sees only the first key, so its output is exactly that key's value row (per
// kv head), whatever q is.
TEST(AttentionSimpleTest, FirstTokenCopiesItsValue) {
  std::mt19937 rng(300);
  const AttentionShape s{4, 2, 8, 0};
  const auto q = random_vector(4 * 8, rng, 5.0f);
  const auto k = random_vector(2 * 8, rng, 1.0f);
  const auto v = random_vector(2 * 8, rng, 1.0f);
  std::vector<float> out(4 * 8);
  kernels::attention(q.data(), 1, 0, k.data(), v.data(), 1, s, out.data());
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t d = 0; d < 8; ++d) EXPECT_FLOAT_EQ(out[h * 8 + d], v[(h / 2) * 8 + d]) << h;
}

// With window 1 every query sees only its own key: output = own value row.
TEST(AttentionSimpleTest, WindowOfOneSeesOnlyItself) {
  std::mt19937 rng(301);
  const AttentionShape s{2, 1, 16, 1};
  const int64_t kv_len = 6;
  const auto q = random_vector(kv_len * 2 * 16, rng, 5.0f);
  const auto k = random_vector(kv_len * 16, rng, 1.0f);
  const auto v = random_vector(kv_len * 16, rng, 1.0f);
  std::vector<float> out(kv_len * 2 * 16);
  kernels::attention(q.data(), kv_len, 0, k.data(), v.data(), kv_len, s, out.data());
  for (int64_t i = 0; i < kv_len; ++i)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t d = 0; d < 16; ++d)
        EXPECT_FLOAT_EQ(out[(i * 2 + h) * 16 + d], v[i * 16 + d]) << "token " << i;
}

}  // namespace
}  // namespace moeflow
