// GpuExpertStage against ExpertStage on the golden checkpoints (real Hugging Face layouts: w1/w3/w2
// and gate_proj/up_proj/down_proj), bf16 weights, a subset of experts held, fresh random batches
// per MoE layer with outputs poisoned. The GPU comparison skips without a CUDA device; the
// refusal of a missing device runs everywhere.
#include "model/gpu_expert_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "model/checkpoint.h"
#include "model/expert_stage.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

TEST(GpuExpertStage, MissingDeviceIsRefusedWithTheReason) {
  const ModelConfig cfg = load_model_config(test_support::golden_dir("mixtral"));
  const ExpertWeights none;
  const int missing = kernels::cuda::device_count().count;  // one past the last GPU
  try {
    GpuExpertStage stage(cfg, none, missing);
    FAIL() << "cuda:" << missing << " accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no CUDA device cuda:" + std::to_string(missing)), std::string::npos)
        << what;
  }
}

TEST(GpuExpertStage, MatchesTheCpuStageOnGoldenCheckpoints) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count == 0) GTEST_SKIP() << "no CUDA device (" << devices.error << ")";
  std::mt19937 rng(std::random_device{}());
  for (const char* family : {"mixtral", "deepseek"}) {
    SCOPED_TRACE(family);
    const auto dir = test_support::golden_dir(family);
    const ModelConfig cfg = load_model_config(dir);
    const Checkpoint ckpt = Checkpoint::open(dir);
    WeightStore store;
    // Every other expert: rows whose choices are all elsewhere must come back as zeros.
    const ExpertWeights weights = load_expert_weights(
        ckpt, cfg, ComputeType::bf16, store, [](int64_t, int64_t e) { return e % 2 == 0; });
    ExpertStage cpu(cfg, weights);
    GpuExpertStage gpu(cfg, weights, 0);
    for (int64_t layer = 0; layer < cfg.num_layers; ++layer) {
      if (!cfg.layer_is_moe[layer]) continue;
      for (const int64_t n : {int64_t{1}, int64_t{37}, int64_t{300}}) {
        TokenBatch b;
        b.layer = layer;
        b.hidden_size = cfg.hidden_size;
        b.top_k = cfg.top_k;
        std::normal_distribution<float> normal(0.0f, 1.0f);
        b.rows.resize(n * cfg.hidden_size);
        for (float& v : b.rows) v = normal(rng);
        b.seq_ids.assign(n, 0);
        b.positions.assign(n, 0);
        std::vector<int32_t> ids(cfg.num_experts);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t e = 0; e < cfg.num_experts; ++e) ids[e] = static_cast<int32_t>(e);
          std::shuffle(ids.begin(), ids.end(), rng);
          for (int64_t j = 0; j < cfg.top_k; ++j) {
            b.experts.push_back(ids[j]);
            b.weights.push_back(std::uniform_real_distribution<float>(0.05f, 1.0f)(rng));
          }
        }
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> want(n * cfg.hidden_size, nan), got(n * cfg.hidden_size, nan);
        const int64_t cpu_pairs = cpu.run(b, want.data());
        EXPECT_EQ(gpu.run(b, got.data()), cpu_pairs);
        double diff = 0.0, norm = 0.0;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_FALSE(std::isnan(got[i])) << "layer " << layer << " n " << n << " at " << i;
          diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
          norm += double(want[i]) * want[i];
        }
        EXPECT_LT(std::sqrt(diff / std::max(norm, 1e-30)), 1e-2) << "layer " << layer << " n " << n;
      }
    }
  }
}

}  // namespace
}  // namespace moeflow
