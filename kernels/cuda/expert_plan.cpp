#include "kernels/cuda/expert_plan.h"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

namespace moeflow::kernels::cuda {
namespace {

size_t align_up(size_t v) {
  return (v + 255) & ~size_t{255};
}

// Lays regions out one after another in a workspace, each starting 256-byte aligned.
struct RegionCursor {
  size_t at = 0;
  size_t take(size_t bytes) {
    const size_t start = at;
    at = align_up(at + bytes);
    return start;
  }
};

// A shape value as a size: negative ones (refused later by the plan) count as 0.
size_t size_of(int64_t v) {
  return static_cast<size_t>(std::max<int64_t>(v, 0));
}

[[noreturn]] void refuse(const std::string& why) {
  throw std::invalid_argument("expert_stage: " + why);
}

[[noreturn]] void refuse_small(const std::string& why) {
  throw std::invalid_argument("expert_stage_small_batch: " + why);
}

}  // namespace

ExpertWorkspaceLayout expert_workspace_layout(int64_t pairs, int64_t slots, int64_t hidden,
                                              int64_t inter) {
  ExpertWorkspaceLayout l;
  RegionCursor c;
  auto take = [&c](size_t bytes) { return c.take(bytes); };
  const size_t s = size_of(slots), p = size_of(pairs), h = size_of(hidden), i = size_of(inter);
  l.counts = take(4 * s);
  l.offsets = take(4 * (s + 1));
  l.cursors = take(4 * s);
  l.pair_slot = take(4 * p);
  l.perm = take(4 * p);
  l.pos_of_pair = take(4 * p);
  l.gathered = take(2 * p * h);
  l.gate_up = take(2 * p * 2 * i);
  l.activations = take(2 * p * i);
  l.expert_out = take(4 * p * h);
  l.bytes = c.at;
  return l;
}

ExpertGrouping group_pairs(const int32_t* experts, int64_t pairs, const int32_t* slot_of_expert,
                           int64_t num_experts, int64_t slots) {
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
  for (int64_t s = 0; s < slots; ++s) g.offsets[s + 1] = g.offsets[s] + g.counts[s];
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

ExpertStagePlan plan_expert_stage(int64_t slots, int64_t hidden, int64_t inter, int64_t n,
                                  int64_t top_k, const int32_t* counts, const void* workspace,
                                  size_t workspace_bytes) {
  if (n < 0 || top_k < 1 || hidden < 1 || inter < 1 || slots < 0)
    refuse("bad shape (n " + std::to_string(n) + ", top_k " + std::to_string(top_k) + ", hidden " +
           std::to_string(hidden) + ", inter " + std::to_string(inter) + ", slots " +
           std::to_string(slots) + ")");
  // cuBLAS takes int dimensions and leading dimensions: rows, hidden and 2 * inter must fit.
  const int64_t pairs = n * top_k;
  if (pairs > INT_MAX || hidden > INT_MAX || 2 * inter > INT_MAX)
    refuse("dimension beyond cuBLAS's int range (pairs " + std::to_string(pairs) + ", hidden " +
           std::to_string(hidden) + ", 2 * inter " + std::to_string(2 * inter) + ")");
  ExpertStagePlan plan;
  if (n == 0) return plan;  // nothing will be read or written
  if (slots > 0 && !counts) refuse("no host counts for " + std::to_string(slots) + " slots");
  for (int64_t s = 0; s < slots; ++s) {
    if (counts[s] < 0) refuse("slot " + std::to_string(s) + " has a negative count");
    if (counts[s] == 0) continue;
    plan.slices.push_back({s, plan.positions, counts[s]});
    plan.positions += counts[s];
  }
  if (plan.positions > pairs)
    refuse("counts add up to " + std::to_string(plan.positions) + " positions, more than the " +
           std::to_string(pairs) + " pairs of " + std::to_string(n) + " rows x top-" +
           std::to_string(top_k));
  plan.layout = expert_workspace_layout(pairs, slots, hidden, inter);
  if (workspace_bytes < plan.layout.bytes)
    refuse("workspace of " + std::to_string(workspace_bytes) + " bytes, " +
           std::to_string(plan.layout.bytes) + " needed");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0) refuse("workspace not 256-byte aligned");
  return plan;
}

bool expert_stage_takes_small_batch(int64_t n, int64_t top_k) {
  // Each factor bounded first, so that n * top_k cannot overflow.
  return n >= 0 && top_k >= 1 && n <= kSmallBatchPairsMax && top_k <= kSmallBatchPairsMax &&
         n * top_k <= kSmallBatchPairsMax;
}

SmallBatchWorkspaceLayout small_batch_workspace_layout(int64_t n, int64_t top_k, int64_t hidden,
                                                       int64_t inter) {
  SmallBatchWorkspaceLayout l;
  RegionCursor c;
  auto take = [&c](size_t bytes) { return c.take(bytes); };
  const size_t rows = size_of(n), p = rows * size_of(top_k), h = size_of(hidden),
               i = size_of(inter);
  l.pos_of_pair = take(4 * p);
  l.perm = take(4 * p);
  l.group_slot = take(4 * p);
  l.group_start = take(4 * (p + 1));
  l.group_count = take(4);
  l.rows_bf16 = take(2 * rows * h);
  l.activations = take(2 * p * i);
  l.expert_out = take(4 * p * h);
  l.bytes = c.at;
  return l;
}

SmallBatchWorkspaceLayout plan_small_batch_stage(int64_t num_experts, int64_t slots, int64_t hidden,
                                                 int64_t inter, int64_t n, int64_t top_k,
                                                 const void* workspace, size_t workspace_bytes) {
  if (n < 0 || top_k < 1 || hidden < 1 || inter < 1 || slots < 0 || num_experts < 1)
    refuse_small("bad shape (n " + std::to_string(n) + ", top_k " + std::to_string(top_k) +
                 ", hidden " + std::to_string(hidden) + ", inter " + std::to_string(inter) +
                 ", slots " + std::to_string(slots) + ", experts " + std::to_string(num_experts) +
                 ")");
  if (!expert_stage_takes_small_batch(n, top_k))
    refuse_small(std::to_string(n) + " rows x top-" + std::to_string(top_k) + " is more than " +
                 std::to_string(kSmallBatchPairsMax) + " (row, choice) pairs (use expert_stage)");
  const SmallBatchWorkspaceLayout l = small_batch_workspace_layout(n, top_k, hidden, inter);
  if (n == 0) return l;
  if (workspace_bytes < l.bytes)
    refuse_small("workspace of " + std::to_string(workspace_bytes) + " bytes, " +
                 std::to_string(l.bytes) + " needed");
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    refuse_small("workspace not 256-byte aligned");
  return l;
}

}  // namespace moeflow::kernels::cuda
