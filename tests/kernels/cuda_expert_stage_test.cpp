// The GPU expert stage (kernels/cuda/expert_stage.h) against the CPU expert stage
// (model/expert_stage.h) with the same bf16 weights, on fresh random inputs: one row, ragged
// expert groups (experts with no rows, one with most of them), experts not held here, shapes off
// every vector width (the scalar paths of gather, SwiGLU and combine), several hundred rows;
// routing grouped on the host and on the device. Outputs and workspace are poisoned (NaN) before
// each run. Skips without a CUDA device.
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
namespace kc = kernels::cuda;

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

std::string describe(const StageShape& s) {
  return "n=" + std::to_string(s.n) + " experts=" + std::to_string(s.num_experts) +
         " k=" + std::to_string(s.top_k) + " hidden=" + std::to_string(s.hidden) +
         " inter=" + std::to_string(s.inter) + " held=" + std::to_string(s.held);
}

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

// One layer's random experts (a subset held), the CPU stage's answer for a random batch, and
// what the GPU needs to compute it.
struct Case {
  std::vector<std::vector<uint16_t>> gate, up, down;  // per expert, empty when not held
  std::vector<kc::HostExpert> held;
  ExpertWeights cpu_weights;
  TokenBatch batch;
  std::vector<float> want;
};

Case make_case(const StageShape& s, std::mt19937& rng) {
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
void expect_matches(const StageShape& s, const Case& c, const std::vector<float>& got,
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

void check_stage(const StageShape& s, const kc::CublasHandle& blas, std::mt19937& rng) {
  SCOPED_TRACE(describe(s));
  const Case c = make_case(s, rng);
  kc::ExpertLayer layer(s.num_experts, s.hidden, s.inter, c.held);
  const kc::ExpertLayerView& view = layer.view();
  DeviceArray<float> x(c.batch.rows);
  DeviceArray<int32_t> experts(c.batch.experts);
  DeviceArray<float> weights(c.batch.weights);
  DeviceArray<float> out(s.n * s.hidden);
  const int64_t pairs = s.n * s.top_k;
  const kc::ExpertWorkspaceLayout l =
      kc::expert_workspace_layout(pairs, view.slots, view.hidden, view.inter);
  DeviceArray<unsigned char> workspace(l.bytes);
  auto* perm = reinterpret_cast<int32_t*>(workspace.get() + l.perm);
  auto* pos = reinterpret_cast<int32_t*>(workspace.get() + l.pos_of_pair);

  // Grouped on the host (as GpuExpertStage does), twice: the second run must not live off the
  // first one's leftovers.
  const kc::ExpertGrouping g = kc::group_pairs(
      c.batch.experts.data(), pairs, layer.slot_of_expert().data(), s.num_experts, view.slots);
  for (int run = 0; run < 2; ++run) {
    out.poison();
    workspace.poison();
    test_support::cuda_ok(
        cudaMemcpy(perm, g.perm.data(), g.perm.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
        "upload perm");
    test_support::cuda_ok(
        cudaMemcpy(pos, g.pos_of_pair.data(), pairs * sizeof(int32_t), cudaMemcpyHostToDevice),
        "upload pos_of_pair");
    const kc::ExpertRouting routing{g.counts.data(), perm, pos};
    kc::expert_stage(view, blas, x.get(), s.n, s.top_k, routing, weights.get(), out.get(),
                     workspace.get(), l.bytes, nullptr);
    expect_matches(s, c, out.download(), run == 0 ? "host routing" : "host routing, again");
  }

  // Grouped on the device: the counts come back to the host once.
  out.poison();
  workspace.poison();
  std::vector<int32_t> counts(view.slots, -7);
  kc::expert_stage_device_routed(view, blas, x.get(), s.n, s.top_k, experts.get(), weights.get(),
                                 out.get(), workspace.get(), l.bytes, counts.data(), nullptr);
  EXPECT_EQ(counts, g.counts);
  expect_matches(s, c, out.download(), "device routing");
}

TEST(CudaExpertStage, MatchesTheCpuExpertStage) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  kc::CublasHandle blas;
  std::mt19937 rng(std::random_device{}());
  const StageShape shapes[] = {
      {1, 8, 2, 64, 128, 8, 8},        // one row
      {7, 8, 2, 64, 128, 8, 8},        // a few rows
      {37, 16, 4, 96, 200, 8, 16},     // half the experts held
      {300, 8, 2, 256, 512, 8, 3},     // ragged: 3 hot experts, 5 with no rows
      {513, 64, 6, 128, 160, 64, 64},  // DeepSeek-like fine-grained experts
      {129, 32, 4, 72, 40, 4, 32},     // few held: many rows with no held expert
      {45, 8, 2, 70, 36, 8, 8},        // hidden % 8 != 0, % 4 != 0; inter % 8 != 0: scalar paths
      {3, 8, 2, 60, 44, 2, 8},         // hidden % 8 != 0 but % 4 == 0
  };
  for (const StageShape& s : shapes) check_stage(s, blas, rng);
}

// The layer upload: gate row i at row 2i, up row i at row 2i + 1, down as stored; the slot map.
TEST(CudaExpertStage, UploadInterleavesGateAndUpRows) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const StageShape s{4, 6, 2, 24, 10, 3, 6};
  const Case c = make_case(s, rng);
  kc::ExpertLayer layer(s.num_experts, s.hidden, s.inter, c.held);
  const kc::ExpertLayerView& v = layer.view();
  ASSERT_EQ(v.slots, 3);
  const int64_t matrix = s.inter * s.hidden;
  std::vector<uint16_t> gate_up(2 * v.slots * matrix), down(v.slots * matrix);
  std::vector<int32_t> slot_of(s.num_experts);
  test_support::cuda_ok(
      cudaMemcpy(gate_up.data(), v.gate_up, gate_up.size() * 2, cudaMemcpyDeviceToHost),
      "download gate_up");
  test_support::cuda_ok(cudaMemcpy(down.data(), v.down, down.size() * 2, cudaMemcpyDeviceToHost),
                        "download down");
  test_support::cuda_ok(
      cudaMemcpy(slot_of.data(), v.slot_of_expert, slot_of.size() * 4, cudaMemcpyDeviceToHost),
      "download slot map");
  EXPECT_EQ(slot_of, layer.slot_of_expert());
  for (int64_t slot = 0; slot < v.slots; ++slot) {
    const kc::HostExpert& h = c.held[slot];
    EXPECT_EQ(slot_of[h.expert], slot);
    const uint16_t* gu = gate_up.data() + slot * 2 * matrix;
    for (int64_t i = 0; i < s.inter; ++i)
      for (int64_t col = 0; col < s.hidden; ++col) {
        ASSERT_EQ(gu[(2 * i) * s.hidden + col], h.gate[i * s.hidden + col]) << slot << "," << i;
        ASSERT_EQ(gu[(2 * i + 1) * s.hidden + col], h.up[i * s.hidden + col]) << slot << "," << i;
      }
    EXPECT_TRUE(std::equal(h.down, h.down + matrix, down.data() + slot * matrix)) << slot;
  }
}

TEST(CudaExpertStage, DeviceGroupingMatchesTheHostReference) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(std::random_device{}());
  const int64_t num_experts = 16, held = 10, pairs = 1000;
  std::vector<kc::HostExpert> host;
  const std::vector<uint16_t> w(8 * 8, 0x3f80);  // weights play no part in the grouping
  for (int32_t e = 0; e < held; ++e) host.push_back({e, w.data(), w.data(), w.data()});
  kc::ExpertLayer layer(num_experts, 8, 8, host);
  std::vector<int32_t> ids(pairs);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % 20) - 2;  // some out of range
  const kc::ExpertGrouping want =
      kc::group_pairs(ids.data(), pairs, layer.slot_of_expert().data(), num_experts, held);

  const kc::ExpertWorkspaceLayout l = kc::expert_workspace_layout(pairs, held, 8, 8);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<unsigned char> workspace(l.bytes);
  workspace.poison();
  kc::expert_group(layer.view(), pairs, d_ids.get(), workspace.get(), l.bytes, nullptr);
  const std::vector<unsigned char> bytes = workspace.download();
  auto ints = [&](size_t offset, size_t count) {
    const auto* p = reinterpret_cast<const int32_t*>(bytes.data() + offset);
    return std::vector<int32_t>(p, p + count);
  };
  EXPECT_EQ(ints(l.counts, held), want.counts);
  EXPECT_EQ(ints(l.offsets, held + 1), want.offsets);
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

}  // namespace
}  // namespace moeflow
#else
#include <gtest/gtest.h>
TEST(CudaExpertStage, MatchesTheCpuExpertStage) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
#endif
