// GpuRouterStage and GpuKvCache against RouterStage and KvCache. The golden checkpoints of the four
// families (real Hugging Face layouts: qkv biases and a gated shared expert in qwen2_moe, q/k norm
// in olmoe, a dense first layer and shared experts in deepseek) run side by side through a prefill
// of three sequences of different lengths and several decode steps (the last under an elastic
// expert budget), both fed the same routed expert outputs (the CPU ExpertStage on the CPU batch).
// Each run draws fresh random tokens; host outputs are poisoned with NaN before each call. The GPU
// comparisons skip without a CUDA device; the refusal of a missing device runs everywhere.
#include "model/gpu_router_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "model/checkpoint.h"
#include "model/expert_stage.h"
#include "model/gpu_kv_cache.h"
#include "model/kv_cache.h"
#include "model/router_stage.h"
#include "model/sampler.h"
#include "tests/support/golden.h"
#include "tests/support/relative_error.h"

#if MOEFLOW_HAVE_CUDA
#include "tests/kernels/cuda_test_util.h"
#endif

namespace moeflow {
namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

#define SKIP_WITHOUT_CUDA_DEVICE()                                                        \
  do {                                                                                    \
    const kernels::cuda::DeviceCount devices_ = kernels::cuda::device_count();            \
    if (devices_.count == 0) GTEST_SKIP() << "no CUDA device (" << devices_.error << ")"; \
  } while (0)

TEST(GpuRouterStage, MissingDeviceIsRefusedWithTheReason) {
  const ModelConfig cfg = load_model_config(test_support::golden_dir("mixtral"));
  const RouterWeights none;
  const int missing = kernels::cuda::device_count().count;  // one past the last GPU
  for (const std::string who : {"GPU router stage", "GPU kv cache"}) {
    try {
      if (who == "GPU router stage")
        GpuRouterStage stage(cfg, none, missing);
      else
        GpuKvCache cache(cfg.num_layers, cfg.num_kv_heads * cfg.head_dim, missing);
      FAIL() << who << " accepted cuda:" << missing;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(who + ": no CUDA device cuda:" + std::to_string(missing)),
                std::string::npos)
          << what;
    }
  }
}

using test_support::relative_error;

// Both stages, their caches and the CPU experts for one golden family.
struct SideBySide {
  ModelConfig cfg;
  Checkpoint ckpt;
  WeightStore store;
  RouterWeights rw;
  ExpertWeights ew;
  std::unique_ptr<RouterStage> cpu;
  std::unique_ptr<ExpertStage> experts;
  std::unique_ptr<KvCache> cpu_cache;
  std::unique_ptr<GpuRouterStage> gpu;
  std::unique_ptr<GpuKvCache> gpu_cache;

  explicit SideBySide(const std::string& family)
      : cfg(load_model_config(test_support::golden_dir(family))),
        ckpt(Checkpoint::open(test_support::golden_dir(family))) {
    // bf16 on both sides, so the CPU reads the numbers the GPU was given.
    rw = load_router_weights(ckpt, cfg, ComputeType::bf16, store);
    ew = load_expert_weights(ckpt, cfg, ComputeType::bf16, store);
    const int64_t kv_dim = cfg.num_kv_heads * cfg.head_dim;
    cpu = std::make_unique<RouterStage>(cfg, rw);
    experts = std::make_unique<ExpertStage>(cfg, ew);
    cpu_cache = std::make_unique<KvCache>(cfg.num_layers, kv_dim);
    gpu = std::make_unique<GpuRouterStage>(cfg, rw, 0);
    gpu_cache = std::make_unique<GpuKvCache>(cfg.num_layers, kv_dim, 0);
  }

  // CPU gate logits of one batch row (the router gate is fp32 on both sides).
  std::vector<float> gate_logits(int64_t layer, const float* row) const {
    const int64_t d = cfg.hidden_size;
    std::vector<float> out(cfg.num_experts);
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      double s = 0.0;
      for (int64_t i = 0; i < d; ++i) s += double(row[i]) * rw.layers[layer].router_gate[e * d + i];
      out[e] = static_cast<float>(s);
    }
    return out;
  }

  // One forward step of both; `next` gets the CPU's greedy next token per sequence.
  void step(const StepLayout& layout, const std::vector<int32_t>& tokens,
            const ExpertBudget& budget, const std::string& name, std::vector<int32_t>& next) {
    SCOPED_TRACE(name);
    const int64_t n = layout.rows(), d = cfg.hidden_size;
    std::vector<float> hc(n * d, kNan), hg(n * d, kNan);
    cpu->embed(tokens.data(), n, hc.data());
    gpu->embed(tokens.data(), n, hg.data());
    EXPECT_EQ(relative_error(hg, hc), 0.0) << "embedding (both read bf16 rows)";
    for (int64_t l = 0; l < cfg.num_layers; ++l) {
      SCOPED_TRACE("layer " + std::to_string(l));
      const TokenBatch bc = cpu->attend_and_route(l, layout, hc.data(), *cpu_cache, budget);
      const TokenBatch bg = gpu->attend_and_route(l, layout, hg.data(), *gpu_cache, budget);
      const double e_attn = relative_error(hg, hc);
      EXPECT_LT(e_attn, 2e-2) << "hidden after attention" << (cfg.layer_is_moe[l] ? "" : " + mlp");
      ASSERT_EQ(bg.size(), bc.size());
      ASSERT_EQ(bg.top_k, bc.top_k);
      if (!cfg.layer_is_moe[l]) continue;
      EXPECT_EQ(bg.seq_ids, bc.seq_ids);
      EXPECT_EQ(bg.positions, bc.positions);
      EXPECT_LT(relative_error(bg.rows, bc.rows), 2e-2) << "expert rows";
      int64_t swaps = 0;
      for (int64_t r = 0; r < n; ++r) {
        const std::vector<float> logits = gate_logits(l, bc.row(r));
        for (int64_t j = 0; j < bc.top_k; ++j) {
          const int32_t ec = bc.experts[r * bc.top_k + j], eg = bg.experts[r * bc.top_k + j];
          if (ec == eg) {
            EXPECT_NEAR(bg.weights[r * bc.top_k + j], bc.weights[r * bc.top_k + j], 2e-2)
                << "row " << r << " choice " << j;
            continue;
          }
          // A different choice is allowed only where the CPU's logits nearly tie: the GPU's rows
          // went through bf16 GEMMs and differ by ~1e-2 relative.
          ++swaps;
          ASSERT_GE(eg, 0);
          ASSERT_LT(eg, cfg.num_experts);
          EXPECT_LT(std::fabs(logits[ec] - logits[eg]), 5e-2)
              << "row " << r << " choice " << j << ": cpu expert " << ec << " (" << logits[ec]
              << "), gpu expert " << eg << " (" << logits[eg] << ")";
        }
      }
      EXPECT_LE(swaps, std::max<int64_t>(1, n * bc.top_k / 10)) << "near-ties ordered differently";
      // The same routed outputs into both (computed from the CPU batch).
      std::vector<float> routed(n * d, kNan);
      experts->run(bc, routed.data());
      cpu->combine(bc, routed.data(), hc.data());
      gpu->combine(bg, routed.data(), hg.data());
      EXPECT_LT(relative_error(hg, hc), 2e-2) << "hidden after combine";
    }
    std::vector<int64_t> last;
    for (const StepSequence& s : layout.sequences) last.push_back(s.first_row + s.count - 1);
    const int64_t vocab = cfg.vocab_size, m = static_cast<int64_t>(last.size());
    std::vector<float> lc(m * vocab, kNan), lg(m * vocab, kNan);
    cpu->logits(hc.data(), last, lc.data());
    gpu->logits(hg.data(), last, lg.data());
    EXPECT_LT(relative_error(lg, lc), 2e-2) << "logits";
    next.clear();
    for (int64_t i = 0; i < m; ++i) {
      const float* c = lc.data() + i * vocab;
      const int64_t best = argmax(c, vocab);
      float second = -INFINITY, spread = 0.0f;
      for (int64_t t = 0; t < vocab; ++t) {
        if (t != best) second = std::max(second, c[t]);
        spread = std::max(spread, std::fabs(c[t]));
      }
      if (c[best] - second > 2e-2f * std::max(spread, 1.0f)) {  // a clear greedy choice
        EXPECT_EQ(argmax(lg.data() + i * vocab, vocab), best) << "sequence " << i;
      }
      next.push_back(static_cast<int32_t>(best));
    }
    for (const StepSequence& s : layout.sequences) {
      cpu_cache->commit(s.seq_id, s.count);
      gpu_cache->commit(s.seq_id, s.count);
      EXPECT_EQ(gpu_cache->length(s.seq_id), cpu_cache->length(s.seq_id));
    }
    EXPECT_EQ(gpu_cache->bytes(), cpu_cache->bytes());
  }
};

// Sequences `ids` with `counts` new tokens each, after what `cache` holds.
StepLayout layout_for(const std::vector<uint64_t>& ids, const std::vector<int64_t>& counts,
                      const KvCache& cache) {
  StepLayout l;
  int64_t row = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t first = cache.length(ids[i]);
    l.sequences.push_back({ids[i], row, counts[i], first});
    for (int64_t j = 0; j < counts[i]; ++j) {
      l.row_seq_ids.push_back(ids[i]);
      l.positions.push_back(static_cast<int32_t>(first + j));
    }
    row += counts[i];
  }
  return l;
}

TEST(GpuRouterStage, MatchesTheCpuStageOnGoldenCheckpoints) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  for (const char* family : {"mixtral", "qwen2_moe", "olmoe", "deepseek"}) {
    SCOPED_TRACE(family);
    SideBySide s(family);
    const std::vector<uint64_t> ids = {11, 22, 33};
    const std::vector<int64_t> prompt = {5, 1, 9};  // ragged, one a single token
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(s.cfg.vocab_size - 1));
    std::vector<int32_t> tokens;
    for (const int64_t c : prompt)
      for (int64_t j = 0; j < c; ++j) tokens.push_back(token(rng));
    std::vector<int32_t> next;
    s.step(layout_for(ids, prompt, *s.cpu_cache), tokens, {}, "prefill", next);
    for (int decode = 0; decode < 4; ++decode) {
      const std::vector<int32_t> in = next;
      s.step(layout_for(ids, {1, 1, 1}, *s.cpu_cache), in, {}, "decode " + std::to_string(decode),
             next);
    }
    // An elastic budget: top-1 among the even experts (the allowed mask on the device).
    ExpertBudget budget;
    budget.top_k = 1;
    budget.resident.resize(s.cfg.num_layers);
    for (auto& layer : budget.resident)
      for (int32_t e = 0; e < s.cfg.num_experts; e += 2) layer.push_back(e);
    validate(budget, s.cfg);
    const std::vector<int32_t> in = next;
    s.step(layout_for(ids, {1, 1, 1}, *s.cpu_cache), in, budget, "decode under a budget", next);
    // A sequence released and started again reuses nothing stale.
    s.cpu_cache->release(22);
    s.gpu_cache->release(22);
    EXPECT_FALSE(s.gpu_cache->contains(22));
    s.step(layout_for({22}, {3}, *s.cpu_cache), {next[0], next[1], next[2]}, {}, "restart", next);
  }
}

TEST(GpuRouterStage, RefusesBadArguments) {
  SKIP_WITHOUT_CUDA_DEVICE();
  SideBySide s("mixtral");
  std::vector<float> hidden(s.cfg.hidden_size, 0.5f);
  const int32_t bad = static_cast<int32_t>(s.cfg.vocab_size);
  EXPECT_THROW(s.gpu->embed(&bad, 1, hidden.data()), Error);
  StepLayout one = layout_for({1}, {1}, *s.cpu_cache);
  EXPECT_THROW(s.gpu->attend_and_route(s.cfg.num_layers, one, hidden.data(), *s.gpu_cache), Error);
  GpuKvCache narrow(s.cfg.num_layers, 8, 0);
  try {
    s.gpu->attend_and_route(0, one, hidden.data(), narrow);
    FAIL() << "a kv cache of width 8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("width 8"), std::string::npos) << e.what();
  }
  StepLayout gap = one;
  gap.positions.push_back(1);
  gap.row_seq_ids.push_back(1);
  EXPECT_THROW(s.gpu->attend_and_route(0, gap, hidden.data(), *s.gpu_cache), Error);
  EXPECT_EQ(s.gpu_cache->sequence_count(), 0u);  // refused before any append
  EXPECT_GT(s.gpu->bytes_per_step(), 0);
  EXPECT_GE(s.gpu->weight_bytes(), s.gpu->bytes_per_step());
}

#if MOEFLOW_HAVE_CUDA

TEST(GpuKvCache, MatchesKvCacheThroughGrowthTruncateAndRelease) {
  SKIP_WITHOUT_CUDA_DEVICE();
  constexpr int64_t kLayers = 2, kKvDim = 24;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  KvCache cpu(kLayers, kKvDim);
  GpuKvCache gpu(kLayers, kKvDim, 0);
  // Rows held per (sequence, layer), to know how much to read back.
  std::map<std::pair<uint64_t, int64_t>, int64_t> held;
  auto append = [&](uint64_t seq, int64_t n) {
    for (int64_t l = 0; l < kLayers; ++l) {
      std::vector<float> k(n * kKvDim), v(n * kKvDim);
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      test_support::DeviceArray<float> dk(k), dv(v);
      EXPECT_EQ(gpu.append(seq, l, dk.get(), dv.get(), n, nullptr),
                cpu.append(seq, l, k.data(), v.data(), n));
      test_support::cuda_ok(cudaDeviceSynchronize(), "append");
      held[{seq, l}] += n;
    }
  };
  auto expect_same = [&](const std::string& when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(gpu.sequence_count(), cpu.sequence_count());
    EXPECT_EQ(gpu.bytes(), cpu.bytes());
    EXPECT_GE(gpu.allocated_bytes(), gpu.bytes());
    for (const auto& [key, rows] : held) {
      const auto [seq, layer] = key;
      EXPECT_EQ(gpu.contains(seq), cpu.contains(seq));
      if (!cpu.contains(seq)) continue;
      EXPECT_EQ(gpu.length(seq), cpu.length(seq));
      for (const bool keys : {true, false}) {
        std::vector<float> got(rows * kKvDim, kNan);
        if (rows > 0)
          test_support::cuda_ok(
              cudaMemcpy(got.data(), keys ? gpu.keys(seq, layer) : gpu.values(seq, layer),
                         got.size() * sizeof(float), cudaMemcpyDeviceToHost),
              "read back");
        const float* want = keys ? cpu.keys(seq, layer) : cpu.values(seq, layer);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << "sequence " << seq << " layer " << layer
                                     << (keys ? " keys" : " values") << " at " << i;
      }
    }
  };
  append(1, 7);  // prefill, within the first 16 rows
  gpu.commit(1, 7);
  cpu.commit(1, 7);
  append(2, 3);
  gpu.commit(2, 3);
  cpu.commit(2, 3);
  for (int i = 0; i < 30; ++i) {  // decode past two doublings (16 -> 32 -> 64)
    append(1, 1);
    gpu.commit(1, 1);
    cpu.commit(1, 1);
  }
  expect_same("after growth");
  append(1, 4);  // a failed step: appended, never committed
  gpu.truncate(1, gpu.length(1));
  cpu.truncate(1, cpu.length(1));
  for (int64_t l = 0; l < kLayers; ++l) held[{1, l}] = cpu.length(1);
  expect_same("after a rollback");
  gpu.truncate(1, 20);
  cpu.truncate(1, 20);
  for (int64_t l = 0; l < kLayers; ++l) held[{1, l}] = 20;
  expect_same("after truncate");
  append(1, 5);  // writes over the dropped rows
  gpu.commit(1, 5);
  cpu.commit(1, 5);
  expect_same("after appending past a truncate");
  gpu.release(2);
  cpu.release(2);
  expect_same("after release");
  EXPECT_THROW(gpu.keys(2, 0), Error);
  append(2, 2);  // the released sequence starts again from nothing
  gpu.commit(2, 2);
  cpu.commit(2, 2);
  for (int64_t l = 0; l < kLayers; ++l) held[{2, l}] = 2;
  expect_same("after restarting a released sequence");
  EXPECT_THROW(gpu.append(1, kLayers, nullptr, nullptr, 1, nullptr), Error);
}

#endif

}  // namespace
}  // namespace moeflow
