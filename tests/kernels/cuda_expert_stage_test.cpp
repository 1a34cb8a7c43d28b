// The GPU expert stage (kernels/cuda/expert_stage.h) against the CPU expert stage
// (model/expert_stage.h) with the same bf16 weights, on fresh random inputs: one row, ragged
// expert groups (experts with no rows, one with most of them), experts not held here, shapes off
// every vector width (the scalar paths of gather, SwiGLU and combine), several hundred rows;
// routing grouped on the host and on the device. Outputs and workspace are poisoned (NaN) before
// each run. The device-routed forms: the cuBLAS path forced, and the dispatch by size (the
// small-batch path has its own test, cuda_expert_small_batch_test.cpp). Skips without a CUDA
// device.
#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/expert_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "tests/kernels/cuda_expert_case.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow {
namespace {

using test_support::Case;
using test_support::DeviceArray;
using test_support::StageShape;
namespace kc = kernels::cuda;

void check_stage(const StageShape& s, const kc::CublasHandle& blas, std::mt19937& rng) {
  SCOPED_TRACE(test_support::describe(s));
  const Case c = test_support::make_case(s, rng);
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
    test_support::expect_matches(s, c, out.download(),
                                 run == 0 ? "host routing" : "host routing, again");
  }

  // Grouped on the device, cuBLAS path forced: the counts come back to the host once; every
  // held pair is counted at its expert on the device.
  std::vector<int32_t> want_pairs(s.num_experts, 0);
  for (int32_t e : c.batch.experts)
    if (layer.slot_of_expert()[e] >= 0) ++want_pairs[e];
  out.poison();
  workspace.poison();
  std::vector<int32_t> counts(view.slots, -7);
  DeviceArray<int32_t> expert_pairs(std::vector<int32_t>(s.num_experts, 0));
  kc::expert_stage_device_routed_cublas(view, blas, x.get(), s.n, s.top_k, experts.get(),
                                        weights.get(), out.get(), workspace.get(), l.bytes,
                                        counts.data(), expert_pairs.get(), nullptr);
  EXPECT_EQ(counts, g.counts);
  EXPECT_EQ(expert_pairs.download(), want_pairs);
  test_support::expect_matches(s, c, out.download(), "device routing, cuBLAS path");

  // The dispatching form: the small-batch path up to kSmallBatchPairsMax pairs, else cuBLAS.
  out.poison();
  workspace.poison();
  ASSERT_LE(kc::expert_stage_device_routed_workspace_bytes(view, s.n, s.top_k), l.bytes);
  const kc::DeviceRoutedPath path = kc::expert_stage_device_routed(
      view, blas, x.get(), s.n, s.top_k, experts.get(), weights.get(), out.get(), workspace.get(),
      l.bytes, counts.data(), nullptr, nullptr);
  EXPECT_EQ(path == kc::DeviceRoutedPath::small_batch, pairs <= kc::kSmallBatchPairsMax);
  test_support::expect_matches(s, c, out.download(), "device routing, path by size");
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
  const Case c = test_support::make_case(s, rng);
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
  kc::expert_group(layer.view(), pairs, d_ids.get(), workspace.get(), l.bytes, nullptr, nullptr);
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
