#include "model/gpu_expert_stage.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cuda/device.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cuda/expert_stage.h"
#endif

namespace moeflow {
namespace {

// The device must exist before anything touches it: the same refusal with or without CUDA.
void require_device(int device) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (device >= 0 && device < devices.count) return;
  throw Error("GPU expert stage: no CUDA device cuda:" + std::to_string(device) +
              (devices.count == 0 ? " (" + devices.error + ")"
                                  : " (this process sees " + std::to_string(devices.count) + ")"));
}

}  // namespace

#if MOEFLOW_HAVE_CUDA

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw Error(std::string("GPU expert stage: ") + what + ": " + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")");
}

// bf16 bits of a weight matrix: its own data when stored as bf16, else a rounded copy in `keep`.
const uint16_t* bf16_data(const kernels::Matrix& m, std::vector<std::vector<uint16_t>>& keep) {
  if (m.type == kernels::WeightType::bf16) return static_cast<const uint16_t*>(m.data);
  keep.emplace_back(m.rows * m.cols);
  kernels::f32_to_bf16(static_cast<const float*>(m.data), keep.back().data(), m.rows * m.cols);
  return keep.back().data();
}

// A growable device buffer.
struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  void reserve(size_t need) {
    if (need <= bytes) return;
    cudaFree(p);
    p = nullptr;
    bytes = 0;
    ok(cudaMalloc(&p, need), "cudaMalloc");
    bytes = need;
  }
  ~DeviceBuffer() { cudaFree(p); }
};

}  // namespace

struct GpuExpertStage::Impl {
  int device = 0;
  int64_t hidden = 0;
  std::vector<std::unique_ptr<kernels::cuda::ExpertLayer>> layers;  // null: none held
  std::vector<std::vector<bool>> held;
  cudaStream_t stream = nullptr;
  DeviceBuffer x, ids, weights, out, workspace;
  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }
};

GpuExpertStage::GpuExpertStage(const ModelConfig& cfg, const ExpertWeights& weights, int device)
    : impl_(std::make_unique<Impl>()) {
  require_device(device);
  ok(cudaSetDevice(device), "cudaSetDevice");
  impl_->device = device;
  impl_->hidden = cfg.hidden_size;
  ok(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  impl_->layers.resize(weights.experts.size());
  impl_->held.resize(weights.experts.size());
  for (size_t l = 0; l < weights.experts.size(); ++l) {
    const auto& row = weights.experts[l];
    impl_->held[l].assign(row.size(), false);
    std::vector<kernels::cuda::HostExpert> host;
    std::vector<std::vector<uint16_t>> keep;
    int64_t inter = 0;
    for (size_t e = 0; e < row.size(); ++e) {
      if (row[e].empty()) continue;
      impl_->held[l][e] = true;
      inter = row[e].gate.rows;
      host.push_back({static_cast<int32_t>(e), bf16_data(row[e].gate, keep),
                      bf16_data(row[e].up, keep), bf16_data(row[e].down, keep)});
    }
    if (host.empty()) continue;
    impl_->layers[l] = std::make_unique<kernels::cuda::ExpertLayer>(
        static_cast<int64_t>(row.size()), cfg.hidden_size, inter, host);
  }
}

GpuExpertStage::~GpuExpertStage() = default;

bool GpuExpertStage::holds(int64_t layer, int64_t expert) const {
  if (layer < 0 || layer >= static_cast<int64_t>(impl_->held.size())) return false;
  const auto& row = impl_->held[layer];
  return expert >= 0 && expert < static_cast<int64_t>(row.size()) && row[expert];
}

int64_t GpuExpertStage::weight_bytes() const {
  int64_t bytes = 0;
  for (const auto& layer : impl_->layers)
    if (layer) bytes += static_cast<int64_t>(layer->bytes());
  return bytes;
}

int64_t GpuExpertStage::run(const TokenBatch& batch, float* out) {
  const int64_t n = batch.size(), d = batch.hidden_size, k = batch.top_k;
  if (d != impl_->hidden) throw Error("GPU expert stage: batch hidden size " + std::to_string(d));
  int64_t pairs = 0;
  for (int64_t s = 0; s < n * k; ++s) pairs += holds(batch.layer, batch.experts[s]) ? 1 : 0;
  const kernels::cuda::ExpertLayer* layer =
      batch.layer >= 0 && batch.layer < static_cast<int64_t>(impl_->layers.size())
          ? impl_->layers[batch.layer].get()
          : nullptr;
  if (n == 0) return 0;
  if (!layer || pairs == 0) {
    std::fill(out, out + n * d, 0.0f);
    return 0;
  }
  ok(cudaSetDevice(impl_->device), "cudaSetDevice");
  Impl& m = *impl_;
  const size_t x_bytes = n * d * sizeof(float), pair_bytes = n * k * sizeof(int32_t);
  m.x.reserve(x_bytes);
  m.out.reserve(x_bytes);
  m.ids.reserve(pair_bytes);
  m.weights.reserve(n * k * sizeof(float));
  const size_t work = kernels::cuda::expert_stage_workspace_bytes(layer->view(), n, k);
  m.workspace.reserve(work);
  ok(cudaMemcpyAsync(m.x.p, batch.rows.data(), x_bytes, cudaMemcpyHostToDevice, m.stream),
     "copy rows");
  ok(cudaMemcpyAsync(m.ids.p, batch.experts.data(), pair_bytes, cudaMemcpyHostToDevice, m.stream),
     "copy experts");
  ok(cudaMemcpyAsync(m.weights.p, batch.weights.data(), n * k * sizeof(float),
                     cudaMemcpyHostToDevice, m.stream),
     "copy weights");
  try {
    kernels::cuda::expert_stage(
        layer->view(), static_cast<const float*>(m.x.p), n, k, static_cast<const int32_t*>(m.ids.p),
        static_cast<const float*>(m.weights.p), static_cast<float*>(m.out.p), m.workspace.p,
        m.workspace.bytes, m.stream);
  } catch (const std::exception& e) {
    throw Error(std::string("GPU expert stage: ") + e.what());
  }
  ok(cudaMemcpyAsync(out, m.out.p, x_bytes, cudaMemcpyDeviceToHost, m.stream), "copy result");
  ok(cudaStreamSynchronize(m.stream), "expert stage");
  return pairs;
}

#else  // built without CUDA: the constructor always refuses.

struct GpuExpertStage::Impl {};

GpuExpertStage::GpuExpertStage(const ModelConfig&, const ExpertWeights&, int device) {
  require_device(device);
}
GpuExpertStage::~GpuExpertStage() = default;
bool GpuExpertStage::holds(int64_t, int64_t) const {
  return false;
}
int64_t GpuExpertStage::weight_bytes() const {
  return 0;
}
int64_t GpuExpertStage::run(const TokenBatch&, float*) {
  throw Error("GPU expert stage: built without CUDA");
}

#endif

}  // namespace moeflow
