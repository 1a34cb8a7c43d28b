#pragma once
// Top-k softmax gating, the routing rule shared by Mixtral, Qwen2-MoE, OLMoE and DeepSeek-MoE:
// probabilities = softmax(logits) in fp32 over all experts; keep the k largest (ties: lower id);
// optionally renormalise the k weights to sum to one.
#include <cstdint>

namespace moeflow {

// logits: [n, num_experts]; experts/weights: [n, k], best first.
void route_top_k(const float* logits, int64_t n, int64_t num_experts, int64_t k, bool normalize,
                 int32_t* experts, float* weights);

}  // namespace moeflow
