// GpuExpertStage against ExpertStage on the golden checkpoints (real Hugging Face layouts: w1/w3/w2
// and gate_proj/up_proj/down_proj), bf16 weights, a subset of experts held, fresh random batches
// per MoE layer with outputs poisoned; run_device_routed (routing already on the device: the
// small-batch path up to 64 pairs, the cuBLAS path beyond; run() likewise) against run() on the
// same batches, with its per-expert pairs counted on the device. The GPU comparisons skip
// without a CUDA device; the refusal of a missing device runs everywhere.
#include "model/gpu_expert_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/expert_plan.h"
#include "model/checkpoint.h"
#include "model/expert_stage.h"
#include "tests/support/golden.h"

#if MOEFLOW_HAVE_CUDA
#include "tests/kernels/cuda_test_util.h"
#endif

namespace moeflow {
namespace {

// A random batch of n rows for `layer`: top-k distinct experts per row, weights in [0.05, 1).
TokenBatch random_batch(const ModelConfig& cfg, int64_t layer, int64_t n, std::mt19937& rng) {
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
  return b;
}

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
        const TokenBatch b = random_batch(cfg, layer, n, rng);
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

#if MOEFLOW_HAVE_CUDA

// The routing the GPU router stage would hand over, uploaded from a host batch, and a poisoned
// output; run on a stream of the test's own, so the events must order the work.
TEST(GpuExpertStage, DeviceRoutedRunMatchesTheHostRun) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  using test_support::DeviceArray;
  std::mt19937 rng(std::random_device{}());
  cudaStream_t producer = nullptr;
  test_support::cuda_ok(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), "stream");
  for (const char* family : {"mixtral", "deepseek"}) {
    SCOPED_TRACE(family);
    const auto dir = test_support::golden_dir(family);
    const ModelConfig cfg = load_model_config(dir);
    const Checkpoint ckpt = Checkpoint::open(dir);
    WeightStore store;
    // Every other expert held; deepseek's dense first layer holds none (zeros come back).
    const ExpertWeights weights = load_expert_weights(
        ckpt, cfg, ComputeType::bf16, store, [](int64_t, int64_t e) { return e % 2 == 0; });
    ExpertStage cpu(cfg, weights);
    GpuExpertStage gpu(cfg, weights, 0);
    for (int64_t layer = 0; layer < cfg.num_layers; ++layer) {
      // 1 and 32 rows (top-2: 2 and 64 pairs, the limit) take the small-batch path; 33, 37
      // and 300 the cuBLAS path.
      for (const int64_t n : {int64_t{1}, int64_t{32}, int64_t{33}, int64_t{37}, int64_t{300}}) {
        SCOPED_TRACE("layer " + std::to_string(layer) + ", " + std::to_string(n) + " rows");
        const TokenBatch b = random_batch(cfg, layer, n, rng);
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> want(n * cfg.hidden_size, nan), host(n * cfg.hidden_size, nan);
        const int64_t cpu_pairs = cpu.run(b, want.data());
        const int64_t host_pairs = gpu.run(b, host.data());
        EXPECT_EQ(host_pairs, cpu_pairs);
        DeviceArray<float> rows(b.rows), routing_weights(b.weights);
        DeviceArray<int32_t> experts(b.experts);
        DeviceArray<float> out(n * cfg.hidden_size);
        out.poison();
        std::vector<int32_t> want_per_expert(cfg.num_experts, 0);
        want_per_expert[0] = 7;  // added to, not overwritten
        DeviceArray<int32_t> per_expert(want_per_expert);
        test_support::cuda_ok(cudaDeviceSynchronize(), "uploads");
        const DeviceRouting routing{
            layer, n, b.top_k, rows.get(), experts.get(), routing_weights.get()};
        const GpuExpertStage::DevicePath path =
            gpu.run_device_routed(routing, out.get(), producer, per_expert.get());
        // Only the producer's stream is waited for: the events must have ordered the experts
        // (and on the small-batch path nothing waited for anything before this).
        test_support::cuda_ok(cudaStreamSynchronize(producer), "producer stream");
        std::vector<float> got(n * cfg.hidden_size, nan);
        std::vector<int32_t> got_per_expert(cfg.num_experts, -1);
        test_support::cuda_ok(
            cudaMemcpy(got.data(), out.get(), got.size() * sizeof(float), cudaMemcpyDeviceToHost),
            "download");
        test_support::cuda_ok(
            cudaMemcpy(got_per_expert.data(), per_expert.get(),
                       got_per_expert.size() * sizeof(int32_t), cudaMemcpyDeviceToHost),
            "download per-expert pairs");
        const bool small = kernels::cuda::expert_stage_takes_small_batch(n, b.top_k);
        // A layer holding nothing here (deepseek's dense first layer) writes zeros, no kernels.
        if (path != GpuExpertStage::DevicePath::nothing_held) {
          EXPECT_EQ(path == GpuExpertStage::DevicePath::small_batch, small);
        }
        for (int32_t e : b.experts)
          if (gpu.holds(layer, e)) ++want_per_expert[e];
        EXPECT_EQ(got_per_expert, want_per_expert);
        int64_t pairs = -7;
        for (int32_t p : got_per_expert) pairs += p;
        EXPECT_EQ(pairs, cpu_pairs);
        // run() takes the same path at the same size (it copies the expert ids in for the
        // small-batch kernels, groups on the host for cuBLAS): the same kernels and shapes, only
        // the order of pairs within a slot may differ on the cuBLAS path. (The small-batch path
        // against the cuBLAS path is tests/kernels/cuda_expert_small_batch_test.cpp's.)
        const double e_host = test_support::relative_error(got, host);
        const double e_cpu = test_support::relative_error(got, want);
        EXPECT_LT(e_host, 1e-5) << "device routed vs host routed";
        EXPECT_LT(e_cpu, 1e-2) << "device routed vs CPU";
        std::printf("%s layer %lld n %lld (%s): |dev-host|/|host| %.2e, |dev-cpu|/|cpu| %.2e\n",
                    family, static_cast<long long>(layer), static_cast<long long>(n),
                    small ? "small batch" : "cuBLAS", e_host, e_cpu);
      }
    }
    // Routing it cannot run is refused before any device work, naming the stage.
    DeviceArray<float> out(cfg.hidden_size);
    const float* any = out.get();
    try {
      gpu.run_device_routed({cfg.num_layers, 1, cfg.top_k, any, nullptr, any}, out.get(), producer);
      FAIL() << "routing of a layer past the model accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("GPU expert stage on cuda:0: routing of layer"),
                std::string::npos)
          << e.what();
    }
  }
  cudaStreamDestroy(producer);
}

#endif

}  // namespace
}  // namespace moeflow
