#include "model/weights.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cpu/convert.h"
#include "model/model_family.h"

namespace moeflow {

std::string compute_type_name(ComputeType t) {
  return t == ComputeType::f32 ? "f32" : "bf16";
}

ComputeType parse_compute_type(const std::string& name, const Checkpoint& checkpoint,
                               const ModelConfig&) {
  if (name == "f32") return ComputeType::f32;
  if (name == "bf16") return ComputeType::bf16;
  if (name == "auto") {
    const TensorInfo* embed = checkpoint.find("model.embed_tokens.weight");
    return embed && embed->dtype == DType::bf16 ? ComputeType::bf16 : ComputeType::f32;
  }
  throw Error("--dtype: expected f32, bf16 or auto, got \"" + name + "\"");
}

namespace {

// Widens any supported dtype to fp32.
void to_f32(const TensorInfo& t, float* dst) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32:
      std::memcpy(dst, t.data, n * sizeof(float));
      break;
    case DType::bf16:
      kernels::bf16_to_f32(reinterpret_cast<const uint16_t*>(t.data), dst, n);
      break;
    case DType::f16:
      kernels::f16_to_f32(reinterpret_cast<const uint16_t*>(t.data), dst, n);
      break;
  }
}

}  // namespace

kernels::Matrix WeightStore::matrix(const TensorInfo& t, ComputeType type) {
  kernels::Matrix m;
  m.rows = t.shape.at(0);
  m.cols = t.shape.at(1);
  m.type = type == ComputeType::f32 ? kernels::WeightType::f32 : kernels::WeightType::bf16;
  const bool direct = (type == ComputeType::f32 && t.dtype == DType::f32) ||
                      (type == ComputeType::bf16 && t.dtype == DType::bf16);
  if (direct) {
    m.data = t.data;
    return m;
  }
  const int64_t n = t.numel();
  auto f32 = std::make_unique<std::byte[]>(n * sizeof(float));
  to_f32(t, reinterpret_cast<float*>(f32.get()));
  if (type == ComputeType::bf16) {
    auto bf16 = std::make_unique<std::byte[]>(n * 2);
    kernels::f32_to_bf16(reinterpret_cast<const float*>(f32.get()),
                         reinterpret_cast<uint16_t*>(bf16.get()), n);
    f32 = std::move(bf16);
  }
  m.data = f32.get();
  owned_bytes_ += n * m.element_bytes();
  buffers_.push_back(std::move(f32));
  return m;
}

std::vector<float> WeightStore::vector_f32(const TensorInfo& t) {
  std::vector<float> out(t.numel());
  to_f32(t, out.data());
  return out;
}

const MlpWeights* ExpertWeights::find(int64_t layer, int64_t expert) const {
  if (layer < 0 || layer >= static_cast<int64_t>(experts.size())) return nullptr;
  const auto& row = experts[layer];
  if (expert < 0 || expert >= static_cast<int64_t>(row.size()) || row[expert].empty())
    return nullptr;
  return &row[expert];
}

namespace {

MlpWeights load_mlp(const Checkpoint& ckpt, const MlpNames& names, int64_t hidden,
                    int64_t intermediate, ComputeType type, WeightStore& store) {
  MlpWeights m;
  m.gate = store.matrix(ckpt.get(names.gate, {intermediate, hidden}), type);
  m.up = store.matrix(ckpt.get(names.up, {intermediate, hidden}), type);
  m.down = store.matrix(ckpt.get(names.down, {hidden, intermediate}), type);
  return m;
}

AttentionWeights load_attention(const Checkpoint& ckpt, const ModelConfig& cfg, int64_t layer,
                                ComputeType type, WeightStore& store) {
  const std::string p = layer_prefix(layer) + "self_attn.";
  const int64_t d = cfg.hidden_size, q_dim = cfg.num_heads * cfg.head_dim,
                kv_dim = cfg.num_kv_heads * cfg.head_dim;
  AttentionWeights a;
  a.q = store.matrix(ckpt.get(p + "q_proj.weight", {q_dim, d}), type);
  a.k = store.matrix(ckpt.get(p + "k_proj.weight", {kv_dim, d}), type);
  a.v = store.matrix(ckpt.get(p + "v_proj.weight", {kv_dim, d}), type);
  a.o = store.matrix(ckpt.get(p + "o_proj.weight", {d, q_dim}), type);
  if (cfg.qkv_bias) {
    a.q_bias = store.vector_f32(ckpt.get(p + "q_proj.bias", {q_dim}));
    a.k_bias = store.vector_f32(ckpt.get(p + "k_proj.bias", {kv_dim}));
    a.v_bias = store.vector_f32(ckpt.get(p + "v_proj.bias", {kv_dim}));
  }
  if (cfg.qk_norm) {
    a.q_norm = store.vector_f32(ckpt.get(p + "q_norm.weight", {q_dim}));
    a.k_norm = store.vector_f32(ckpt.get(p + "k_norm.weight", {kv_dim}));
  }
  return a;
}

}  // namespace

RouterWeights load_router_weights(const Checkpoint& ckpt, const ModelConfig& cfg, ComputeType type,
                                  WeightStore& store, const LoadProgress& progress) {
  const ModelFamily& family = family_of(cfg.family);
  const int64_t d = cfg.hidden_size;
  RouterWeights w;
  w.embed = store.matrix(ckpt.get("model.embed_tokens.weight", {cfg.vocab_size, d}), type);
  if (cfg.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    w.lm_head = store.matrix(ckpt.get("lm_head.weight", {cfg.vocab_size, d}), type);
  }
  w.final_norm = store.vector_f32(ckpt.get("model.norm.weight", {d}));
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    LayerWeights layer;
    layer.input_norm = store.vector_f32(ckpt.get(p + "input_layernorm.weight", {d}));
    layer.post_attention_norm =
        store.vector_f32(ckpt.get(p + "post_attention_layernorm.weight", {d}));
    layer.attention = load_attention(ckpt, cfg, l, type, store);
    if (cfg.layer_is_moe[l]) {
      layer.router_gate = store.vector_f32(ckpt.get(family.router_gate(l), {cfg.num_experts, d}));
      if (cfg.shared_intermediate > 0)
        layer.shared_expert =
            load_mlp(ckpt, family.shared_expert(l), d, cfg.shared_intermediate, type, store);
      if (cfg.shared_expert_gated)
        layer.shared_expert_gate = store.vector_f32(ckpt.get(family.shared_expert_gate(l), {1, d}));
    } else {
      layer.dense_mlp = load_mlp(ckpt, dense_mlp_names(l), d, cfg.dense_intermediate, type, store);
    }
    w.layers.push_back(std::move(layer));
    if (progress) progress(l + 1, cfg.num_layers, "attention and gates");
  }
  return w;
}

ExpertWeights load_expert_weights(const Checkpoint& ckpt, const ModelConfig& cfg, ComputeType type,
                                  WeightStore& store,
                                  const std::function<bool(int64_t, int64_t)>& owned,
                                  const LoadProgress& progress) {
  const ModelFamily& family = family_of(cfg.family);
  ExpertWeights w;
  w.experts.resize(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!cfg.layer_is_moe[l]) continue;
    w.experts[l].resize(cfg.num_experts);
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      if (owned && !owned(l, e)) continue;
      w.experts[l][e] = load_mlp(ckpt, family.expert(l, e), cfg.hidden_size,
                                 cfg.expert_intermediate, type, store);
    }
    if (progress) progress(l + 1, cfg.num_layers, "experts");
  }
  return w;
}

}  // namespace moeflow
