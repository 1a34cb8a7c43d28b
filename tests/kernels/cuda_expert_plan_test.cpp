// The GPU expert stage's host-side arithmetic (kernels/cuda/expert_plan.h): grouping of (row,
// choice) pairs by held expert, tile counts, workspace layout. Runs in every build, GPU or not.
#include "kernels/cuda/expert_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
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
  const ExpertGrouping g = group_pairs(experts.data(), 10, slot_of.data(), 8, 3, 2);
  EXPECT_EQ(g.pair_slot, (std::vector<int32_t>{1, 0, -1, 1, 0, -1, -1, 1, 0, -1}));
  EXPECT_EQ(g.counts, (std::vector<int32_t>{3, 3, 0}));  // expert 6 gets nothing
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0, 3, 6, 6}));
  EXPECT_EQ(g.tile_offsets, (std::vector<int32_t>{0, 2, 4, 4}));  // tiles of 2 rows
  EXPECT_EQ(g.perm, (std::vector<int32_t>{1, 4, 8, 0, 3, 7}));
  EXPECT_EQ(g.pos_of_pair, (std::vector<int32_t>{3, 0, -1, 4, 1, -1, -1, 5, 2, -1}));
}

TEST(CudaExpertPlan, NothingHeldMeansNoPositionsAndNoTiles) {
  std::vector<int32_t> slot_of(4, -1);
  const std::vector<int32_t> experts = {0, 1, 2, 3};
  const ExpertGrouping g = group_pairs(experts.data(), 4, slot_of.data(), 4, 0);
  EXPECT_TRUE(g.counts.empty());
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0}));
  EXPECT_EQ(g.tile_offsets, (std::vector<int32_t>{0}));
  EXPECT_TRUE(g.perm.empty());
  EXPECT_EQ(g.pos_of_pair, (std::vector<int32_t>(4, -1)));
  EXPECT_EQ(expert_tiles_max(4, 0), 0);
  EXPECT_EQ(expert_tiles_max(0, 8), 0);
}

TEST(CudaExpertPlan, TileBoundHoldsForAnyRouting) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t num_experts = 1 + rng() % 64;
    const int64_t slots = 1 + rng() % num_experts;
    const int64_t pairs = 1 + rng() % 3000;
    const int tile_rows = trial % 2 ? kExpertTileRows : 1 + static_cast<int>(rng() % 16);
    std::vector<int32_t> slot_of(num_experts, -1);
    for (int64_t s = 0; s < slots; ++s) slot_of[s] = static_cast<int32_t>(s);
    std::shuffle(slot_of.begin(), slot_of.end(), rng);
    // Skewed routing: most pairs on a few experts, some experts empty.
    std::vector<int32_t> experts(pairs);
    for (auto& e : experts)
      e = static_cast<int32_t>(rng() % 4 == 0 ? rng() % num_experts : rng() % 3 % num_experts);
    const ExpertGrouping g =
        group_pairs(experts.data(), pairs, slot_of.data(), num_experts, slots, tile_rows);
    EXPECT_LE(g.tile_offsets[slots], expert_tiles_max(pairs, slots, tile_rows));
    EXPECT_EQ(static_cast<int64_t>(g.perm.size()), g.offsets[slots]);
    for (int64_t p = 0; p < pairs; ++p) {
      if (g.pos_of_pair[p] < 0) continue;
      EXPECT_EQ(g.perm[g.pos_of_pair[p]], p);
      const int32_t s = g.pair_slot[p];
      EXPECT_GE(g.pos_of_pair[p], g.offsets[s]);
      EXPECT_LT(g.pos_of_pair[p], g.offsets[s + 1]);
    }
  }
}

TEST(CudaExpertPlan, WorkspaceRegionsAreAlignedAndDisjoint) {
  const ExpertWorkspaceLayout l = expert_workspace_layout(1000, 7, 96, 160);
  const std::vector<std::pair<size_t, size_t>> regions = {{l.counts, 4 * 7},
                                                          {l.offsets, 4 * 8},
                                                          {l.tile_offsets, 4 * 8},
                                                          {l.cursors, 4 * 7},
                                                          {l.pair_slot, 4 * 1000},
                                                          {l.perm, 4 * 1000},
                                                          {l.pos_of_pair, 4 * 1000},
                                                          {l.activations, 2 * 1000 * 160},
                                                          {l.expert_out, 4 * 1000 * 96}};
  for (size_t i = 0; i < regions.size(); ++i) {
    EXPECT_EQ(regions[i].first % 256, 0u) << i;
    EXPECT_LE(regions[i].first + regions[i].second, l.bytes) << i;
    if (i > 0) {
      EXPECT_GE(regions[i].first, regions[i - 1].first + regions[i - 1].second) << i;
    }
  }
}

}  // namespace
}  // namespace moeflow::kernels::cuda
