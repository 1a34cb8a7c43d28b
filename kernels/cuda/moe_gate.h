#pragma once
// Top-k softmax gating on the GPU, one warp per row: the rule of model/moe_routing.h
// (probabilities = softmax(logits) in fp32 over all experts; the k largest, ties to the lower id,
// best first; weights renormalised over the k when `normalize` (norm_topk_prob), else the plain
// softmax probabilities as DeepSeek-MoE uses them). `allowed` (optional, [num_experts] flags)
// ranks allowed experts before the others, as the CPU rule does for an elastic budget.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moeflow::kernels::cuda {

inline constexpr int kGateMaxExperts = 256;  // 8 logits per lane
inline constexpr int kGateMaxTopK = 32;      // one lane per chosen expert

// All pointers are device pointers. logits: [n, num_experts]; experts, weights: [n, k].
// Throws std::invalid_argument for num_experts or k out of range, std::runtime_error when the
// launch fails. Asynchronous on `stream`.
void route_top_k(const float* logits, int64_t n, int num_experts, int k, bool normalize,
                 int32_t* experts, float* weights, cudaStream_t stream,
                 const uint8_t* allowed = nullptr);

}  // namespace moeflow::kernels::cuda
