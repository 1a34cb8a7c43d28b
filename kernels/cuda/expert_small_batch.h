#pragma once
// The expert stage for decode-sized batches (at most kSmallBatchPairsMax (row, choice) pairs)
// with the routing on the device, and no host synchronisation: the cuBLAS path
// (expert_stage_device_routed's other branch) must copy per-slot row counts to the host and
// wait for them, because cuBLAS takes each GEMM's shape from the host. Here every shape the
// kernels need is read on the device, so the whole stage is four launches queued on the stream:
//   prepare  x -> bf16 once per row; one block groups the pairs by held slot (stable, as
//            group_pairs: the same positions as the cuBLAS path) and lists the touched slots;
//            adds each held pair to expert_pairs (the caller's per-expert statistic)
//   gate_up  GEMV over each touched slot's interleaved [2 * inter, hidden] rows: every weight
//            byte read once per pass of up to 8 of the slot's pairs, fp32 accumulation, gate and
//            up rounded to bf16 (as cuBLAS's bf16 output), SwiGLU in fp32, bf16 activations
//   down     GEMV over the slot's [hidden, inter] rows: fp32 expert outputs
//   combine  expert_combine (expert_combine.h), as the cuBLAS path
// Same contract and same roundings as expert_stage (x, gate, up and the activations rounded to
// bf16 where cuBLAS's operands and outputs are), so the two paths differ only by fp32 summation
// order. Knows nothing of actors, models or networks.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/expert_plan.h"
#include "kernels/cuda/expert_stage.h"

namespace moeflow::kernels::cuda {

// Bytes of workspace expert_stage_small_batch needs for `n` rows of `top_k` choices.
inline size_t expert_stage_small_batch_workspace_bytes(const ExpertLayerView& w, int64_t n,
                                                       int64_t top_k) {
  return small_batch_workspace_layout(n, top_k, w.hidden, w.inter).bytes;
}

// x: [n, hidden] fp32; experts: [n, top_k] expert ids (ids outside [0, num_experts) and experts
// not held count as not held: they contribute nothing); weights: [n, top_k]; out: [n, hidden]
// fp32, overwritten (zeros for a row with no held choice). expert_pairs: null, or [num_experts]
// int32 to which each held pair adds one at its expert (atomics; the order does not matter for a
// sum of integers). workspace: expert_stage_small_batch_workspace_bytes(w, n, top_k) bytes,
// 256-byte aligned. All device pointers. n * top_k <= kSmallBatchPairsMax. Asynchronous on
// `stream`, nothing read back; throws std::invalid_argument on bad arguments (before any device
// work), std::runtime_error when a launch fails.
void expert_stage_small_batch(const ExpertLayerView& w, const float* x, int64_t n, int64_t top_k,
                              const int32_t* experts, const float* weights, float* out,
                              void* workspace, size_t workspace_bytes, int32_t* expert_pairs,
                              cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
