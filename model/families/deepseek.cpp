// DeepSeek-MoE V1 (DeepseekForCausalLM, e.g. deepseek-moe-16b): fine-grained routed experts plus
// n_shared_experts always-on experts stored as one MLP of n_shared * moe_intermediate_size; the
// first `first_k_dense_replace` layers and layers with layer % moe_layer_freq != 0 are dense;
// softmax top-k weights are used as they are unless norm_topk_prob.
#include "model/model_family.h"

namespace moeflow {
namespace {

class Deepseek final : public ModelFamily {
 public:
  Family id() const override { return Family::deepseek; }
  std::string_view architecture() const override { return "DeepseekForCausalLM"; }

  void read_moe_config(const ConfigReader& r, ModelConfig& cfg) const override {
    cfg.num_experts = r.positive_integer("n_routed_experts");
    cfg.top_k = r.positive_integer("num_experts_per_tok");
    cfg.expert_intermediate = r.positive_integer("moe_intermediate_size");
    cfg.shared_intermediate = r.integer("n_shared_experts", 0) * cfg.expert_intermediate;
    cfg.norm_topk_prob = r.boolean("norm_topk_prob", false);
    cfg.dense_intermediate = r.positive_integer("intermediate_size");
    if (r.string("scoring_func", "softmax") != "softmax")
      r.fail("scoring_func",
             "only \"softmax\" is supported, got \"" + r.string("scoring_func") + "\"");
    const int64_t first_dense = r.integer("first_k_dense_replace", 0);
    const int64_t freq = r.integer("moe_layer_freq", 1);
    if (freq < 1) r.fail("moe_layer_freq", "must be at least 1");
    cfg.layer_is_moe.resize(cfg.num_layers);
    for (int64_t l = 0; l < cfg.num_layers; ++l)
      cfg.layer_is_moe[l] = l >= first_dense && l % freq == 0;
  }

  std::string router_gate(int64_t layer) const override {
    return layer_prefix(layer) + "mlp.gate.weight";
  }
  MlpNames expert(int64_t layer, int64_t e) const override {
    return proj_names(layer_prefix(layer) + "mlp.experts." + std::to_string(e) + ".");
  }
  MlpNames shared_expert(int64_t layer) const override {
    return proj_names(layer_prefix(layer) + "mlp.shared_experts.");
  }
};

}  // namespace

const ModelFamily& deepseek_family() {
  static const Deepseek family;
  return family;
}

}  // namespace moeflow
