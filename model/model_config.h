#pragma once
// The architecture of a checkpoint, read from its `config.json` into one plain struct that covers
// every supported family. Values the engine cannot honour are refused when reading, naming them.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moeflow {

enum class Family : uint8_t { mixtral, qwen2_moe, olmoe, deepseek };

struct ModelConfig {
  Family family = Family::mixtral;
  std::string architecture;  // e.g. "MixtralForCausalLM"
  std::string model_type;    // e.g. "mixtral"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  int64_t sliding_window = 0;  // 0: none
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections have biases (Qwen2-MoE)
  bool qk_norm = false;   // RMSNorm on the q and k projections (OLMoE)
  float clip_qkv = 0.0f;  // 0: none (OLMoE option)

  // Routed experts.
  int64_t num_experts = 0;
  int64_t top_k = 0;
  int64_t expert_intermediate = 0;
  bool norm_topk_prob = false;  // renormalise the top-k softmax weights to sum to one
  // Always-on shared expert(s), as one SwiGLU MLP; 0 when the family has none.
  int64_t shared_intermediate = 0;
  bool shared_expert_gated = false;  // Qwen2-MoE: output scaled by sigmoid(x · w_gate)
  // Dense MLP layers (where the family has them).
  int64_t dense_intermediate = 0;
  std::vector<bool> layer_is_moe;  // per layer

  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;

  int64_t moe_layer_count() const;
};

// Reads and validates `<dir>/config.json`. Throws moeflow::Error naming the file and the field.
ModelConfig load_model_config(const std::filesystem::path& dir);

// Same, from the JSON text; `source` names it in errors.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

std::string family_name(Family family);

}  // namespace moeflow
