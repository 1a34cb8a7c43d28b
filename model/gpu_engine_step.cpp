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
  std::vector<int64_t> pairs;         // [num_experts]: one layer's pairs per expert
  DeviceBuffer hidden, routed;        // [rows, hidden]: the residual stream, the experts' sum
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
  m.pairs.assign(E, 0);
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

  m.router.embed_device(plan.tokens.data(), n, hidden);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const DeviceRouting r =
        m.router.attend_and_route_device(l, plan.layout, hidden, m.cache, budget);
    if (r.top_k == 0) continue;  // a dense layer: its MLP ran inside
    std::fill(m.pairs.begin(), m.pairs.end(), 0);
    stats.expert_rows += m.experts.run_device_routed(r, routed, m.router.stream(), m.pairs.data());
    for (int64_t e = 0; e < E; ++e) {
      if (m.pairs[e] == 0) continue;
      stats.expert_bytes += m.expert_bytes[l * E + e];
      if (count_use) stats.expert_use[l * E + e] += m.pairs[e];
    }
    m.router.combine_device(r, routed, hidden);
  }
  m.router.logits_device(hidden, n, plan.output_rows, logits.data());
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
