#pragma once
// The expert stage on one GPU, for one layer: the rows of a batch, each with its top-k expert
// ids and routing weights, in; per row the weighted sum of its held experts' SwiGLU outputs out
// (the CPU reference is model/expert_stage.h). Steps, all on the device and on one stream:
//   group   count the (row, choice) pairs per held expert, prefix sums, scatter (expert_plan.h)
//   gate_up tile-grouped GEMM over positions: rows gathered from x (fp32 -> bf16 in the load)
//           times each expert's gate and up weights, fp32 accumulation, silu(gate) * up -> bf16
//   down    tile-grouped GEMM: activations times the expert's down weights -> fp32
//   combine out[row] = sum over its held choices of weight * expert output, in choice order
// Knows nothing of actors, models or networks: plain functions over device pointers.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/expert_plan.h"

namespace moeflow::kernels::cuda {

// One layer's held experts on the device, bf16 as Hugging Face stores them. All device pointers.
struct ExpertLayerView {
  const uint16_t* gate = nullptr;           // [slots, inter, hidden] (w1 / gate_proj)
  const uint16_t* up = nullptr;             // [slots, inter, hidden] (w3 / up_proj)
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
  size_t bytes() const { return bytes_; }

 private:
  ExpertLayerView view_;
  void* weights_ = nullptr;  // gate, up, down, then the slot map
  size_t bytes_ = 0;
};

// Bytes of workspace expert_stage needs for `n` rows of `top_k` choices.
inline size_t expert_stage_workspace_bytes(const ExpertLayerView& w, int64_t n, int64_t top_k) {
  return expert_workspace_layout(n * top_k, w.slots, w.hidden, w.inter).bytes;
}

// x: [n, hidden] fp32; experts, weights: [n, top_k]; out: [n, hidden] fp32, overwritten (rows
// whose choices are all elsewhere get zeros). workspace: at least
// expert_stage_workspace_bytes(w, n, top_k) bytes, 256-byte aligned. All device pointers.
// Asynchronous on `stream`; throws std::invalid_argument on bad shapes, std::runtime_error when
// a launch fails.
void expert_stage(const ExpertLayerView& w, const float* x, int64_t n, int64_t top_k,
                  const int32_t* experts, const float* weights, float* out, void* workspace,
                  size_t workspace_bytes, cudaStream_t stream);

// The grouping step alone (the first step of expert_stage), for tests: fills the workspace's
// counts, offsets, tile_offsets, pair_slot, perm and pos_of_pair (see ExpertWorkspaceLayout).
void expert_group(const ExpertLayerView& w, int64_t pairs, const int32_t* experts, void* workspace,
                  size_t workspace_bytes, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
