#pragma once
// What differs between the supported MoE families: the config keys of their MoE blocks and the
// published names of their tensors. One implementation per family in model/families/.
#include <string>
#include <string_view>
#include <vector>

#include "model/config_reader.h"
#include "model/model_config.h"

namespace moeflow {

struct MlpNames {
  std::string gate, up, down;  // SwiGLU: down(silu(gate(x)) * up(x))
};

class ModelFamily {
 public:
  virtual ~ModelFamily() = default;
  virtual Family id() const = 0;
  virtual std::string_view architecture() const = 0;  // "MixtralForCausalLM"
  // Reads the family's MoE keys into cfg (the common transformer keys are already read) and
  // refuses values the engine cannot honour.
  virtual void read_moe_config(const ConfigReader& reader, ModelConfig& cfg) const = 0;
  virtual std::string router_gate(int64_t layer) const = 0;
  virtual MlpNames expert(int64_t layer, int64_t expert) const = 0;
  virtual MlpNames shared_expert(int64_t /*layer*/) const { return {}; }
  virtual std::string shared_expert_gate(int64_t /*layer*/) const { return {}; }
};

// "model.layers.<layer>."
std::string layer_prefix(int64_t layer);
// The dense SwiGLU MLP of a non-MoE layer: "model.layers.<layer>.mlp.{gate,up,down}_proj.weight".
MlpNames dense_mlp_names(int64_t layer);
// "<prefix>{gate,up,down}_proj.weight"
MlpNames proj_names(const std::string& prefix);

// Throws naming the architecture and listing the supported ones.
const ModelFamily& family_for_architecture(const std::string& architecture,
                                           const std::string& source);
const ModelFamily& family_of(Family family);
std::vector<std::string_view> supported_architectures();

// The families, defined in model/families/.
const ModelFamily& mixtral_family();
const ModelFamily& qwen2_moe_family();
const ModelFamily& olmoe_family();
const ModelFamily& deepseek_family();

}  // namespace moeflow
