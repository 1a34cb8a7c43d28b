// The small-batch expert stage (kernels/cuda/expert_small_batch.h) against the CPU expert stage
// (model/expert_stage.h) and against the cuBLAS path (expert_stage with host grouping) on fresh
// random inputs, output and workspace poisoned (NaN / -1) before each run: 1 row, 3 rows, the
// 64-pair limit at top-1/2/4, top-1 with every pair on one expert (8 passes of 8 pairs), hot
// experts repeated across rows, experts not held, expert ids out of range, a layer holding
// nothing, hidden and inter off the 8-wide vector loads (the scalar GEMV) and odd inter (the
// last warp's spare rows). Each run twice (bitwise equal: deterministic). The grouping it writes
// in the workspace is checked against group_pairs, its per-expert counts against the routing.
// The host-side refusals run in every CUDA build, device or not.
#if MOEFLOW_HAVE_CUDA
#include "kernels/cuda/expert_small_batch.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/expert_combine.h"
#include "tests/kernels/cuda_expert_case.h"
#include "tests/kernels/cuda_test_util.h"

namespace moeflow {
namespace {

using test_support::Case;
using test_support::DeviceArray;
using test_support::StageShape;
namespace kc = kernels::cuda;

// The cuBLAS path's answer for the same batch (grouped on the host as GpuExpertStage::run does).
std::vector<float> cublas_path(const kc::ExpertLayer& layer, const kc::CublasHandle& blas,
                               const StageShape& s, const std::vector<int32_t>& ids,
                               const DeviceArray<float>& x, const DeviceArray<float>& weights) {
  const kc::ExpertLayerView& view = layer.view();
  const int64_t pairs = s.n * s.top_k;
  const kc::ExpertWorkspaceLayout l =
      kc::expert_workspace_layout(pairs, view.slots, view.hidden, view.inter);
  DeviceArray<unsigned char> workspace(l.bytes);
  DeviceArray<float> out(s.n * s.hidden);
  out.poison();
  const kc::ExpertGrouping g =
      kc::group_pairs(ids.data(), pairs, layer.slot_of_expert().data(), s.num_experts, view.slots);
  auto* perm = reinterpret_cast<int32_t*>(workspace.get() + l.perm);
  auto* pos = reinterpret_cast<int32_t*>(workspace.get() + l.pos_of_pair);
  test_support::cuda_ok(
      cudaMemcpy(perm, g.perm.data(), g.perm.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
      "upload perm");
  test_support::cuda_ok(
      cudaMemcpy(pos, g.pos_of_pair.data(), pairs * sizeof(int32_t), cudaMemcpyHostToDevice),
      "upload pos_of_pair");
  kc::expert_stage(view, blas, x.get(), s.n, s.top_k, {g.counts.data(), perm, pos}, weights.get(),
                   out.get(), workspace.get(), l.bytes, nullptr);
  return out.download();
}

// The grouping the prepare kernel left in the workspace is group_pairs's, with the touched
// slots listed in ascending order.
void expect_grouping(const std::vector<unsigned char>& ws, const kc::SmallBatchWorkspaceLayout& l,
                     const kc::ExpertGrouping& g, int64_t pairs) {
  auto ints = [&](size_t offset, size_t count) {
    const auto* p = reinterpret_cast<const int32_t*>(ws.data() + offset);
    return std::vector<int32_t>(p, p + count);
  };
  EXPECT_EQ(ints(l.pos_of_pair, pairs), g.pos_of_pair);
  EXPECT_EQ(ints(l.perm, g.perm.size()), g.perm);
  std::vector<int32_t> slots, starts;
  for (size_t s = 0; s < g.counts.size(); ++s) {
    if (g.counts[s] == 0) continue;
    slots.push_back(static_cast<int32_t>(s));
    starts.push_back(g.offsets[s]);
  }
  starts.push_back(g.offsets.back());
  const int32_t touched = ints(l.group_count, 1)[0];
  ASSERT_EQ(touched, static_cast<int32_t>(slots.size()));
  EXPECT_EQ(ints(l.group_slot, touched), slots);
  EXPECT_EQ(ints(l.group_start, touched + 1), starts);
}

// `invalid`: some expert ids replaced by ids outside [0, num_experts) (not held; the CPU stage
// cannot take them, so the cuBLAS path with host grouping is the reference there).
void check_small_batch(const StageShape& s, const kc::CublasHandle& blas, std::mt19937& rng,
                       bool invalid = false) {
  SCOPED_TRACE(test_support::describe(s) + (invalid ? " (ids out of range)" : ""));
  Case c = test_support::make_case(s, rng);
  if (invalid)
    for (size_t p = 0; p < c.batch.experts.size(); p += 3)
      c.batch.experts[p] = p % 2 ? -1 : static_cast<int32_t>(s.num_experts + p);
  kc::ExpertLayer layer(s.num_experts, s.hidden, s.inter, c.held);
  const kc::ExpertLayerView& view = layer.view();
  const int64_t pairs = s.n * s.top_k;
  DeviceArray<float> x(c.batch.rows), weights(c.batch.weights);
  DeviceArray<int32_t> experts(c.batch.experts);
  const std::vector<float> cublas = cublas_path(layer, blas, s, c.batch.experts, x, weights);

  const kc::SmallBatchWorkspaceLayout l =
      kc::small_batch_workspace_layout(s.n, s.top_k, s.hidden, s.inter);
  ASSERT_EQ(kc::expert_stage_small_batch_workspace_bytes(view, s.n, s.top_k), l.bytes);
  DeviceArray<unsigned char> workspace(l.bytes);
  DeviceArray<float> out(s.n * s.hidden);
  std::vector<int32_t> want_pairs(s.num_experts, 5);  // added to, not overwritten
  DeviceArray<int32_t> expert_pairs(want_pairs);
  for (int32_t e : c.batch.experts)
    if (e >= 0 && e < s.num_experts && layer.slot_of_expert()[e] >= 0) ++want_pairs[e];

  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    out.poison();
    workspace.poison();
    kc::expert_stage_small_batch(view, x.get(), s.n, s.top_k, experts.get(), weights.get(),
                                 out.get(), workspace.get(), l.bytes,
                                 run == 0 ? expert_pairs.get() : nullptr, nullptr);
    const std::vector<float> got = out.download();
    if (run == 1) {
      EXPECT_EQ(std::memcmp(got.data(), first.data(), got.size() * sizeof(float)), 0)
          << "two runs differ: not deterministic";
      break;
    }
    first = got;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_FALSE(std::isnan(got[i])) << "output " << i << " not written";
    const double vs_cublas = test_support::relative_error(got, cublas);
    // Same roundings as the cuBLAS path (bf16 x, gate, up, activations), another fp32
    // summation order: the odd gate/up rounding flips, ~1e-4 expected.
    EXPECT_LT(vs_cublas, 1e-3) << "small batch vs cuBLAS path";
    double vs_cpu = -1.0;
    if (!invalid) {
      test_support::expect_matches(s, c, got, "small batch vs CPU");
      vs_cpu = test_support::relative_error(got, c.want);
    }
    // Rows with no held choice are exactly zero.
    for (int64_t r = 0; r < s.n; ++r) {
      bool any = false;
      for (int64_t j = 0; j < s.top_k; ++j) {
        const int32_t e = c.batch.experts[r * s.top_k + j];
        any |= e >= 0 && e < s.num_experts && layer.slot_of_expert()[e] >= 0;
      }
      for (int64_t col = 0; !any && col < s.hidden; ++col)
        ASSERT_EQ(got[r * s.hidden + col], 0.0f) << "row " << r;
    }
    std::printf("%s%s: |small-cublas|/|cublas| %.2e, |small-cpu|/|cpu| %.2e\n",
                test_support::describe(s).c_str(), invalid ? " (ids out of range)" : "", vs_cublas,
                vs_cpu);
    EXPECT_EQ(expert_pairs.download(), want_pairs);
    expect_grouping(workspace.download(), l,
                    kc::group_pairs(c.batch.experts.data(), pairs, layer.slot_of_expert().data(),
                                    s.num_experts, view.slots),
                    pairs);
  }
}

TEST(CudaExpertSmallBatch, MatchesTheCpuStageAndTheCublasPath) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  kc::CublasHandle blas;
  std::mt19937 rng(std::random_device{}());
  // {n, experts, top_k, hidden, inter, held, hot experts}
  const StageShape shapes[] = {
      {1, 8, 2, 256, 512, 8, 8},     // one row, top-2
      {1, 8, 1, 128, 96, 8, 8},      // one row, top-1
      {3, 8, 2, 512, 384, 8, 8},     // three rows
      {3, 16, 4, 256, 200, 8, 16},   // top-4, half the experts held
      {32, 8, 2, 256, 512, 8, 8},    // the limit at top-2: 64 pairs
      {16, 8, 4, 128, 256, 8, 8},    // the limit at top-4
      {64, 8, 1, 128, 128, 8, 1},    // the limit at top-1, all on one expert: 8 passes
      {20, 8, 2, 128, 96, 8, 3},     // 3 hot experts repeated across rows: 2 passes each
      {7, 32, 4, 72, 40, 4, 32},     // few held: rows with no held expert get zeros
      {10, 64, 6, 128, 64, 64, 64},  // DeepSeek-like: 60 pairs over 64 fine-grained experts
      {5, 8, 2, 70, 36, 8, 8},       // hidden % 8, % 4 != 0, inter % 8 != 0: scalar everywhere
      {6, 8, 2, 60, 44, 2, 8},       // hidden % 4 == 0 only; 2 held
      {4, 8, 2, 64, 33, 8, 8},       // odd inter: the last warp's gate_up rows half spare
      {9, 8, 2, 40, 24, 8, 8},       // hidden 40: a down block with spare warps
      {2, 8, 2, 1024, 1024, 8, 8},   // longer rows: many column steps per lane
  };
  for (const StageShape& s : shapes) check_small_batch(s, blas, rng);
  check_small_batch({6, 8, 2, 64, 64, 4, 8}, blas, rng, /*invalid=*/true);
  check_small_batch({1, 8, 4, 48, 24, 8, 8}, blas, rng, /*invalid=*/true);
}

TEST(CudaExpertSmallBatch, ALayerHoldingNothingGivesZeros) {
  MOEFLOW_REQUIRE_CUDA_DEVICE();
  const int64_t n = 3, k = 2, hidden = 64, inter = 32, experts_n = 8;
  kc::ExpertLayer layer(experts_n, hidden, inter, {});
  ASSERT_EQ(layer.view().slots, 0);
  DeviceArray<float> x(std::vector<float>(n * hidden, 1.0f));
  DeviceArray<float> weights(std::vector<float>(n * k, 0.5f));
  DeviceArray<int32_t> ids(std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  DeviceArray<int32_t> expert_pairs(std::vector<int32_t>(experts_n, 2));
  const kc::SmallBatchWorkspaceLayout l = kc::small_batch_workspace_layout(n, k, hidden, inter);
  DeviceArray<unsigned char> workspace(l.bytes);
  DeviceArray<float> out(n * hidden);
  out.poison();
  workspace.poison();
  kc::expert_stage_small_batch(layer.view(), x.get(), n, k, ids.get(), weights.get(), out.get(),
                               workspace.get(), l.bytes, expert_pairs.get(), nullptr);
  EXPECT_EQ(out.download(), std::vector<float>(n * hidden, 0.0f));
  EXPECT_EQ(expert_pairs.download(), std::vector<int32_t>(experts_n, 2));
}

// Refused before any device work (no device needed): the pointers are never dereferenced.
TEST(CudaExpertSmallBatch, RefusesBadArgumentsOnTheHost) {
  alignas(256) static unsigned char fake[1 << 16];
  const auto* w16 = reinterpret_cast<const uint16_t*>(fake);
  const auto* i32 = reinterpret_cast<const int32_t*>(fake);
  const auto* f32 = reinterpret_cast<const float*>(fake);
  auto* out = reinterpret_cast<float*>(fake);
  kc::ExpertLayerView view;
  view.gate_up = w16;
  view.down = w16;
  view.slot_of_expert = i32;
  view.num_experts = 8;
  view.slots = 8;
  view.hidden = 64;
  view.inter = 32;
  const size_t need = kc::expert_stage_small_batch_workspace_bytes(view, 4, 2);
  auto refused = [&](const std::string& want, auto&& call) {
    try {
      call();
      ADD_FAILURE() << "accepted; wanted a refusal naming '" << want << "'";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("expert_stage_small_batch"), std::string::npos) << what;
      EXPECT_NE(what.find(want), std::string::npos) << what;
    }
  };
  auto run = [&](const kc::ExpertLayerView& v, const float* x, int64_t n, int64_t k,
                 const int32_t* ids, void* ws, size_t bytes) {
    kc::expert_stage_small_batch(v, x, n, k, ids, f32, out, ws, bytes, nullptr, nullptr);
  };
  refused("more than 64", [&] { run(view, f32, 33, 2, i32, fake, sizeof fake); });
  refused("more than 64", [&] { run(view, f32, 65, 1, i32, fake, sizeof fake); });
  refused("more than 64", [&] { run(view, f32, 1, int64_t{1} << 62, i32, fake, sizeof fake); });
  refused("bad shape", [&] { run(view, f32, 4, 0, i32, fake, sizeof fake); });
  refused("bad shape", [&] { run(view, f32, -1, 2, i32, fake, sizeof fake); });
  refused("workspace of", [&] { run(view, f32, 4, 2, i32, fake, need - 1); });
  refused("not 256-byte aligned", [&] { run(view, f32, 4, 2, i32, fake + 16, need); });
  refused("null x", [&] { run(view, nullptr, 4, 2, i32, fake, need); });
  refused("null x", [&] { run(view, f32, 4, 2, nullptr, fake, need); });
  kc::ExpertLayerView no_weights = view;
  no_weights.down = nullptr;
  refused("null expert weights", [&] { run(no_weights, f32, 4, 2, i32, fake, need); });
  kc::ExpertLayerView bad = view;
  bad.hidden = 0;
  refused("bad shape", [&] { run(bad, f32, 4, 2, i32, fake, sizeof fake); });
  // n = 0: nothing to do, nothing checked beyond the shape.
  EXPECT_NO_THROW(run(view, nullptr, 0, 2, nullptr, nullptr, 0));

  try {
    kc::expert_combine(f32, nullptr, f32, 4, 2, 64, 8, out, nullptr);
    ADD_FAILURE() << "expert_combine accepted a null pos_of_pair";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expert_combine"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moeflow
#else
#include <gtest/gtest.h>
TEST(CudaExpertSmallBatch, MatchesTheCpuStageAndTheCublasPath) {
  GTEST_SKIP() << "no CUDA device (built without CUDA)";
}
#endif
