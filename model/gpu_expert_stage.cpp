#include "model/gpu_expert_stage.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "model/gpu_device.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <vector>

#include "kernels/cuda/cublas_api.h"
#include "kernels/cuda/expert_plan.h"
#include "kernels/cuda/expert_small_batch.h"
#include "kernels/cuda/expert_stage.h"
#include "model/gpu_buffer.h"
#endif

namespace moeflow {
#if MOEFLOW_HAVE_CUDA

namespace {

void ok(cudaError_t e, const char* what) {
  cuda_ok(e, std::string("GPU expert stage: ") + what);
}

}  // namespace

struct GpuExpertStage::Impl {
  ModelConfig cfg;
  int device = 0;
  int64_t hidden = 0;
  std::string who;  // "GPU expert stage on cuda:N", the prefix of run_device_routed's errors
  std::unique_ptr<kernels::cuda::CublasHandle> blas;
  std::vector<std::unique_ptr<kernels::cuda::ExpertLayer>> layers;  // null: none held
  std::vector<std::vector<bool>> held;
  cudaStream_t stream = nullptr;
  // run_device_routed's ordering: the producer's work before ours, ours before its next.
  cudaEvent_t routing_ready = nullptr, experts_done = nullptr;
  DeviceBuffer x, weights, out, workspace;
  DeviceBuffer experts;  // run()'s expert ids, for the small-batch path
  PinnedBuffer counts;   // the cuBLAS path's per-slot counts, copied to the host
  ~Impl() {
    if (routing_ready) cudaEventDestroy(routing_ready);
    if (experts_done) cudaEventDestroy(experts_done);
    if (stream) cudaStreamDestroy(stream);
  }
};

GpuExpertStage::GpuExpertStage(const ModelConfig& cfg, const ExpertWeights& weights, int device)
    : impl_(std::make_unique<Impl>()) {
  require_cuda_device(device, "GPU expert stage");
  ok(cudaSetDevice(device), "cudaSetDevice");
  impl_->cfg = cfg;
  impl_->device = device;
  impl_->hidden = cfg.hidden_size;
  impl_->who = "GPU expert stage on cuda:" + std::to_string(device);
  ok(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  ok(cudaEventCreateWithFlags(&impl_->routing_ready, cudaEventDisableTiming), "cudaEventCreate");
  ok(cudaEventCreateWithFlags(&impl_->experts_done, cudaEventDisableTiming), "cudaEventCreate");
  // Here rather than at start-up: only a process that runs experts on a GPU needs cuBLAS.
  try {
    impl_->blas = std::make_unique<kernels::cuda::CublasHandle>();
  } catch (const std::exception& e) {
    throw Error("GPU expert stage on cuda:" + std::to_string(device) + ": " + e.what());
  }
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
      host.push_back({static_cast<int32_t>(e), bf16_bits(row[e].gate, keep),
                      bf16_bits(row[e].up, keep), bf16_bits(row[e].down, keep)});
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
  if (static_cast<int64_t>(batch.rows.size()) != n * d ||
      static_cast<int64_t>(batch.experts.size()) != n * k ||
      static_cast<int64_t>(batch.weights.size()) != n * k)
    throw Error("GPU expert stage: batch of " + std::to_string(n) + " rows, top-" +
                std::to_string(k) + " with " + std::to_string(batch.rows.size()) + " values, " +
                std::to_string(batch.experts.size()) + " expert ids, " +
                std::to_string(batch.weights.size()) + " weights");
  if (n == 0) return 0;
  const kernels::cuda::ExpertLayer* layer =
      batch.layer >= 0 && batch.layer < static_cast<int64_t>(impl_->layers.size())
          ? impl_->layers[batch.layer].get()
          : nullptr;
  if (!layer) {
    std::fill(out, out + n * d, 0.0f);
    return 0;
  }
  // Grouped here, where the batch is: the pairs to return, nothing held (no device work), and
  // the per-slot row counts cuBLAS wants on the host.
  const kernels::cuda::ExpertLayerView& view = layer->view();
  const int64_t pairs = n * k;
  const kernels::cuda::ExpertGrouping g = kernels::cuda::group_pairs(
      batch.experts.data(), pairs, layer->slot_of_expert().data(), view.num_experts, view.slots);
  const int64_t positions = g.offsets[view.slots];
  if (positions == 0) {
    std::fill(out, out + n * d, 0.0f);
    return 0;
  }
  ok(cudaSetDevice(impl_->device), "cudaSetDevice");
  Impl& m = *impl_;
  const size_t x_bytes = n * d * sizeof(float);
  m.x.reserve(x_bytes, "GPU expert stage rows");
  m.out.reserve(x_bytes, "GPU expert stage output");
  m.weights.reserve(pairs * sizeof(float), "GPU expert stage routing weights");
  ok(cudaMemcpyAsync(m.x.get(), batch.rows.data(), x_bytes, cudaMemcpyHostToDevice, m.stream),
     "copy rows");
  ok(cudaMemcpyAsync(m.weights.get(), batch.weights.data(), pairs * sizeof(float),
                     cudaMemcpyHostToDevice, m.stream),
     "copy weights");
  // Decode-sized batches take the GEMVs, which read each touched expert's weights once, where
  // cuBLAS would take a launch per held expert and GEMM (docs/cuda.md, "The small-batch path").
  const bool small = kernels::cuda::expert_stage_takes_small_batch(n, k);
  kernels::cuda::ExpertRouting routing{g.counts.data(), nullptr, nullptr};
  if (small) {
    m.experts.reserve(pairs * sizeof(int32_t), "GPU expert stage expert ids");
    m.workspace.reserve(kernels::cuda::expert_stage_small_batch_workspace_bytes(view, n, k),
                        "GPU expert stage workspace");
    ok(cudaMemcpyAsync(m.experts.get(), batch.experts.data(), pairs * sizeof(int32_t),
                       cudaMemcpyHostToDevice, m.stream),
       "copy expert ids");
  } else {
    const kernels::cuda::ExpertWorkspaceLayout l =
        kernels::cuda::expert_workspace_layout(pairs, view.slots, view.hidden, view.inter);
    m.workspace.reserve(l.bytes, "GPU expert stage workspace");
    auto* base = static_cast<unsigned char*>(m.workspace.get());
    auto* perm = reinterpret_cast<int32_t*>(base + l.perm);
    auto* pos_of_pair = reinterpret_cast<int32_t*>(base + l.pos_of_pair);
    ok(cudaMemcpyAsync(perm, g.perm.data(), positions * sizeof(int32_t), cudaMemcpyHostToDevice,
                       m.stream),
       "copy perm");
    ok(cudaMemcpyAsync(pos_of_pair, g.pos_of_pair.data(), pairs * sizeof(int32_t),
                       cudaMemcpyHostToDevice, m.stream),
       "copy pos_of_pair");
    routing.perm = perm;
    routing.pos_of_pair = pos_of_pair;
  }
  const auto* x = static_cast<const float*>(m.x.get());
  const auto* weights = static_cast<const float*>(m.weights.get());
  auto* result = static_cast<float*>(m.out.get());
  try {
    if (small)
      kernels::cuda::expert_stage_small_batch(
          view, x, n, k, static_cast<const int32_t*>(m.experts.get()), weights, result,
          m.workspace.get(), m.workspace.bytes(), nullptr, m.stream);
    else
      kernels::cuda::expert_stage(view, *m.blas, x, n, k, routing, weights, result,
                                  m.workspace.get(), m.workspace.bytes(), m.stream);
  } catch (const std::exception& e) {
    throw Error("GPU expert stage: layer " + std::to_string(batch.layer) + ", " +
                std::to_string(n) + " rows" + (small ? " (small batch)" : "") + ": " + e.what());
  }
  ok(cudaMemcpyAsync(out, m.out.get(), x_bytes, cudaMemcpyDeviceToHost, m.stream), "copy result");
  ok(cudaStreamSynchronize(m.stream), "expert stage");
  return positions;
}

GpuExpertStage::DevicePath GpuExpertStage::run_device_routed(const DeviceRouting& routing,
                                                             float* out, CUstream_st* after,
                                                             int32_t* pairs_per_expert) {
  Impl& m = *impl_;
  check_device_routing(routing, m.cfg, m.who);
  const int64_t n = routing.rows, d = m.hidden, k = routing.top_k;
  if (n == 0) return DevicePath::nothing_held;
  if (!out) throw Error(m.who + ": layer " + std::to_string(routing.layer) + ": null output");
  const kernels::cuda::ExpertLayer* layer = routing.layer < static_cast<int64_t>(m.layers.size())
                                                ? m.layers[routing.layer].get()
                                                : nullptr;
  ok(cudaSetDevice(m.device), "cudaSetDevice");
  ok(cudaEventRecord(m.routing_ready, after), "record the routing's event");
  ok(cudaStreamWaitEvent(m.stream, m.routing_ready, 0), "wait for the routing");
  DevicePath path = DevicePath::nothing_held;
  if (!layer) {  // nothing held for this layer: zeros, as run() gives
    ok(cudaMemsetAsync(out, 0, n * d * sizeof(float), m.stream), "zero the output");
  } else {
    const kernels::cuda::ExpertLayerView& view = layer->view();
    try {
      m.workspace.reserve(kernels::cuda::expert_stage_device_routed_workspace_bytes(view, n, k),
                          "GPU expert stage workspace");
      // Only the cuBLAS path (more than kSmallBatchPairsMax pairs) copies counts back.
      if (!kernels::cuda::expert_stage_takes_small_batch(n, k))
        m.counts.reserve(view.slots * sizeof(int32_t), "GPU expert stage counts");
      const kernels::cuda::DeviceRoutedPath taken = kernels::cuda::expert_stage_device_routed(
          view, *m.blas, routing.expert_rows, n, k, routing.experts, routing.weights, out,
          m.workspace.get(), m.workspace.bytes(), m.counts.as<int32_t>(), pairs_per_expert,
          m.stream);
      path = taken == kernels::cuda::DeviceRoutedPath::small_batch ? DevicePath::small_batch
                                                                   : DevicePath::cublas;
    } catch (const std::exception& e) {
      throw Error(m.who + ": layer " + std::to_string(routing.layer) + ", " + std::to_string(n) +
                  " rows of top-" + std::to_string(k) + " (device routed): " + e.what());
    }
  }
  ok(cudaEventRecord(m.experts_done, m.stream), "record the experts' event");
  ok(cudaStreamWaitEvent(after, m.experts_done, 0), "order the caller after the experts");
  return path;
}

#else  // built without CUDA: the constructor always refuses.

struct GpuExpertStage::Impl {};

GpuExpertStage::GpuExpertStage(const ModelConfig&, const ExpertWeights&, int device) {
  require_cuda_device(device, "GPU expert stage");
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
GpuExpertStage::DevicePath GpuExpertStage::run_device_routed(const DeviceRouting&, float*,
                                                             CUstream_st*, int32_t*) {
  throw Error("GPU expert stage: built without CUDA");
}

#endif

}  // namespace moeflow
