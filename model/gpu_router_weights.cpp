#if MOEFLOW_HAVE_CUDA

#include "model/gpu_router_weights.h"

#include <string>

#include "kernels/cpu/ops.h"
#include "model/gpu_device.h"

namespace moeflow {

const uint16_t* DeviceRouterWeights::upload_bf16(const kernels::Matrix& m,
                                                 const std::string& what) {
  std::vector<std::vector<uint16_t>> keep;
  const uint16_t* host = bf16_bits(m, keep);
  const size_t bytes = static_cast<size_t>(m.rows * m.cols) * sizeof(uint16_t);
  buffers_.push_back(std::make_unique<DeviceBuffer>());
  buffers_.back()->reserve(bytes, (who_ + ": " + what).c_str());
  cuda_ok(cudaMemcpy(buffers_.back()->get(), host, bytes, cudaMemcpyHostToDevice),
          who_ + ": upload " + what);
  allocated_ += static_cast<int64_t>(bytes);
  return buffers_.back()->as<uint16_t>();
}

DeviceMatrix DeviceRouterWeights::matrix(const kernels::Matrix& m, const std::string& what) {
  if (m.empty()) return {};
  return {upload_bf16(m, what), m.rows, m.cols};
}

DeviceMlp DeviceRouterWeights::mlp(const MlpWeights& w, const std::string& what) {
  if (w.empty()) return {};
  return {matrix(w.gate, what + " gate"), matrix(w.up, what + " up"),
          matrix(w.down, what + " down")};
}

const float* DeviceRouterWeights::upload_f32(const std::vector<float>& v, const std::string& what) {
  if (v.empty()) return nullptr;
  const size_t bytes = v.size() * sizeof(float);
  buffers_.push_back(std::make_unique<DeviceBuffer>());
  buffers_.back()->reserve(bytes, (who_ + ": " + what).c_str());
  cuda_ok(cudaMemcpy(buffers_.back()->get(), v.data(), bytes, cudaMemcpyHostToDevice),
          who_ + ": upload " + what);
  allocated_ += static_cast<int64_t>(bytes);
  return buffers_.back()->as<float>();
}

DeviceRouterWeights::DeviceRouterWeights(const ModelConfig& cfg, const RouterWeights& w,
                                         const std::string& who)
    : who_(who) {
  embed = matrix(w.embed, "embedding");
  const bool tied = w.lm_head.data == w.embed.data && w.lm_head.type == w.embed.type;
  lm_head = tied ? embed : matrix(w.lm_head, "lm_head");
  final_norm = upload_f32(w.final_norm, "final norm");
  std::vector<float> inv_freq(cfg.head_dim / 2);
  kernels::rope_inv_freq(cfg.head_dim, cfg.rope_theta, inv_freq.data());
  rope_inv_freq = upload_f32(inv_freq, "rotary frequencies");
  layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& src = w.layers[l];
    const auto& a = src.attention;
    const std::string name = "layer " + std::to_string(l) + " ";
    DeviceLayer& d = layers[l];
    d.input_norm = upload_f32(src.input_norm, name + "input norm");
    d.post_attention_norm = upload_f32(src.post_attention_norm, name + "post-attention norm");
    d.q = matrix(a.q, name + "q");
    d.k = matrix(a.k, name + "k");
    d.v = matrix(a.v, name + "v");
    d.o = matrix(a.o, name + "o");
    d.q_bias = upload_f32(a.q_bias, name + "q bias");
    d.k_bias = upload_f32(a.k_bias, name + "k bias");
    d.v_bias = upload_f32(a.v_bias, name + "v bias");
    d.q_norm = upload_f32(a.q_norm, name + "q norm");
    d.k_norm = upload_f32(a.k_norm, name + "k norm");
    d.router_gate = upload_f32(src.router_gate, name + "router gate");
    d.router_gate_floats = static_cast<int64_t>(src.router_gate.size());
    d.shared_expert = mlp(src.shared_expert, name + "shared expert");
    d.shared_expert_gate = upload_f32(src.shared_expert_gate, name + "shared expert gate");
    d.dense_mlp = mlp(src.dense_mlp, name + "dense mlp");
  }
}

}  // namespace moeflow

#endif  // MOEFLOW_HAVE_CUDA
