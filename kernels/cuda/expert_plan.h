#pragma once
// Host-side arithmetic of the GPU expert stage, compiled in every build (nvcc or not): the
// grouping of a batch's (row, choice) pairs by held expert, the workspace layout, the per-slot
// GEMM slices and the argument checks made before anything touches the device.
//
// Grouping: the pairs are numbered pair = row * top_k + choice. A pair whose expert this layer
// holds (slot_of_expert[e] >= 0) gets a position in [0, held pairs): the pairs of slot 0 first,
// then slot 1, ... (a counting sort by slot). The GEMMs work on positions: slot s owns the
// contiguous positions [offsets[s], offsets[s + 1]), one GEMM per non-empty slot.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moeflow::kernels::cuda {

// Byte offsets into one workspace allocation (each 256-byte aligned) and its total size, for
// `pairs` = rows * top_k (an upper bound on the positions).
struct ExpertWorkspaceLayout {
  size_t counts = 0;       // int32 [slots]: held pairs per slot       } written only by the
  size_t offsets = 0;      // int32 [slots + 1]: first position of each } device grouping
  size_t cursors = 0;      // int32 [slots]: scatter cursors            } (expert_group)
  size_t pair_slot = 0;    // int32 [pairs]: slot of each pair, -1      }
  size_t perm = 0;         // int32 [pairs]: pair at each position
  size_t pos_of_pair = 0;  // int32 [pairs]: position of each pair, -1 when not held
  size_t gathered = 0;     // bf16 [pairs, hidden]: x's rows by position (GEMM 1's A)
  size_t gate_up = 0;      // bf16 [pairs, 2 * inter]: gate and up, interleaved per column
  size_t activations = 0;  // bf16 [pairs, inter]: silu(gate) * up (GEMM 2's A)
  size_t expert_out = 0;   // fp32 [pairs, hidden]: each position's expert output
  size_t bytes = 0;        // total
};
ExpertWorkspaceLayout expert_workspace_layout(int64_t pairs, int64_t slots, int64_t hidden,
                                              int64_t inter);

// The grouping on the host, stable (a slot's pairs in pair order). The device grouping
// (expert_group) computes the same counts and offsets; its order of pairs within a slot is not
// fixed (atomics), which changes no result: every position is computed independently and the
// combine sums each row's choices in choice order.
struct ExpertGrouping {
  std::vector<int32_t> pair_slot, counts, offsets, perm, pos_of_pair;
};
// experts: [pairs] expert ids; slot_of_expert: [num_experts], -1 where not held. Ids outside
// [0, num_experts) and slots outside [0, slots) are not held.
ExpertGrouping group_pairs(const int32_t* experts, int64_t pairs, const int32_t* slot_of_expert,
                           int64_t num_experts, int64_t slots);

// One GEMM of the stage: the `rows` positions from `first_position` on, all routed to `slot`.
struct ExpertGemmSlice {
  int64_t slot = 0;
  int64_t first_position = 0;
  int64_t rows = 0;
};

// What expert_stage runs, decided on the host from the per-slot counts.
struct ExpertStagePlan {
  ExpertWorkspaceLayout layout;
  std::vector<ExpertGemmSlice> slices;  // the non-empty slots, in slot order
  int64_t positions = 0;                // held pairs: sum of the counts
};

// --- the small-batch path (kernels/cuda/expert_small_batch.h) -------------------------------
// At most this many (row, choice) pairs take the small-batch path. Why 64: it covers decode
// batches of up to 32 rows at top-2 (issue 8's decode sizes are 1-16); it bounds the one-block
// device grouping (one thread per pair, O(pairs²) shared-memory compares); and the GEMV does
// one fp32 FMA per pair of an expert for each bf16 weight element it streams, so it stays
// memory-bound while an expert has up to ~8-14 pairs (an H200 issues ~33 T fp32 FMA/s against
// ~2.4 T bf16 weights/s from HBM) - 64 pairs spread over 8 experts is 8 each. Past that, the
// tensor cores of the cuBLAS path win even with its per-layer count copy and wait.
inline constexpr int64_t kSmallBatchPairsMax = 64;

// Whether expert_stage_device_routed takes the small-batch path for n rows of top_k choices:
// n * top_k <= kSmallBatchPairsMax (n >= 0, top_k >= 1; false for a bad shape).
bool expert_stage_takes_small_batch(int64_t n, int64_t top_k);

// Byte offsets into the small-batch path's workspace (each 256-byte aligned), for n rows of
// top_k choices (pairs = n * top_k). Positions are as in the cuBLAS path: held pairs sorted by
// slot (stable), so the combine is the same.
struct SmallBatchWorkspaceLayout {
  size_t pos_of_pair = 0;  // int32 [pairs]: position of each pair, -1 when not held
  size_t perm = 0;         // int32 [pairs]: pair at each position
  size_t group_slot = 0;   // int32 [pairs]: the touched slots, ascending
  size_t group_start = 0;  // int32 [pairs + 1]: first position of each touched slot, then held
  size_t group_count = 0;  // int32 [1]: how many slots are touched
  size_t rows_bf16 = 0;    // bf16 [n, hidden]: x rounded once (the GEMV's input for gate_up)
  size_t activations = 0;  // bf16 [pairs, inter]: silu(gate) * up by position
  size_t expert_out = 0;   // fp32 [pairs, hidden]: each position's expert output
  size_t bytes = 0;        // total
};
SmallBatchWorkspaceLayout small_batch_workspace_layout(int64_t n, int64_t top_k, int64_t hidden,
                                                       int64_t inter);

// Checks the small-batch path's arguments and returns its layout. Throws std::invalid_argument
// "expert_stage_small_batch: ..." for a bad shape, more than kSmallBatchPairsMax pairs, or a
// workspace too small or not 256-byte aligned (with n = 0 only the shape is checked).
SmallBatchWorkspaceLayout plan_small_batch_stage(int64_t num_experts, int64_t slots, int64_t hidden,
                                                 int64_t inter, int64_t n, int64_t top_k,
                                                 const void* workspace, size_t workspace_bytes);

// Checks the arguments of expert_stage and plans it. counts: HOST [slots] held pairs per slot.
// Throws std::invalid_argument saying what is wrong (shape, counts, workspace size or
// alignment, a dimension beyond cuBLAS's int range) before any device work. With n = 0 only
// the shape is checked (an empty plan: nothing to do).
ExpertStagePlan plan_expert_stage(int64_t slots, int64_t hidden, int64_t inter, int64_t n,
                                  int64_t top_k, const int32_t* counts, const void* workspace,
                                  size_t workspace_bytes);

}  // namespace moeflow::kernels::cuda
