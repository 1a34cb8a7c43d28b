#pragma once
// The expert stage on one GPU, for one layer: the rows of a batch, each with its top-k expert
// ids and routing weights, in; per row the weighted sum of its held experts' SwiGLU outputs out
// (the CPU reference is model/expert_stage.h). Steps, all on one stream:
//   group    (row, choice) pairs sorted by held slot: on the host (group_pairs, the usual case)
//            or on the device (expert_group) - see ExpertRouting
//   gather   x's rows by position, fp32 -> bf16, into a contiguous [positions, hidden] matrix
//   gate_up  one cuBLAS GEMM per non-empty slot: rows x [2 * inter, hidden]ᵀ -> bf16
//   swiglu   silu(gate) * up -> bf16 [positions, inter]
//   down     one cuBLAS GEMM per non-empty slot: activations x [hidden, inter]ᵀ -> fp32
//   combine  out[row] = sum over its held choices of weight * expert output, in choice order
//            (expert_combine.h)
// For decode-sized batches with device routing, expert_small_batch.h runs the same contract as
// GEMVs without any host synchronisation; expert_stage_device_routed picks between the two.
// The GEMMs are cuBLAS's (bf16 operands, fp32 accumulation); the memory-bound steps are ours.
// Knows nothing of actors, models or networks: plain functions over device pointers.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cublas_api.h"
#include "kernels/cuda/expert_plan.h"

namespace moeflow::kernels::cuda {

// One layer's held experts on the device, bf16. All device pointers.
struct ExpertLayerView {
  // [slots, 2 * inter, hidden]: row 2i is gate row i (w1 / gate_proj), row 2i + 1 is up row i
  // (w3 / up_proj), so one GEMM makes both and column 2i, 2i + 1 of its output sit together.
  const uint16_t* gate_up = nullptr;
  const uint16_t* down = nullptr;           // [slots, hidden, inter] (w2 / down_proj)
  const int32_t* slot_of_expert = nullptr;  // [num_experts]: slot, or -1 when not held
  int64_t num_experts = 0;                  // experts of the layer (the routing's id range)
  int64_t slots = 0;                        // experts held here
  int64_t hidden = 0, inter = 0;
};

// One held expert's host weights (bf16 bit patterns, row-major as in the checkpoint).
struct HostExpert {
  int32_t expert = 0;
  const uint16_t* gate = nullptr;  // [inter, hidden]
  const uint16_t* up = nullptr;    // [inter, hidden]
  const uint16_t* down = nullptr;  // [hidden, inter]
};

// Owns the device copies of one layer's held experts, on the device current at construction.
class ExpertLayer {
 public:
  ExpertLayer(int64_t num_experts, int64_t hidden, int64_t inter,
              const std::vector<HostExpert>& held);
  ~ExpertLayer();
  ExpertLayer(const ExpertLayer&) = delete;
  ExpertLayer& operator=(const ExpertLayer&) = delete;

  const ExpertLayerView& view() const { return view_; }
  // The slot map on the host, for group_pairs: [num_experts], -1 when not held.
  const std::vector<int32_t>& slot_of_expert() const { return slot_of_; }
  size_t bytes() const { return bytes_; }

 private:
  ExpertLayerView view_;
  std::vector<int32_t> slot_of_;
  void* weights_ = nullptr;  // gate_up, down, then the slot map
  size_t bytes_ = 0;
};

// Bytes of workspace expert_stage needs for `n` rows of `top_k` choices.
inline size_t expert_stage_workspace_bytes(const ExpertLayerView& w, int64_t n, int64_t top_k) {
  return expert_workspace_layout(n * top_k, w.slots, w.hidden, w.inter).bytes;
}

// The grouping expert_stage consumes. cuBLAS takes each GEMM's row count from the host, so the
// counts live there; a caller with the routing on the device uses expert_stage_device_routed.
struct ExpertRouting {
  const int32_t* counts = nullptr;       // HOST [slots]: held pairs per slot
  const int32_t* perm = nullptr;         // device [positions]: pair at each position, by slot
  const int32_t* pos_of_pair = nullptr;  // device [n * top_k]: position of each pair, -1 if none
};

// x: [n, hidden] fp32; weights: [n, top_k]; out: [n, hidden] fp32, overwritten (rows whose
// choices are all elsewhere get zeros). workspace: at least expert_stage_workspace_bytes(w, n,
// top_k) bytes, 256-byte aligned. All device pointers but routing.counts. perm and pos_of_pair
// may lie in the workspace's own perm and pos_of_pair regions (expert_workspace_layout).
// Asynchronous on `stream` (the host counts are read before it returns); throws
// std::invalid_argument on bad arguments (before any device work), std::runtime_error when a
// launch or a cuBLAS call fails.
void expert_stage(const ExpertLayerView& w, const CublasHandle& blas, const float* x, int64_t n,
                  int64_t top_k, const ExpertRouting& routing, const float* weights, float* out,
                  void* workspace, size_t workspace_bytes, cudaStream_t stream);

// The device grouping: fills the workspace's counts, offsets, pair_slot, perm and pos_of_pair
// from device expert ids [pairs] (see ExpertWorkspaceLayout). expert_pairs: null, or device
// [num_experts] int32 to which each held pair adds one at its expert. Asynchronous on `stream`.
void expert_group(const ExpertLayerView& w, int64_t pairs, const int32_t* experts, void* workspace,
                  size_t workspace_bytes, int32_t* expert_pairs, cudaStream_t stream);

// The cuBLAS path for a caller whose expert ids are on the device: expert_group, then the one
// device-to-host copy of the counts into `counts_host` ([slots]; pinned memory makes it cheaper)
// and a synchronisation of `stream` - the price of cuBLAS's host-side shapes - then expert_stage
// on the workspace's perm and pos_of_pair. Returns after queuing the stage (asynchronous again).
// Workspace: expert_stage_workspace_bytes(w, n, top_k); expert_pairs as for expert_group.
void expert_stage_device_routed_cublas(const ExpertLayerView& w, const CublasHandle& blas,
                                       const float* x, int64_t n, int64_t top_k,
                                       const int32_t* experts, const float* weights, float* out,
                                       void* workspace, size_t workspace_bytes,
                                       int32_t* counts_host, int32_t* expert_pairs,
                                       cudaStream_t stream);

// Bytes of workspace expert_stage_device_routed needs: the small-batch path's or the cuBLAS
// path's, whichever it takes for this shape (never more than expert_stage_workspace_bytes).
size_t expert_stage_device_routed_workspace_bytes(const ExpertLayerView& w, int64_t n,
                                                  int64_t top_k);

enum class DeviceRoutedPath { small_batch, cublas };

// The expert stage on device routing (experts: device [n, top_k] ids). Up to
// kSmallBatchPairsMax pairs: expert_stage_small_batch (expert_small_batch.h) - nothing copied
// to the host, no synchronisation, counts_host untouched (may be null). Beyond: the cuBLAS path
// (expert_stage_device_routed_cublas), which waits once for the counts. Either way each held
// pair adds one to expert_pairs[expert] (when not null) on the device, so a caller's per-expert
// statistic needs no host copy per call. Returns the path taken.
DeviceRoutedPath expert_stage_device_routed(const ExpertLayerView& w, const CublasHandle& blas,
                                            const float* x, int64_t n, int64_t top_k,
                                            const int32_t* experts, const float* weights,
                                            float* out, void* workspace, size_t workspace_bytes,
                                            int32_t* counts_host, int32_t* expert_pairs,
                                            cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
