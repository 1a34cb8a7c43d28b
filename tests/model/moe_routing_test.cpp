// route_top_k against a double-precision reference: the k most probable experts, best first,
// with their softmax probabilities (or those renormalised over the k), ties to the lower id.
#include "model/moe_routing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace moeflow {
namespace {

struct Routed {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

Routed route(const std::vector<float>& logits, int64_t n, int64_t num_experts, int64_t k,
             bool normalize) {
  Routed r{std::vector<int32_t>(n * k, -1), std::vector<float>(n * k, -1.0f)};
  route_top_k(logits.data(), n, num_experts, k, normalize, r.experts.data(), r.weights.data());
  return r;
}

// Checks one call on random logits against softmax in double, sorted by probability (ties by id).
void check_random(int64_t n, int64_t num_experts, int64_t k, bool normalize, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "n " << n << " experts " << num_experts << " k " << k
                                    << " normalize " << normalize);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> logits(n * num_experts);
  for (auto& v : logits) v = dist(rng);
  const Routed got = route(logits, n, num_experts, k, normalize);
  for (int64_t r = 0; r < n; ++r) {
    const float* row = logits.data() + r * num_experts;
    const double m = *std::max_element(row, row + num_experts);
    std::vector<double> p(num_experts);
    double total = 0.0;
    for (int64_t e = 0; e < num_experts; ++e) total += p[e] = std::exp(row[e] - m);
    for (auto& v : p) v /= total;
    std::vector<int32_t> order(num_experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    double kept = 0.0;
    for (int64_t j = 0; j < k; ++j) kept += p[order[j]];
    double weight_sum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(got.experts[r * k + j], order[j]) << "row " << r << " rank " << j;
      const double want = normalize ? p[order[j]] / kept : p[order[j]];
      EXPECT_NEAR(got.weights[r * k + j], want, 1e-6 * want + 1e-8) << "row " << r << " rank " << j;
      weight_sum += got.weights[r * k + j];
    }
    if (normalize) {
      EXPECT_NEAR(weight_sum, 1.0, 1e-6) << "row " << r;
    }
  }
}

TEST(MoeRoutingTest, SoftmaxWeightsMatchReference) {
  uint32_t seed = 1;
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{8, 2}, {60, 4}, {64, 8}, {64, 6}, {3, 1}})
    check_random(5, experts, k, false, seed++);
}

TEST(MoeRoutingTest, NormalizedWeightsMatchReference) {
  uint32_t seed = 100;
  for (auto [experts, k] : {std::pair<int64_t, int64_t>{8, 2}, {60, 4}, {64, 8}, {64, 6}, {3, 1}})
    check_random(5, experts, k, true, seed++);
}

// k == num_experts returns every expert sorted by probability; normalised or not the weights
// are then the full softmax.
TEST(MoeRoutingTest, AllExpertsSelected) {
  check_random(3, 8, 8, false, 200);
  check_random(3, 8, 8, true, 201);
}

// A single expert with normalisation gets weight exactly 1.
TEST(MoeRoutingTest, SingleExpertNormalizedIsOne) {
  const std::vector<float> logits = {0.3f, -1.0f, 2.5f, 0.0f};
  const Routed got = route(logits, 1, 4, 1, true);
  EXPECT_EQ(got.experts[0], 2);
  EXPECT_EQ(got.weights[0], 1.0f);
}

// Equal logits resolve to the lower expert id, in every row.
TEST(MoeRoutingTest, TiesResolveToLowerExpertId) {
  const std::vector<float> logits = {
      0.0f,  2.0f, 1.0f, 2.0f, 2.0f, -1.0f,  // three-way tie for first at ids 1, 3, 4
      5.0f,  5.0f, 5.0f, 5.0f, 5.0f, 5.0f,   // all equal
      -1.0f, 0.5f, 3.0f, 0.5f, 0.5f, 3.0f,   // tie for first (2, 5) and for third (1, 3, 4)
  };
  const Routed got = route(logits, 3, 6, 3, false);
  EXPECT_EQ(got.experts, (std::vector<int32_t>{1, 3, 4, 0, 1, 2, 2, 5, 1}));
  // Tied experts carry identical weights.
  EXPECT_EQ(got.weights[0], got.weights[1]);
  EXPECT_EQ(got.weights[1], got.weights[2]);
  EXPECT_NEAR(got.weights[3], 1.0 / 6.0, 1e-7);

  const Routed norm = route(logits, 3, 6, 2, true);
  EXPECT_EQ(norm.experts, (std::vector<int32_t>{1, 3, 0, 1, 2, 5}));
  for (float w : norm.weights) EXPECT_NEAR(w, 0.5, 1e-7);
}

// Very large logits do not overflow: the best expert takes (almost) all the mass.
TEST(MoeRoutingTest, LargeLogitsStayFinite) {
  const std::vector<float> logits = {1000.0f, 990.0f, -1000.0f, 0.0f};
  const Routed got = route(logits, 1, 4, 2, false);
  EXPECT_EQ(got.experts, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(got.weights[0], 1.0 / (1.0 + std::exp(-10.0)), 1e-6);
  EXPECT_NEAR(got.weights[1], std::exp(-10.0) / (1.0 + std::exp(-10.0)), 1e-9);
}

}  // namespace
}  // namespace moeflow
