#pragma once
// The experts one shard owns, loaded from a checkpoint, and the ExpertStage that runs them: the
// state behind an expert shard actor (and the Engine's all-experts stage).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/expert_stage.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace moeflow {

using ExpertSelection = std::function<bool(int64_t layer, int64_t expert)>;  // null: all

class ExpertShard {
 public:
  static std::unique_ptr<ExpertShard> load(const std::filesystem::path& dir,
                                           const std::string& dtype, const ExpertSelection& owned,
                                           const LoadProgress& progress);

  const ModelConfig& config() const { return cfg_; }
  ExpertStage& stage() { return *stage_; }
  bool holds(int64_t layer, int64_t expert) const { return stage_->holds(layer, expert); }
  int64_t expert_count() const { return expert_count_; }

 private:
  ExpertShard(const std::filesystem::path& dir, const std::string& dtype,
              const ExpertSelection& owned, const LoadProgress& progress);
  ModelConfig cfg_;
  Checkpoint ckpt_;
  ComputeType type_;
  WeightStore store_;
  ExpertWeights weights_;
  std::unique_ptr<ExpertStage> stage_;
  int64_t expert_count_ = 0;
};

}  // namespace moeflow
