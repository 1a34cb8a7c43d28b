#include "model/gpu_engine_step.h"

#include <string>

#include "core/error.h"
#include "model/engine.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>

#include "model/device_step.h"
#include "model/gpu_buffer.h"
#include "model/gpu_expert_stage.h"
#include "model/gpu_kv_cache.h"
#include "model/gpu_router_stage.h"
#endif

namespace moeflow {

#if MOEFLOW_HAVE_CUDA

struct GpuEngineStep::Impl {
  const ModelConfig& cfg;
  GpuRouterStage& router;
  GpuKvCache& cache;
  GpuExpertStage& experts;
  std::string who;                    // "GPU engine step on cuda:N"
  std::vector<int64_t> expert_bytes;  // [layer * num_experts + expert], as the shard reads them
  DeviceBuffer hidden, routed;        // [rows, hidden]: the residual stream, the experts' sum
  // [layer * num_experts + expert] int32: the step's pairs per expert, counted by the expert
  // stage on the device and copied to the host once per step, with the logits.
  DeviceBuffer use_device;
  PinnedBuffer use_host;
};

namespace {

// The GPU parts of the two halves, or an error saying which half is not on a GPU.
GpuRouterStage& router_stage(RouterModel& router) {
  if (!router.gpu_stage() || !router.gpu_cache())
    throw Error("GPU engine step: the router stage runs on " + router.device_name());
  return *router.gpu_stage();
}

GpuExpertStage& expert_stage(ExpertShard& experts) {
  if (!experts.gpu_stage())
    throw Error("GPU engine step: the experts run on " + experts.device_name());
  return *experts.gpu_stage();
}

}  // namespace

GpuEngineStep::GpuEngineStep(RouterModel& router, ExpertShard& experts)
    : impl_(new Impl{router.config(),
                     router_stage(router),
                     *router.gpu_cache(),
                     expert_stage(experts),
                     "GPU engine step on " + router.device_name(),
                     {},
                     {},
                     {},
                     {},
                     {}}) {
  Impl& m = *impl_;
  if (experts.cuda_device() != router.cuda_device())
    throw Error(m.who + ": the experts are on " + experts.device_name() +
                " (the device-resident step needs them on the router's GPU)");
  require_every_expert(
      m.cfg, [&](int64_t l, int64_t e) { return experts.holds(l, e) && m.experts.holds(l, e); },
      m.who);
  const int64_t E = m.cfg.num_experts;
  m.expert_bytes.assign(m.cfg.num_layers * E, 0);
  for (int64_t l = 0; l < m.cfg.num_layers; ++l)
    for (int64_t e = 0; e < E; ++e) m.expert_bytes[l * E + e] = experts.expert_bytes(l, e);
}

GpuEngineStep::~GpuEngineStep() = default;

std::vector<float> GpuEngineStep::run(const StepPlan& plan, const ExpertBudget& budget,
                                      StepStats& stats) {
  Impl& m = *impl_;
  const ModelConfig& cfg = m.cfg;
  const int64_t n = plan.layout.rows(), d = cfg.hidden_size, E = cfg.num_experts;
  std::vector<float> logits(plan.output_rows.size() * cfg.vocab_size);
  if (n == 0) return logits;
  cuda_ok(cudaSetDevice(m.router.device()), m.who + ": cudaSetDevice");
  // Growing frees the old buffers; cudaFree waits for the device, so work a failed step left
  // queued cannot touch the freed memory.
  const size_t bytes = static_cast<size_t>(n * d) * sizeof(float);
  m.hidden.reserve(bytes, "GPU engine step hidden state");
  m.routed.reserve(bytes, "GPU engine step routed rows");
  float* hidden = m.hidden.as<float>();
  float* routed = m.routed.as<float>();
  const bool count_use = static_cast<int64_t>(stats.expert_use.size()) == cfg.num_layers * E;
  // The previous step's copy was waited for, so the pinned buffer is free to grow or reuse.
  const size_t use_bytes = static_cast<size_t>(cfg.num_layers * E) * sizeof(int32_t);
  m.use_device.reserve(use_bytes, "GPU engine step expert use");
  m.use_host.reserve(use_bytes, "GPU engine step expert use (host)");
  auto* use = m.use_device.as<int32_t>();
  cudaStream_t stream = m.router.stream();
  if (use_bytes > 0)
    cuda_ok(cudaMemsetAsync(use, 0, use_bytes, stream), m.who + ": zero the expert use");

  m.router.embed_device(plan.tokens.data(), n, hidden);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const DeviceRouting r =
        m.router.attend_and_route_device(l, plan.layout, hidden, m.cache, budget);
    if (r.top_k == 0) continue;  // a dense layer: its MLP ran inside
    m.experts.run_device_routed(r, routed, stream, use + l * E);
    m.router.combine_device(r, routed, hidden);
  }
  // Queued before the logits, whose copy out the host waits for: after that wait the use is
  // on the host too - the step's one synchronisation when every MoE layer took the small path.
  if (use_bytes > 0)
    cuda_ok(cudaMemcpyAsync(m.use_host.get(), use, use_bytes, cudaMemcpyDeviceToHost, stream),
            m.who + ": copy the expert use out");
  m.router.logits_device(hidden, n, plan.output_rows, logits.data());
  if (plan.output_rows.empty())  // no logits wanted: logits_device waited for nothing
    cuda_ok(cudaStreamSynchronize(stream), m.who + ": wait for the step");

  const int32_t* pairs = m.use_host.as<int32_t>();
  for (int64_t i = 0; i < cfg.num_layers * E; ++i) {
    if (pairs[i] == 0) continue;
    stats.expert_rows += pairs[i];
    stats.expert_bytes += m.expert_bytes[i];
    if (count_use) stats.expert_use[i] += pairs[i];
  }
  return logits;
}

#else  // built without CUDA: never made (the GPU router stage refuses first), but refuses too.

struct GpuEngineStep::Impl {};

GpuEngineStep::GpuEngineStep(RouterModel&, ExpertShard&) {
  throw Error("GPU engine step: built without CUDA");
}
GpuEngineStep::~GpuEngineStep() = default;
std::vector<float> GpuEngineStep::run(const StepPlan&, const ExpertBudget&, StepStats&) {
  throw Error("GPU engine step: built without CUDA");
}

#endif

}  // namespace moeflow
