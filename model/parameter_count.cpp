#include "model/parameter_count.h"

namespace moeflow {

ParameterCount count_parameters(const ModelConfig& c) {
  ParameterCount p;
  const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  p.embedding = c.vocab_size * d * (c.tie_word_embeddings ? 1 : 2);
  int64_t common = p.embedding + d;  // + final norm
  int64_t routed = 0, active_routed = 0;
  const int64_t expert = 3 * d * c.expert_intermediate;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    common += 2 * d + d * q + 2 * d * kv + q * d;
    if (c.qkv_bias) common += q + 2 * kv;
    if (c.qk_norm) common += q + kv;
    if (c.layer_is_moe[l]) {
      common += c.num_experts * d + 3 * d * c.shared_intermediate + (c.shared_expert_gated ? d : 0);
      routed += c.num_experts * expert;
      active_routed += c.top_k * expert;
    } else {
      common += 3 * d * c.dense_intermediate;
    }
  }
  p.total = common + routed;
  p.active = common + active_routed;
  p.routed_experts = routed;
  return p;
}

}  // namespace moeflow
