// The GPU expert stage's host-side arithmetic (kernels/cuda/expert_plan.h): grouping of (row,
// choice) pairs by held expert, the workspace layout, the per-slot GEMM slices and the argument
// checks; the small-batch path's limit, layout and checks. Runs in every build, GPU or not.
#include "kernels/cuda/expert_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace moeflow::kernels::cuda {
namespace {

TEST(CudaExpertPlan, GroupsHeldPairsBySlotStably) {
  // 8 experts, slots for 1, 3 and 6 (in that order); 5 rows x top-2; ids 9 and -1 are invalid.
  std::vector<int32_t> slot_of(8, -1);
  slot_of[1] = 0;
  slot_of[3] = 1;
  slot_of[6] = 2;
  const std::vector<int32_t> experts = {3, 1, 0, 3, 1, 9, -1, 3, 1, 2};
  const ExpertGrouping g = group_pairs(experts.data(), 10, slot_of.data(), 8, 3);
  EXPECT_EQ(g.pair_slot, (std::vector<int32_t>{1, 0, -1, 1, 0, -1, -1, 1, 0, -1}));
  EXPECT_EQ(g.counts, (std::vector<int32_t>{3, 3, 0}));  // expert 6 gets nothing
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0, 3, 6, 6}));
  EXPECT_EQ(g.perm, (std::vector<int32_t>{1, 4, 8, 0, 3, 7}));
  EXPECT_EQ(g.pos_of_pair, (std::vector<int32_t>{3, 0, -1, 4, 1, -1, -1, 5, 2, -1}));
}

TEST(CudaExpertPlan, NothingHeldMeansNoPositions) {
  std::vector<int32_t> slot_of(4, -1);
  const std::vector<int32_t> experts = {0, 1, 2, 3};
  const ExpertGrouping g = group_pairs(experts.data(), 4, slot_of.data(), 4, 0);
  EXPECT_TRUE(g.counts.empty());
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0}));
  EXPECT_TRUE(g.perm.empty());
  EXPECT_EQ(g.pos_of_pair, (std::vector<int32_t>(4, -1)));
}

TEST(CudaExpertPlan, GroupingIsAPermutationForAnyRouting) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t num_experts = 1 + rng() % 64;
    const int64_t slots = 1 + rng() % num_experts;
    const int64_t pairs = 1 + rng() % 3000;
    std::vector<int32_t> slot_of(num_experts, -1);
    for (int64_t s = 0; s < slots; ++s) slot_of[s] = static_cast<int32_t>(s);
    std::shuffle(slot_of.begin(), slot_of.end(), rng);
    // Skewed routing: most pairs on a few experts, some experts empty.
    std::vector<int32_t> experts(pairs);
    for (auto& e : experts)
      e = static_cast<int32_t>(rng() % 4 == 0 ? rng() % num_experts : rng() % 3 % num_experts);
    const ExpertGrouping g = group_pairs(experts.data(), pairs, slot_of.data(), num_experts, slots);
    EXPECT_EQ(static_cast<int64_t>(g.perm.size()), g.offsets[slots]);
    for (int64_t p = 0; p < pairs; ++p) {
      if (g.pos_of_pair[p] < 0) {
        EXPECT_LT(slot_of[experts[p]], 0);
        continue;
      }
      EXPECT_EQ(g.perm[g.pos_of_pair[p]], p);
      const int32_t s = g.pair_slot[p];
      EXPECT_GE(g.pos_of_pair[p], g.offsets[s]);
      EXPECT_LT(g.pos_of_pair[p], g.offsets[s + 1]);
    }
  }
}

TEST(CudaExpertPlan, WorkspaceRegionsAreAlignedAndDisjoint) {
  const int64_t pairs = 1000, slots = 7, hidden = 96, inter = 160;
  const ExpertWorkspaceLayout l = expert_workspace_layout(pairs, slots, hidden, inter);
  const std::vector<std::pair<size_t, size_t>> regions = {{l.counts, 4 * slots},
                                                          {l.offsets, 4 * (slots + 1)},
                                                          {l.cursors, 4 * slots},
                                                          {l.pair_slot, 4 * pairs},
                                                          {l.perm, 4 * pairs},
                                                          {l.pos_of_pair, 4 * pairs},
                                                          {l.gathered, 2 * pairs * hidden},
                                                          {l.gate_up, 2 * pairs * 2 * inter},
                                                          {l.activations, 2 * pairs * inter},
                                                          {l.expert_out, 4 * pairs * hidden}};
  for (size_t i = 0; i < regions.size(); ++i) {
    EXPECT_EQ(regions[i].first % 256, 0u) << i;
    EXPECT_LE(regions[i].first + regions[i].second, l.bytes) << i;
    if (i > 0) {
      EXPECT_GE(regions[i].first, regions[i - 1].first + regions[i - 1].second) << i;
    }
  }
}

// A workspace pointer that is never dereferenced (the plan only looks at its address).
void* aligned_fake() {
  alignas(256) static unsigned char fake[256];
  return fake;
}

TEST(CudaExpertPlan, PlanSlicesTheNonEmptySlotsInOrder) {
  const std::vector<int32_t> counts = {3, 0, 5, 0, 1};
  const size_t need = expert_workspace_layout(10 * 2, 5, 64, 128).bytes;
  const ExpertStagePlan plan =
      plan_expert_stage(5, 64, 128, 10, 2, counts.data(), aligned_fake(), need);
  EXPECT_EQ(plan.positions, 9);
  ASSERT_EQ(plan.slices.size(), 3u);
  const int64_t want[3][3] = {{0, 0, 3}, {2, 3, 5}, {4, 8, 1}};  // slot, first position, rows
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(plan.slices[i].slot, want[i][0]) << i;
    EXPECT_EQ(plan.slices[i].first_position, want[i][1]) << i;
    EXPECT_EQ(plan.slices[i].rows, want[i][2]) << i;
  }
  EXPECT_EQ(plan.layout.bytes, need);
  // Nothing held: no slices, nothing to compute (the combine alone writes zeros).
  const std::vector<int32_t> none = {0, 0, 0, 0, 0};
  EXPECT_TRUE(
      plan_expert_stage(5, 64, 128, 10, 2, none.data(), aligned_fake(), need).slices.empty());
}

// Refused on the host with a message that says what, before any device work.
void expect_refused(const std::string& needle, int64_t slots, int64_t hidden, int64_t inter,
                    int64_t n, int64_t top_k, const int32_t* counts, const void* workspace,
                    size_t bytes) {
  try {
    plan_expert_stage(slots, hidden, inter, n, top_k, counts, workspace, bytes);
    ADD_FAILURE() << "accepted; expected a refusal mentioning \"" << needle << "\"";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CudaExpertPlan, PlanRefusesBadArguments) {
  const std::vector<int32_t> counts = {4, 4, 2, 0};
  const size_t need = expert_workspace_layout(5 * 2, 4, 64, 128).bytes;
  void* ws = aligned_fake();
  EXPECT_NO_THROW(plan_expert_stage(4, 64, 128, 5, 2, counts.data(), ws, need));
  expect_refused("workspace of", 4, 64, 128, 5, 2, counts.data(), ws, need - 1);
  expect_refused("aligned", 4, 64, 128, 5, 2, counts.data(), static_cast<char*>(ws) + 4, need);
  expect_refused("bad shape", 4, 64, 128, 5, 0, counts.data(), ws, need);
  expect_refused("bad shape", 4, 0, 128, 5, 2, counts.data(), ws, need);
  expect_refused("bad shape", 4, 64, 128, -1, 2, counts.data(), ws, need);
  expect_refused("no host counts", 4, 64, 128, 5, 2, nullptr, ws, need);
  const std::vector<int32_t> negative = {4, -1, 2, 0};
  expect_refused("negative count", 4, 64, 128, 5, 2, negative.data(), ws, need);
  const std::vector<int32_t> too_many = {4, 4, 2, 1};  // 11 positions for 5 rows x top-2
  expect_refused("more than the 10 pairs", 4, 64, 128, 5, 2, too_many.data(), ws, need);
  // cuBLAS dimensions are ints: 2 * inter must fit.
  expect_refused("int range", 4, 64, int64_t{1} << 30, 5, 2, counts.data(), ws, need);
  // No rows: nothing to check but the shape.
  EXPECT_EQ(plan_expert_stage(4, 64, 128, 0, 2, counts.data(), ws, 256).positions, 0);
}

// --- the small-batch path ---------------------------------------------------------------------

TEST(CudaExpertPlan, SmallBatchTakesUpTo64Pairs) {
  EXPECT_EQ(kSmallBatchPairsMax, 64);
  EXPECT_TRUE(expert_stage_takes_small_batch(1, 2));
  EXPECT_TRUE(expert_stage_takes_small_batch(32, 2));
  EXPECT_FALSE(expert_stage_takes_small_batch(33, 2));
  EXPECT_TRUE(expert_stage_takes_small_batch(16, 4));
  EXPECT_TRUE(expert_stage_takes_small_batch(64, 1));
  EXPECT_FALSE(expert_stage_takes_small_batch(65, 1));
  EXPECT_FALSE(expert_stage_takes_small_batch(1, 65));
  EXPECT_FALSE(expert_stage_takes_small_batch(2, int64_t{1} << 62));  // no overflow
  EXPECT_FALSE(expert_stage_takes_small_batch(int64_t{1} << 62, 4));
  EXPECT_TRUE(expert_stage_takes_small_batch(0, 2));  // nothing to do: no wait either
  EXPECT_FALSE(expert_stage_takes_small_batch(1, 0));
  EXPECT_FALSE(expert_stage_takes_small_batch(-1, 2));
}

TEST(CudaExpertPlan, SmallBatchWorkspaceRegionsAreAlignedAndDisjoint) {
  const size_t n = 13, k = 4, pairs = n * k, hidden = 70, inter = 33;
  const SmallBatchWorkspaceLayout l = small_batch_workspace_layout(n, k, hidden, inter);
  const std::vector<std::pair<size_t, size_t>> regions = {{l.pos_of_pair, 4 * pairs},
                                                          {l.perm, 4 * pairs},
                                                          {l.group_slot, 4 * pairs},
                                                          {l.group_start, 4 * (pairs + 1)},
                                                          {l.group_count, 4},
                                                          {l.rows_bf16, 2 * n * hidden},
                                                          {l.activations, 2 * pairs * inter},
                                                          {l.expert_out, 4 * pairs * hidden}};
  for (size_t i = 0; i < regions.size(); ++i) {
    EXPECT_EQ(regions[i].first % 256, 0u) << i;
    EXPECT_LE(regions[i].first + regions[i].second, l.bytes) << i;
    if (i > 0) {
      EXPECT_GE(regions[i].first, regions[i - 1].first + regions[i - 1].second) << i;
    }
  }
  // Never more than the cuBLAS path's workspace for the same shape (a caller sized for that
  // one can run either).
  for (int64_t slots : {1, 8, 64})
    EXPECT_LE(l.bytes, expert_workspace_layout(pairs, slots, hidden, inter).bytes) << slots;
}

TEST(CudaExpertPlan, SmallBatchPlanRefusesBadArguments) {
  void* ws = aligned_fake();
  const size_t need = small_batch_workspace_layout(4, 2, 64, 32).bytes;
  auto refused = [&](const std::string& want, int64_t experts, int64_t slots, int64_t hidden,
                     int64_t inter, int64_t n, int64_t k, const void* w, size_t bytes) {
    try {
      plan_small_batch_stage(experts, slots, hidden, inter, n, k, w, bytes);
      ADD_FAILURE() << "accepted; wanted '" << want << "'";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("expert_stage_small_batch: ", 0), 0u) << what;
      EXPECT_NE(what.find(want), std::string::npos) << what;
    }
  };
  EXPECT_EQ(plan_small_batch_stage(8, 8, 64, 32, 4, 2, ws, need).bytes, need);
  refused("more than 64", 8, 8, 64, 32, 33, 2, ws, 1 << 30);
  refused("more than 64", 8, 8, 64, 32, 1, 100, ws, 1 << 30);
  refused("workspace of", 8, 8, 64, 32, 4, 2, ws, need - 1);
  refused("aligned", 8, 8, 64, 32, 4, 2, static_cast<char*>(ws) + 16, need);
  refused("bad shape", 8, 8, 64, 32, 4, 0, ws, need);
  refused("bad shape", 8, 8, 0, 32, 4, 2, ws, need);
  refused("bad shape", 8, 8, 64, 0, 4, 2, ws, need);
  refused("bad shape", 8, -1, 64, 32, 4, 2, ws, need);
  refused("bad shape", 0, 0, 64, 32, 4, 2, ws, need);
  refused("bad shape", 8, 8, 64, 32, -1, 2, ws, need);
  // No rows: only the shape is checked.
  EXPECT_NO_THROW(plan_small_batch_stage(8, 8, 64, 32, 0, 2, nullptr, 0));
}

}  // namespace
}  // namespace moeflow::kernels::cuda
