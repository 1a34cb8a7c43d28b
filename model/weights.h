#pragma once
// The model's weights, split the way the pipeline splits the work: what the router stage needs
// (embeddings, attention, norms, gates, shared/dense MLPs, LM head) and the routed experts, which
// an expert stage may hold only a subset of.
//
// Matrices are views: straight into the memory-mapped checkpoint when its dtype is the compute
// type, else into converted copies owned by a WeightStore. Norms, biases and router gates are
// always fp32 (router math is fp32).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "model/checkpoint.h"
#include "model/model_config.h"

namespace moeflow {

enum class ComputeType : uint8_t { f32, bf16 };
std::string compute_type_name(ComputeType t);
// "f32" | "bf16" | "auto"; auto picks bf16 for bf16 checkpoints, f32 otherwise.
ComputeType parse_compute_type(const std::string& name, const Checkpoint& checkpoint,
                               const ModelConfig& cfg);

// Owns converted copies of tensors for the lifetime of the weights that view them.
class WeightStore {
 public:
  kernels::Matrix matrix(const TensorInfo& t, ComputeType type);  // t must be 2-D
  std::vector<float> vector_f32(const TensorInfo& t);
  size_t owned_bytes() const { return owned_bytes_; }

 private:
  std::vector<std::unique_ptr<std::byte[]>> buffers_;
  size_t owned_bytes_ = 0;
};

struct MlpWeights {
  kernels::Matrix gate, up, down;
  int64_t bytes() const { return gate.bytes() + up.bytes() + down.bytes(); }
  bool empty() const { return gate.empty(); }
};

struct AttentionWeights {
  kernels::Matrix q, k, v, o;
  std::vector<float> q_bias, k_bias, v_bias;  // empty unless cfg.qkv_bias
  std::vector<float> q_norm, k_norm;          // empty unless cfg.qk_norm
};

struct LayerWeights {
  std::vector<float> input_norm, post_attention_norm;
  AttentionWeights attention;
  std::vector<float> router_gate;         // [num_experts, hidden], MoE layers only
  MlpWeights shared_expert;               // MoE layers with shared experts
  std::vector<float> shared_expert_gate;  // [hidden], Qwen2-MoE
  MlpWeights dense_mlp;                   // dense layers
};

struct RouterWeights {
  kernels::Matrix embed;    // [vocab, hidden]
  kernels::Matrix lm_head;  // [vocab, hidden]; the same view as embed when tied
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;
};

// experts[layer][expert]; an empty MlpWeights where this holder does not own the expert.
struct ExpertWeights {
  std::vector<std::vector<MlpWeights>> experts;
  const MlpWeights* find(int64_t layer, int64_t expert) const;
};

// Called after each step of loading with (done, total, what).
using LoadProgress = std::function<void(int64_t, int64_t, const std::string&)>;

// Both loaders check every tensor's presence and shape against the config and throw
// moeflow::Error naming the file and tensor on any mismatch.
RouterWeights load_router_weights(const Checkpoint& ckpt, const ModelConfig& cfg, ComputeType type,
                                  WeightStore& store, const LoadProgress& progress = {});

// `owned(layer, expert)` selects the experts to load; null loads all.
ExpertWeights load_expert_weights(const Checkpoint& ckpt, const ModelConfig& cfg, ComputeType type,
                                  WeightStore& store,
                                  const std::function<bool(int64_t, int64_t)>& owned = {},
                                  const LoadProgress& progress = {});

}  // namespace moeflow
