// ExpertShard on either device: a shard asked for a GPU this process lacks is refused naming the
// device (everywhere); on a GPU machine a cuda:0 shard computes what the CPU shard computes, and
// reports the same per-expert work and the bf16 bytes it reads.
#include "model/expert_shard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "tests/support/golden.h"

namespace moeflow {
namespace {

bool even(int64_t, int64_t e) {
  return e % 2 == 0;
}

TEST(ExpertShard, MissingGpuIsRefusedNamingTheDevice) {
  const int missing = kernels::cuda::device_count().count;  // one past the last GPU
  try {
    ExpertShard::load(test_support::golden_dir("mixtral"), "bf16", even, {}, missing);
    FAIL() << "cuda:" << missing << " accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no CUDA device cuda:" + std::to_string(missing)), std::string::npos)
        << what;
  }
}

TEST(ExpertShard, CpuShardNamesItsDevice) {
  const auto shard = ExpertShard::load(test_support::golden_dir("mixtral"), "bf16", even, {});
  EXPECT_EQ(shard->cuda_device(), -1);
  EXPECT_EQ(shard->device_name(), "cpu");
}

TEST(ExpertShard, GpuShardComputesWhatTheCpuShardComputes) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count == 0) GTEST_SKIP() << "no CUDA device (" << devices.error << ")";
  const auto dir = test_support::golden_dir("mixtral");
  const auto cpu = ExpertShard::load(dir, "bf16", even, {});
  const auto gpu = ExpertShard::load(dir, "bf16", even, {}, 0);
  EXPECT_EQ(gpu->device_name(), "cuda:0");
  EXPECT_EQ(gpu->expert_count(), cpu->expert_count());
  const ModelConfig& cfg = cpu->config();
  // The GPU shard let its host weights go after the upload; it still knows what it holds.
  for (int64_t layer = 0; layer < cfg.num_layers; ++layer)
    for (int64_t e = 0; e < cfg.num_experts; ++e)
      EXPECT_EQ(gpu->holds(layer, e), cpu->holds(layer, e)) << layer << " " << e;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int32_t> expert(0, static_cast<int32_t>(cfg.num_experts) - 1);
  for (int64_t layer = 0; layer < cfg.num_layers; ++layer) {
    if (!cfg.layer_is_moe[layer]) continue;
    for (const int64_t n : {int64_t{1}, int64_t{29}}) {
      TokenBatch b;
      b.layer = layer;
      b.hidden_size = cfg.hidden_size;
      b.top_k = cfg.top_k;
      b.rows.resize(n * cfg.hidden_size);
      for (float& x : b.rows) x = normal(rng);
      for (int64_t s = 0; s < n * cfg.top_k; ++s) {
        b.experts.push_back(expert(rng));
        b.weights.push_back(0.1f + 0.9f * std::abs(normal(rng)));
      }
      std::vector<float> want(n * cfg.hidden_size),
          got(n * cfg.hidden_size, std::numeric_limits<float>::quiet_NaN());
      const int64_t want_pairs = cpu->run(b, want.data());
      EXPECT_EQ(gpu->run(b, got.data()), want_pairs);
      double diff = 0, norm = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_FALSE(std::isnan(got[i])) << "element " << i << " not written";
        diff += (got[i] - want[i]) * (got[i] - want[i]);
        norm += want[i] * want[i];
      }
      EXPECT_LT(std::sqrt(diff / std::max(norm, 1e-30)), 1e-2) << "layer " << layer << " n " << n;
      ASSERT_EQ(gpu->last_work().size(), cpu->last_work().size());
      for (size_t i = 0; i < cpu->last_work().size(); ++i) {
        EXPECT_EQ(gpu->last_work()[i].expert, cpu->last_work()[i].expert);
        EXPECT_EQ(gpu->last_work()[i].pairs, cpu->last_work()[i].pairs);
      }
      // bf16 weights on both: the same bytes read.
      EXPECT_EQ(gpu->bytes_touched(b), cpu->bytes_touched(b));
    }
  }
}

}  // namespace
}  // namespace moeflow
