#pragma once
// The router stage's weights on one GPU (for model/gpu_router_stage.cpp): matrices as bf16
// (fp32 ones rounded to nearest even), norms, biases, the router gate and the shared expert's
// gate as fp32, each in its own device allocation. Include only where MOEFLOW_HAVE_CUDA is set.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/gpu_buffer.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace moeflow {

// A bf16 matrix on the device: [rows, cols] row-major (rows = output features).
struct DeviceMatrix {
  const uint16_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t bytes() const { return rows * cols * 2; }
};

struct DeviceMlp {
  DeviceMatrix gate, up, down;
  bool empty() const { return gate.data == nullptr; }
  int64_t bytes() const { return gate.bytes() + up.bytes() + down.bytes(); }
};

// Pointers are null where the model has no such tensor (no bias, no q/k norm, ...).
struct DeviceLayer {
  const float* input_norm = nullptr;
  const float* post_attention_norm = nullptr;
  DeviceMatrix q, k, v, o;
  const float *q_bias = nullptr, *k_bias = nullptr, *v_bias = nullptr;
  const float *q_norm = nullptr, *k_norm = nullptr;
  const float* router_gate = nullptr;  // [num_experts, hidden]
  int64_t router_gate_floats = 0;
  DeviceMlp shared_expert;
  const float* shared_expert_gate = nullptr;  // [hidden]
  DeviceMlp dense_mlp;
};

class DeviceRouterWeights {
 public:
  // Uploads on the current device; `who` prefixes errors ("GPU router stage on cuda:0").
  DeviceRouterWeights(const ModelConfig& cfg, const RouterWeights& w, const std::string& who);

  DeviceMatrix embed, lm_head;  // the same allocation when the checkpoint ties them
  const float* final_norm = nullptr;
  const float* rope_inv_freq = nullptr;  // [head_dim / 2], the CPU's table
  std::vector<DeviceLayer> layers;

  int64_t allocated_bytes() const { return allocated_; }

 private:
  const uint16_t* upload_bf16(const kernels::Matrix& m, const std::string& what);
  DeviceMatrix matrix(const kernels::Matrix& m, const std::string& what);
  DeviceMlp mlp(const MlpWeights& w, const std::string& what);
  const float* upload_f32(const std::vector<float>& v, const std::string& what);

  std::string who_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
  int64_t allocated_ = 0;
};

}  // namespace moeflow
