// The GPU expert stage (kernels/cuda/expert_stage.h) against the CPU expert stage
// (model/expert_stage.h) with the same bf16 weights, on fresh random inputs: one row, ragged
// expert groups (experts with no rows, one with several tiles), experts not held here, shapes
// that are not multiples of the tile sizes, several hundred rows. Outputs and workspace are
// poisoned (NaN) before each run. Skips without a CUDA device.
#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/expert_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/convert.h"
#include "model/expert_stage.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow {
namespace {

using test_support::DeviceArray;

// bf16 bits of random normal values with standard deviation `scale`.
std::vector<uint16_t> random_bf16(size_t n, float scale, std::mt19937& rng) {
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

struct Layer {
  std::vector<std::vector<uint16_t>> gate, up, down;  // per expert, empty when not held
};

// Random routing: k distinct experts per row, mostly among the hot ones, weights in (0.05, 1).
void random_routing(const StageShape& s, std::mt19937& rng, std::vector<int32_t>& experts,
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

void check_stage(const StageShape& s, std::mt19937& rng) {
  SCOPED_TRACE("n=" + std::to_string(s.n) + " experts=" + std::to_string(s.num_experts) +
               " k=" + std::to_string(s.top_k) + " hidden=" + std::to_string(s.hidden) +
               " inter=" + std::to_string(s.inter) + " held=" + std::to_string(s.held));
  // Weights scaled like a trained layer's (outputs of order one).
  Layer layer;
  layer.gate.resize(s.num_experts);
  layer.up.resize(s.num_experts);
  layer.down.resize(s.num_experts);
  std::vector<kernels::cuda::HostExpert> held;
  ExpertWeights cpu_weights;
  cpu_weights.experts.assign(1, std::vector<MlpWeights>(s.num_experts));
  const int64_t stride = s.num_experts / s.held;
  for (int64_t e = 0; e < s.num_experts; e += stride) {
    if (static_cast<int64_t>(held.size()) == s.held) break;
    layer.gate[e] = random_bf16(s.inter * s.hidden, 1.0f / std::sqrt(float(s.hidden)), rng);
    layer.up[e] = random_bf16(s.inter * s.hidden, 1.0f / std::sqrt(float(s.hidden)), rng);
    layer.down[e] = random_bf16(s.hidden * s.inter, 1.0f / std::sqrt(float(s.inter)), rng);
    held.push_back(
        {static_cast<int32_t>(e), layer.gate[e].data(), layer.up[e].data(), layer.down[e].data()});
    MlpWeights& w = cpu_weights.experts[0][e];
    w.gate = {kernels::WeightType::bf16, layer.gate[e].data(), s.inter, s.hidden};
    w.up = {kernels::WeightType::bf16, layer.up[e].data(), s.inter, s.hidden};
    w.down = {kernels::WeightType::bf16, layer.down[e].data(), s.hidden, s.inter};
  }

  TokenBatch batch;
  batch.layer = 0;
  batch.hidden_size = s.hidden;
  batch.top_k = s.top_k;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  batch.rows.resize(s.n * s.hidden);
  for (float& v : batch.rows) v = normal(rng);
  batch.seq_ids.assign(s.n, 0);
  batch.positions.assign(s.n, 0);
  random_routing(s, rng, batch.experts, batch.weights);

  ModelConfig cfg;
  cfg.num_experts = s.num_experts;
  cfg.hidden_size = s.hidden;
  cfg.expert_intermediate = s.inter;
  cfg.top_k = s.top_k;
  ExpertStage cpu(cfg, cpu_weights);
  std::vector<float> want(s.n * s.hidden, NAN);
  cpu.run(batch, want.data());

  kernels::cuda::ExpertLayer gpu_layer(s.num_experts, s.hidden, s.inter, held);
  const kernels::cuda::ExpertLayerView& view = gpu_layer.view();
  DeviceArray<float> x(batch.rows);
  DeviceArray<int32_t> experts(batch.experts);
  DeviceArray<float> weights(batch.weights);
  DeviceArray<float> out(s.n * s.hidden);
  const size_t bytes = kernels::cuda::expert_stage_workspace_bytes(view, s.n, s.top_k);
  DeviceArray<unsigned char> workspace(bytes);
  // Twice, poisoned each time: the second run must not live off the first one's leftovers.
  for (int run = 0; run < 2; ++run) {
    out.poison();
    workspace.poison();
    kernels::cuda::expert_stage(view, x.get(), s.n, s.top_k, experts.get(), weights.get(),
                                out.get(), workspace.get(), bytes, nullptr);
    const std::vector<float> got = out.download();
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_FALSE(std::isnan(got[i])) << "output " << i << " not written (run " << run << ")";
    // bf16 activations on the GPU (fp32 on the CPU) and bf16 weights on both: ~3e-3 expected.
    const double err = test_support::relative_error(got, want);
    EXPECT_LT(err, 1e-2) << "run " << run;
    // Rows none of whose experts are held here are exactly zero on both.
    for (int64_t r = 0; r < s.n; ++r) {
      bool any = false;
      for (int64_t j = 0; j < s.top_k; ++j)
        any |= !cpu_weights.experts[0][batch.experts[r * s.top_k + j]].empty();
      if (any) continue;
      for (int64_t c = 0; c < s.hidden; ++c) {
        ASSERT_EQ(got[r * s.hidden + c], 0.0f) << r;
      }
    }
  }
}

TEST(CudaExpertStage, MatchesTheCpuExpertStage) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const StageShape shapes[] = {
      {1, 8, 2, 64, 128, 8, 8},        // one row
      {7, 8, 2, 64, 128, 8, 8},        // fewer rows than a tile
      {37, 16, 4, 96, 200, 8, 16},     // half the experts held; shapes off the tile grid
      {300, 8, 2, 256, 512, 8, 3},     // ragged: 3 hot experts (several tiles), 5 with none
      {513, 64, 6, 128, 160, 64, 64},  // DeepSeek-like fine-grained experts
      {129, 32, 4, 72, 40, 4, 32},     // few held: many rows with no held expert
  };
  for (const StageShape& s : shapes) check_stage(s, rng);
}

TEST(CudaExpertStage, GroupingMatchesTheHostReference) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const int64_t num_experts = 16, held = 10, pairs = 1000;
  std::vector<int32_t> slot_of(num_experts, -1);
  std::vector<kernels::cuda::HostExpert> host;
  const std::vector<uint16_t> w(8 * 8, 0x3f80);  // weights play no part in the grouping
  for (int32_t e = 0; e < held; ++e) {
    slot_of[e] = e;
    host.push_back({e, w.data(), w.data(), w.data()});
  }
  kernels::cuda::ExpertLayer layer(num_experts, 8, 8, host);
  std::vector<int32_t> ids(pairs);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % 20) - 2;  // some out of range
  const kernels::cuda::ExpertGrouping want =
      kernels::cuda::group_pairs(ids.data(), pairs, slot_of.data(), num_experts, held);

  const kernels::cuda::ExpertWorkspaceLayout l =
      kernels::cuda::expert_workspace_layout(pairs, held, 8, 8);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<unsigned char> workspace(l.bytes);
  workspace.poison();
  kernels::cuda::expert_group(layer.view(), pairs, d_ids.get(), workspace.get(), l.bytes, nullptr);
  const std::vector<unsigned char> bytes = workspace.download();
  auto ints = [&](size_t offset, size_t count) {
    const auto* p = reinterpret_cast<const int32_t*>(bytes.data() + offset);
    return std::vector<int32_t>(p, p + count);
  };
  EXPECT_EQ(ints(l.counts, held), want.counts);
  EXPECT_EQ(ints(l.offsets, held + 1), want.offsets);
  EXPECT_EQ(ints(l.tile_offsets, held + 1), want.tile_offsets);
  EXPECT_EQ(ints(l.pair_slot, pairs), want.pair_slot);
  // Order within a slot is free; each held pair has one position in its slot's range.
  const std::vector<int32_t> perm = ints(l.perm, want.perm.size());
  const std::vector<int32_t> pos = ints(l.pos_of_pair, pairs);
  for (int64_t p = 0; p < pairs; ++p) {
    if (want.pair_slot[p] < 0) {
      EXPECT_EQ(pos[p], -1) << p;
      continue;
    }
    ASSERT_GE(pos[p], want.offsets[want.pair_slot[p]]) << p;
    ASSERT_LT(pos[p], want.offsets[want.pair_slot[p] + 1]) << p;
    EXPECT_EQ(perm[pos[p]], p);
  }
}

// Checked on the host before any launch or device access: runs without a GPU too.
TEST(CudaExpertStage, RefusesASmallOrMisalignedWorkspace) {
  kernels::cuda::ExpertLayerView view;
  view.num_experts = 8;
  view.slots = 4;
  view.hidden = 64;
  view.inter = 128;
  const size_t need = kernels::cuda::expert_stage_workspace_bytes(view, 10, 2);
  EXPECT_EQ(need, kernels::cuda::expert_workspace_layout(20, 4, 64, 128).bytes);
  alignas(256) static unsigned char fake[64];  // never dereferenced: refused first
  EXPECT_THROW(kernels::cuda::expert_stage(view, nullptr, 10, 2, nullptr, nullptr, nullptr, fake,
                                           need - 1, nullptr),
               std::invalid_argument);
  EXPECT_THROW(kernels::cuda::expert_stage(view, nullptr, 10, 2, nullptr, nullptr, nullptr,
                                           fake + 4, need, nullptr),
               std::invalid_argument);
  EXPECT_THROW(kernels::cuda::expert_stage(view, nullptr, 10, 0, nullptr, nullptr, nullptr, fake,
                                           need, nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace moeflow
#else
#include <gtest/gtest.h>
TEST(CudaExpertStage, MatchesTheCpuExpertStage) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
#endif
