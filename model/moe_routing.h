#pragma once
// Top-k softmax gating, the routing rule shared by Mixtral, Qwen2-MoE, OLMoE and DeepSeek-MoE:
// probabilities = softmax(logits) in fp32 over all experts; keep the k largest (ties: lower id);
// optionally renormalise the k weights to sum to one. An elastic budget (model/expert_budget.h)
// may restrict the choice to an allowed set: the weights stay the softmax over all experts (or
// those renormalised over the k chosen), exactly the model's own rule applied to that choice.
#include <cstdint>

namespace moeflow {

// logits: [n, num_experts]; experts/weights: [n, k], best first. allowed: null (every expert) or
// [num_experts] flags, of which at least k are set; only those experts are chosen.
void route_top_k(const float* logits, int64_t n, int64_t num_experts, int64_t k, bool normalize,
                 int32_t* experts, float* weights, const uint8_t* allowed = nullptr);

}  // namespace moeflow
