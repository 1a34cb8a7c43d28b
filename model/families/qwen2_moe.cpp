// Qwen2-MoE (Qwen2MoeForCausalLM): q/k/v biases; a layer is MoE unless listed in mlp_only_layers
// and when (layer + 1) % decoder_sparse_step == 0; a shared expert scaled by
// sigmoid(shared_expert_gate · x); top-k weights renormalised only when norm_topk_prob.
#include <algorithm>

#include "model/model_family.h"

namespace moeflow {
namespace {

class Qwen2Moe final : public ModelFamily {
 public:
  Family id() const override { return Family::qwen2_moe; }
  std::string_view architecture() const override { return "Qwen2MoeForCausalLM"; }

  void read_moe_config(const ConfigReader& r, ModelConfig& cfg) const override {
    cfg.num_experts = r.positive_integer("num_experts");
    cfg.top_k = r.positive_integer("num_experts_per_tok");
    cfg.expert_intermediate = r.positive_integer("moe_intermediate_size");
    cfg.shared_intermediate = r.integer("shared_expert_intermediate_size", 0);
    cfg.shared_expert_gated = cfg.shared_intermediate > 0;
    cfg.norm_topk_prob = r.boolean("norm_topk_prob", false);
    cfg.dense_intermediate = r.positive_integer("intermediate_size");
    cfg.qkv_bias = r.boolean("qkv_bias", true);
    if (r.boolean("use_sliding_window", false))
      r.fail("use_sliding_window", "sliding-window attention is not supported for Qwen2-MoE");
    const int64_t step = r.integer("decoder_sparse_step", 1);
    if (step < 1) r.fail("decoder_sparse_step", "must be at least 1");
    const auto mlp_only = r.integer_list("mlp_only_layers");
    cfg.layer_is_moe.resize(cfg.num_layers);
    for (int64_t l = 0; l < cfg.num_layers; ++l) {
      const bool listed = std::find(mlp_only.begin(), mlp_only.end(), l) != mlp_only.end();
      cfg.layer_is_moe[l] = !listed && cfg.num_experts > 0 && (l + 1) % step == 0;
    }
  }

  std::string router_gate(int64_t layer) const override {
    return layer_prefix(layer) + "mlp.gate.weight";
  }
  MlpNames expert(int64_t layer, int64_t e) const override {
    return proj_names(layer_prefix(layer) + "mlp.experts." + std::to_string(e) + ".");
  }
  MlpNames shared_expert(int64_t layer) const override {
    return proj_names(layer_prefix(layer) + "mlp.shared_expert.");
  }
  std::string shared_expert_gate(int64_t layer) const override {
    return layer_prefix(layer) + "mlp.shared_expert_gate.weight";
  }
};

}  // namespace

const ModelFamily& qwen2_moe_family() {
  static const Qwen2Moe family;
  return family;
}

}  // namespace moeflow
