#include "kernels/cuda/expert_plan.h"

#include <algorithm>

namespace moeflow::kernels::cuda {
namespace {

size_t align_up(size_t v) {
  return (v + 255) & ~size_t{255};
}

}  // namespace

int64_t expert_tiles_max(int64_t pairs, int64_t slots, int tile_rows) {
  if (pairs <= 0 || slots <= 0) return 0;
  // Each slot with c > 0 pairs has ceil(c / BM) <= c / BM + 1 tiles, and at most min(slots,
  // pairs) slots have any; nor can there be more tiles than pairs.
  return std::min(pairs, (pairs + tile_rows - 1) / tile_rows + std::min(slots, pairs));
}

ExpertWorkspaceLayout expert_workspace_layout(int64_t pairs, int64_t slots, int64_t hidden,
                                              int64_t inter) {
  ExpertWorkspaceLayout l;
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t start = at;
    at = align_up(at + bytes);
    return start;
  };
  const size_t s = static_cast<size_t>(std::max<int64_t>(slots, 0));
  const size_t p = static_cast<size_t>(std::max<int64_t>(pairs, 0));
  l.counts = take(4 * s);
  l.offsets = take(4 * (s + 1));
  l.tile_offsets = take(4 * (s + 1));
  l.cursors = take(4 * s);
  l.pair_slot = take(4 * p);
  l.perm = take(4 * p);
  l.pos_of_pair = take(4 * p);
  l.activations = take(2 * p * static_cast<size_t>(inter));
  l.expert_out = take(4 * p * static_cast<size_t>(hidden));
  l.bytes = at;
  return l;
}

ExpertGrouping group_pairs(const int32_t* experts, int64_t pairs, const int32_t* slot_of_expert,
                           int64_t num_experts, int64_t slots, int tile_rows) {
  ExpertGrouping g;
  g.pair_slot.assign(pairs, -1);
  g.counts.assign(slots, 0);
  for (int64_t p = 0; p < pairs; ++p) {
    const int32_t e = experts[p];
    const int32_t s = e >= 0 && e < num_experts ? slot_of_expert[e] : -1;
    if (s < 0 || s >= slots) continue;
    g.pair_slot[p] = s;
    ++g.counts[s];
  }
  g.offsets.assign(slots + 1, 0);
  g.tile_offsets.assign(slots + 1, 0);
  for (int64_t s = 0; s < slots; ++s) {
    g.offsets[s + 1] = g.offsets[s] + g.counts[s];
    g.tile_offsets[s + 1] = g.tile_offsets[s] + (g.counts[s] + tile_rows - 1) / tile_rows;
  }
  g.perm.assign(g.offsets[slots], -1);
  g.pos_of_pair.assign(pairs, -1);
  std::vector<int32_t> cursor(g.offsets.begin(), g.offsets.end() - 1);
  for (int64_t p = 0; p < pairs; ++p) {
    const int32_t s = g.pair_slot[p];
    if (s < 0) continue;
    const int32_t pos = cursor[s]++;
    g.perm[pos] = static_cast<int32_t>(p);
    g.pos_of_pair[p] = pos;
  }
  return g;
}

}  // namespace moeflow::kernels::cuda
