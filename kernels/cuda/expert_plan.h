#pragma once
// Host-side arithmetic of the GPU expert stage, compiled in every build (nvcc or not): the tile
// size, the workspace layout, and a host reference of the grouping the device computes.
//
// Grouping: the batch's (row, choice) pairs are numbered pair = row * top_k + choice. A pair whose
// expert this layer holds (slot_of_expert[e] >= 0) gets a position in [0, held pairs): the pairs
// of slot 0 first, then slot 1, ... (a counting sort by slot). The grouped GEMMs work on
// positions; each slot's positions split into tiles of kExpertTileRows rows.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moeflow::kernels::cuda {

// Rows per grouped-GEMM tile (BM of the kernels in expert_stage.cu).
inline constexpr int kExpertTileRows = 64;

// Tiles over all slots never exceed this, whatever the routing: sum_s ceil(c_s / BM) with
// sum_s c_s <= pairs. The GEMM grids are sized by it, so the host never waits for the counts.
int64_t expert_tiles_max(int64_t pairs, int64_t slots, int tile_rows = kExpertTileRows);

// Byte offsets into one workspace allocation (each 256-byte aligned) and its total size.
struct ExpertWorkspaceLayout {
  size_t counts = 0;        // int32 [slots]: held pairs per slot
  size_t offsets = 0;       // int32 [slots + 1]: first position of each slot; [slots] = total
  size_t tile_offsets = 0;  // int32 [slots + 1]: first tile of each slot; [slots] = tiles
  size_t cursors = 0;       // int32 [slots]: scatter cursors
  size_t pair_slot = 0;     // int32 [pairs]: slot of each pair, -1 when not held
  size_t perm = 0;          // int32 [pairs]: pair at each position
  size_t pos_of_pair = 0;   // int32 [pairs]: position of each pair, -1 when not held
  size_t activations = 0;   // bf16 [pairs, inter]: silu(gate) * up per position
  size_t expert_out = 0;    // fp32 [pairs, hidden]: each position's expert output
  size_t bytes = 0;         // total
};
ExpertWorkspaceLayout expert_workspace_layout(int64_t pairs, int64_t slots, int64_t hidden,
                                              int64_t inter);

// The grouping on the host, stable (a slot's pairs in pair order). The device computes the same
// counts, offsets and tile offsets; its order of pairs within a slot is not fixed (atomics),
// which changes no result: every position is computed independently and combined per row.
struct ExpertGrouping {
  std::vector<int32_t> pair_slot, counts, offsets, tile_offsets, perm, pos_of_pair;
};
// experts: [pairs] expert ids; slot_of_expert: [num_experts], -1 where not held. Ids outside
// [0, num_experts) are not held.
ExpertGrouping group_pairs(const int32_t* experts, int64_t pairs, const int32_t* slot_of_expert,
                           int64_t num_experts, int64_t slots, int tile_rows = kExpertTileRows);

}  // namespace moeflow::kernels::cuda
