#pragma once
// One layer of random experts for the GPU expert-stage tests (cuda_expert_stage_test.cpp,
// cuda_expert_small_batch_test.cpp): bf16 weights, a subset held, random top-k routing over a
// pool of "hot" experts, and the CPU expert stage's answer (model/expert_stage.h) to compare
// with. Only included by tests built with CUDA.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cuda/expert_stage.h"
#include "model/expert_stage.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow::test_support {

// bf16 bits of random normal values with standard deviation `scale`.
inline std::vector<uint16_t> random_bf16(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<uint16_t> out(n);
  for (auto& v : out) v = kernels::f32_to_bf16(normal(rng));
  return out;
}

struct StageShape {
  int64_t n, num_experts, top_k, hidden, inter;
  int64_t held;         // experts held here: every `num_experts / held`-th one
  int64_t hot_experts;  // routing draws from the first this many experts (ragged groups)
};

inline std::string describe(const StageShape& s) {
  return "n=" + std::to_string(s.n) + " experts=" + std::to_string(s.num_experts) +
         " k=" + std::to_string(s.top_k) + " hidden=" + std::to_string(s.hidden) +
         " inter=" + std::to_string(s.inter) + " held=" + std::to_string(s.held);
}

// Random routing: k distinct experts per row, mostly among the hot ones, weights in (0.05, 1).
inline void random_routing(const StageShape& s, std::mt19937& rng, std::vector<int32_t>& experts,
                           std::vector<float>& weights) {
  std::uniform_real_distribution<float> weight(0.05f, 1.0f);
  experts.resize(s.n * s.top_k);
  weights.resize(s.n * s.top_k);
  std::vector<int32_t> ids(s.num_experts);
  for (int64_t r = 0; r < s.n; ++r) {
    std::iota(ids.begin(), ids.end(), 0);
    const int64_t pool = std::max(s.top_k, s.hot_experts);
    std::shuffle(ids.begin(), ids.begin() + pool, rng);
    for (int64_t j = 0; j < s.top_k; ++j) {
      experts[r * s.top_k + j] = ids[j];
      weights[r * s.top_k + j] = weight(rng);
    }
  }
}

// One layer's random experts (a subset held), the CPU stage's answer for a random batch, and
// what the GPU needs to compute it.
struct Case {
  std::vector<std::vector<uint16_t>> gate, up, down;  // per expert, empty when not held
  std::vector<kernels::cuda::HostExpert> held;
  ExpertWeights cpu_weights;
  TokenBatch batch;
  std::vector<float> want;
};

inline Case make_case(const StageShape& s, std::mt19937& rng) {
  Case c;
  c.gate.resize(s.num_experts);
  c.up.resize(s.num_experts);
  c.down.resize(s.num_experts);
  c.cpu_weights.experts.assign(1, std::vector<MlpWeights>(s.num_experts));
  const int64_t stride = s.num_experts / s.held;
  // Weights scaled like a trained layer's (outputs of order one).
  for (int64_t e = 0; e < s.num_experts; e += stride) {
    if (static_cast<int64_t>(c.held.size()) == s.held) break;
    c.gate[e] = random_bf16(s.inter * s.hidden, 1.0f / std::sqrt(float(s.hidden)), rng);
    c.up[e] = random_bf16(s.inter * s.hidden, 1.0f / std::sqrt(float(s.hidden)), rng);
    c.down[e] = random_bf16(s.hidden * s.inter, 1.0f / std::sqrt(float(s.inter)), rng);
    c.held.push_back({static_cast<int32_t>(e), c.gate[e].data(), c.up[e].data(), c.down[e].data()});
    MlpWeights& w = c.cpu_weights.experts[0][e];
    w.gate = {kernels::WeightType::bf16, c.gate[e].data(), s.inter, s.hidden};
    w.up = {kernels::WeightType::bf16, c.up[e].data(), s.inter, s.hidden};
    w.down = {kernels::WeightType::bf16, c.down[e].data(), s.hidden, s.inter};
  }
  c.batch.layer = 0;
  c.batch.hidden_size = s.hidden;
  c.batch.top_k = s.top_k;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  c.batch.rows.resize(s.n * s.hidden);
  for (float& v : c.batch.rows) v = normal(rng);
  c.batch.seq_ids.assign(s.n, 0);
  c.batch.positions.assign(s.n, 0);
  random_routing(s, rng, c.batch.experts, c.batch.weights);

  ModelConfig cfg;
  cfg.num_experts = s.num_experts;
  cfg.hidden_size = s.hidden;
  cfg.expert_intermediate = s.inter;
  cfg.top_k = s.top_k;
  ExpertStage cpu(cfg, c.cpu_weights);
  c.want.assign(s.n * s.hidden, NAN);
  cpu.run(c.batch, c.want.data());
  return c;
}

// The output is complete, close to the CPU's, and exactly zero on rows with no held expert.
inline void expect_matches(const StageShape& s, const Case& c, const std::vector<float>& got,
                           const char* run) {
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_FALSE(std::isnan(got[i])) << "output " << i << " not written (" << run << ")";
  // bf16 rows, gate_up and activations on the GPU (fp32 on the CPU), bf16 weights on both:
  // a few 1e-3 expected.
  EXPECT_LT(test_support::relative_error(got, c.want), 1e-2) << run;
  for (int64_t r = 0; r < s.n; ++r) {
    bool any = false;
    for (int64_t j = 0; j < s.top_k; ++j)
      any |= !c.cpu_weights.experts[0][c.batch.experts[r * s.top_k + j]].empty();
    if (any) continue;
    for (int64_t col = 0; col < s.hidden; ++col) {
      ASSERT_EQ(got[r * s.hidden + col], 0.0f) << "row " << r << " (" << run << ")";
    }
  }
}

}  // namespace moeflow::test_support
