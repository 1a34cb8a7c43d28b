// The fused GPU gating kernel (softmax + top-k + normalisation) against the CPU rule
// (model/moe_routing.h) on fresh random logits: normalised (Mixtral, Qwen2-MoE, OLMoE) and plain
// softmax weights (DeepSeek-MoE), with and without an allowed set. Skips without a CUDA device.
#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/moe_gate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"
#include "model/moe_routing.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow {
namespace {

using test_support::DeviceArray;

struct GateShape {
  int64_t n;
  int experts, k;
  bool normalize, restricted;
};

void check_gate(const GateShape& s, std::mt19937& rng) {
  SCOPED_TRACE("n=" + std::to_string(s.n) + " experts=" + std::to_string(s.experts) +
               " k=" + std::to_string(s.k) + " normalize=" + std::to_string(s.normalize) +
               " restricted=" + std::to_string(s.restricted));
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(s.n * s.experts);
  for (float& v : logits) v = normal(rng);
  std::vector<uint8_t> allowed(s.experts, 1);
  if (s.restricted) {
    for (auto& a : allowed) a = rng() % 2;
    for (int j = 0; j < s.k; ++j) allowed[(j * 7) % s.experts] = 1;  // at least k allowed
  }
  std::vector<int32_t> want_e(s.n * s.k);
  std::vector<float> want_w(s.n * s.k);
  route_top_k(logits.data(), s.n, s.experts, s.k, s.normalize, want_e.data(), want_w.data(),
              s.restricted ? allowed.data() : nullptr);

  DeviceArray<float> d_logits(logits);
  DeviceArray<uint8_t> d_allowed(allowed);
  DeviceArray<int32_t> d_e(s.n * s.k);
  DeviceArray<float> d_w(s.n * s.k);
  d_e.poison();
  d_w.poison();
  kernels::cuda::route_top_k(d_logits.get(), s.n, s.experts, s.k, s.normalize, d_e.get(), d_w.get(),
                             nullptr, s.restricted ? d_allowed.get() : nullptr);
  const std::vector<int32_t> got_e = d_e.download();
  const std::vector<float> got_w = d_w.download();

  // The CPU's probabilities, to tell a real difference from a near-tie that fp32 rounding
  // (GPU expf vs the host's) may order either way.
  std::vector<float> probs = logits;
  kernels::softmax_rows(probs.data(), s.n, s.experts);
  int swaps = 0;
  for (int64_t r = 0; r < s.n; ++r) {
    for (int j = 0; j < s.k; ++j) {
      const int64_t i = r * s.k + j;
      ASSERT_FALSE(std::isnan(got_w[i])) << "row " << r << " choice " << j << " not written";
      ASSERT_GE(got_e[i], 0) << "row " << r << " choice " << j;
      ASSERT_LT(got_e[i], s.experts) << "row " << r << " choice " << j;
      if (got_e[i] != want_e[i]) {
        const float a = probs[r * s.experts + got_e[i]], b = probs[r * s.experts + want_e[i]];
        ASSERT_LE(std::fabs(a - b), 1e-6f * b + 1e-30f)
            << "row " << r << " choice " << j << ": expert " << got_e[i] << " instead of "
            << want_e[i];
        ++swaps;
        continue;
      }
      EXPECT_NEAR(got_w[i], want_w[i], 1e-5f * want_w[i] + 1e-7f) << "row " << r << " choice " << j;
    }
  }
  EXPECT_LE(swaps, 2) << "near-ties ordered differently";
}

TEST(CudaMoeGate, MatchesTheCpuRuleOnRandomLogits) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const GateShape shapes[] = {
      {1, 8, 2, true, false},      // Mixtral, one row
      {5, 60, 4, true, false},     // Qwen2-MoE
      {300, 64, 6, false, false},  // DeepSeek-MoE: plain softmax weights
      {257, 64, 8, true, false},   // OLMoE
      {129, 256, 8, true, false},  // the widest supported gate
      {33, 16, 16, false, false},  // every expert chosen
      {200, 33, 3, true, true},    // an elastic budget: only allowed experts
      {64, 100, 5, false, true},
  };
  for (const GateShape& s : shapes) check_gate(s, rng);
}

// Checked on the host before any launch: runs without a GPU too.
TEST(CudaMoeGate, RefusesShapesItCannotRun) {
  EXPECT_THROW(kernels::cuda::route_top_k(nullptr, 1, kernels::cuda::kGateMaxExperts + 1, 2, true,
                                          nullptr, nullptr, nullptr),
               std::invalid_argument);
  EXPECT_THROW(kernels::cuda::route_top_k(nullptr, 1, 8, 9, true, nullptr, nullptr, nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace moeflow
#else
#include <gtest/gtest.h>
TEST(CudaMoeGate, MatchesTheCpuRuleOnRandomLogits) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
#endif
