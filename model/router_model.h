#pragma once
// Everything the router stage needs, loaded from a checkpoint: config, the non-expert weights,
// the RouterStage over them and the KV cache. The state behind the Engine and the router actor.
#include <filesystem>
#include <memory>
#include <string>

#include "model/checkpoint.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/router_stage.h"
#include "model/weights.h"

namespace moeflow {

class RouterModel {
 public:
  // Throws moeflow::Error naming the file/field/tensor on any problem.
  static std::unique_ptr<RouterModel> load(const std::filesystem::path& dir,
                                           const std::string& dtype, const LoadProgress& progress);

  const ModelConfig& config() const { return cfg_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  ComputeType compute_type() const { return type_; }
  RouterStage& stage() { return *stage_; }
  KvCache& cache() { return cache_; }
  size_t converted_bytes() const { return store_.owned_bytes(); }

 private:
  RouterModel(const std::filesystem::path& dir, const std::string& dtype,
              const LoadProgress& progress);
  ModelConfig cfg_;
  Checkpoint ckpt_;
  ComputeType type_;
  WeightStore store_;
  RouterWeights weights_;
  std::unique_ptr<RouterStage> stage_;
  KvCache cache_;
};

}  // namespace moeflow
