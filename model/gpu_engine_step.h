#pragma once
// The Engine's forward step with the whole model on one GPU (EngineOptions::cuda_device >= 0):
// the hidden state stays in device memory from the embedding to the logits. The host hands in
// token ids and the step's layout and gets the logits back; in between, per layer, the GPU
// router stage attends and routes on the device (GpuRouterStage::attend_and_route_device), the
// GPU expert stage runs on that routing where it lies (GpuExpertStage::run_device_routed) and
// the router stage adds the result back (combine_device).
//
// Host synchronisations per step, by design: ONE - the logits' copy out - when every MoE layer
// has at most kSmallBatchPairsMax (64) (row, choice) pairs (decode of up to 32 sequences at
// top-2): the expert stage then runs its small-batch GEMVs, which read the routing on the
// device. A larger step (prefill) adds one per MoE layer: the cuBLAS path copies the per-slot
// counts to the host and waits, because cuBLAS takes each GEMM's row count from the host. The
// dense layers, the embedding and the small uploads (page-locked staging) wait for nothing.
// Rare extra waits: a scratch buffer growing to a larger step than any before, a KV-cache
// buffer doubling (per sequence and layer at 16, 32, 64, ... rows).
//
// StepStats come from per-expert pair counts the expert stage adds up on the device (both
// paths), [layers, experts] int32, copied to the host once per step, queued before the logits
// and so covered by their wait. The Engine's shard holds every expert (the constructor refuses
// one that lacks one), so the held pairs per expert are exactly the routing's use.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/expert_budget.h"
#include "model/step_plan.h"

namespace moeflow {

class ExpertShard;
class RouterModel;
struct StepStats;

class GpuEngineStep {
 public:
  // Over the GPU router stage and KV cache of `router` and the GPU expert stage of `experts`,
  // both kept by reference. Throws moeflow::Error when either runs on the CPU, when they sit on
  // different devices, or when the shard lacks an expert of an MoE layer.
  GpuEngineStep(RouterModel& router, ExpertShard& experts);
  ~GpuEngineStep();
  GpuEngineStep(const GpuEngineStep&) = delete;
  GpuEngineStep& operator=(const GpuEngineStep&) = delete;

  // Runs the plan's rows through every layer, appending their keys and values to the router's
  // cache (uncommitted: the caller commits), and returns the logits [plan.output_rows.size(),
  // vocab] of the wanted rows. Adds to `stats` the pairs computed (expert_rows), the expert bytes
  // read (expert_bytes) and, when stats.expert_use has layers × experts entries, the per-expert
  // use. `budget` must have passed validate(). Throws moeflow::Error naming the layer and call.
  std::vector<float> run(const StepPlan& plan, const ExpertBudget& budget, StepStats& stats);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeflow
