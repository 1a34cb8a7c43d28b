// OLMoE (OlmoeForCausalLM): RMSNorm over the whole q and k projections before rotary; optional
// clip_qkv; every layer is MoE; top-k weights renormalised only when norm_topk_prob.
#include "model/model_family.h"

namespace moeflow {
namespace {

class Olmoe final : public ModelFamily {
 public:
  Family id() const override { return Family::olmoe; }
  std::string_view architecture() const override { return "OlmoeForCausalLM"; }

  void read_moe_config(const ConfigReader& r, ModelConfig& cfg) const override {
    cfg.num_experts = r.positive_integer("num_experts");
    cfg.top_k = r.positive_integer("num_experts_per_tok");
    cfg.expert_intermediate = r.positive_integer("intermediate_size");
    cfg.norm_topk_prob = r.boolean("norm_topk_prob", false);
    cfg.qk_norm = true;
    cfg.clip_qkv = static_cast<float>(r.number("clip_qkv", 0.0));
    if (cfg.clip_qkv < 0) r.fail("clip_qkv", "must be positive");
    cfg.layer_is_moe.assign(cfg.num_layers, true);
  }

  std::string router_gate(int64_t layer) const override {
    return layer_prefix(layer) + "mlp.gate.weight";
  }
  MlpNames expert(int64_t layer, int64_t e) const override {
    return proj_names(layer_prefix(layer) + "mlp.experts." + std::to_string(e) + ".");
  }
};

}  // namespace

const ModelFamily& olmoe_family() {
  static const Olmoe family;
  return family;
}

}  // namespace moeflow
