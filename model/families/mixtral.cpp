// Mixtral (MixtralForCausalLM): every layer is MoE; softmax over all experts, top-k, and the k
// weights renormalised to sum to one. Experts are named w1 (gate), w3 (up), w2 (down).
#include "model/model_family.h"

namespace moeflow {
namespace {

class Mixtral final : public ModelFamily {
 public:
  Family id() const override { return Family::mixtral; }
  std::string_view architecture() const override { return "MixtralForCausalLM"; }

  void read_moe_config(const ConfigReader& r, ModelConfig& cfg) const override {
    cfg.num_experts = r.positive_integer("num_local_experts");
    cfg.top_k = r.positive_integer("num_experts_per_tok");
    cfg.expert_intermediate = r.positive_integer("intermediate_size");
    cfg.norm_topk_prob = true;
    cfg.sliding_window = r.integer("sliding_window", 0);
    cfg.layer_is_moe.assign(cfg.num_layers, true);
  }

  std::string router_gate(int64_t layer) const override {
    return layer_prefix(layer) + "block_sparse_moe.gate.weight";
  }

  MlpNames expert(int64_t layer, int64_t e) const override {
    const std::string p =
        layer_prefix(layer) + "block_sparse_moe.experts." + std::to_string(e) + ".";
    return {p + "w1.weight", p + "w3.weight", p + "w2.weight"};
  }
};

}  // namespace

const ModelFamily& mixtral_family() {
  static const Mixtral family;
  return family;
}

}  // namespace moeflow
