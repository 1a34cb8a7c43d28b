#pragma once
// Everything the router stage needs, loaded from a checkpoint: config, the non-expert weights,
// the stage over them and its KV cache, on the CPU (RouterStage, KvCache) or on CUDA device N
// (GpuRouterStage, GpuKvCache). The state behind the Engine and the router actor, which see one
// interface whichever runs the stage.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/expert_budget.h"
#include "model/kv_cache.h"
#include "model/kv_cache_state.h"
#include "model/model_config.h"
#include "model/router_stage.h"
#include "model/token_batch.h"
#include "model/weights.h"

namespace moeflow {

class GpuKvCache;
class GpuRouterStage;

class RouterModel {
 public:
  // cuda_device < 0: the stage runs on the CPU; otherwise its weights and KV cache live on that
  // GPU. Throws moeflow::Error naming the file/field/tensor on any problem, or the device when
  // this process lacks it.
  static std::unique_ptr<RouterModel> load(const std::filesystem::path& dir,
                                           const std::string& dtype, const LoadProgress& progress,
                                           int cuda_device = -1);
  ~RouterModel();

  const ModelConfig& config() const { return cfg_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  ComputeType compute_type() const { return type_; }
  size_t converted_bytes() const { return store_.owned_bytes(); }
  int cuda_device() const { return cuda_device_; }  // -1: CPU
  std::string device_name() const;                  // "cpu" or "cuda:N", for logs

  // The KV cache the stage appends to (lengths, commit, truncate, release).
  KvCacheState& cache();

  // RouterStage's operations (model/router_stage.h) over this model's cache; every pointer is
  // host memory whichever device runs them.
  void embed(const int32_t* tokens, int64_t n, float* hidden);
  TokenBatch attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                              const ExpertBudget& budget = {});
  void combine(const TokenBatch& batch, const float* routed, float* hidden);
  void logits(const float* hidden, const std::vector<int64_t>& rows, float* out);
  int64_t bytes_per_step() const;

  // The GPU stage and its cache on a cuda:N model (null on the CPU), for the Engine's
  // device-resident step (model/gpu_engine_step.h), which calls their device-pointer forms.
  GpuRouterStage* gpu_stage() const { return gpu_stage_.get(); }
  GpuKvCache* gpu_cache() const { return gpu_cache_.get(); }

 private:
  RouterModel(const std::filesystem::path& dir, const std::string& dtype,
              const LoadProgress& progress, int cuda_device);
  ModelConfig cfg_;
  Checkpoint ckpt_;
  ComputeType type_;
  WeightStore store_;
  RouterWeights weights_;
  int cuda_device_ = -1;
  // Either the CPU pair or the GPU pair is set.
  std::unique_ptr<RouterStage> stage_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<GpuRouterStage> gpu_stage_;
  std::unique_ptr<GpuKvCache> gpu_cache_;
};

}  // namespace moeflow
