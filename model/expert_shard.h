#pragma once
// The experts one shard owns, loaded from a checkpoint, and the stage that runs them: the CPU
// ExpertStage, or the GpuExpertStage on CUDA device N. The state behind an expert shard actor
// (and the Engine's all-experts stage); callers see one interface whichever runs the experts.
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

class GpuExpertStage;

using ExpertSelection = std::function<bool(int64_t layer, int64_t expert)>;  // null: all

class ExpertShard {
 public:
  // cuda_device < 0: the experts run on the CPU. Otherwise they are uploaded to that GPU (as
  // bf16) once loaded; throws moeflow::Error naming the device when this process lacks it.
  static std::unique_ptr<ExpertShard> load(const std::filesystem::path& dir,
                                           const std::string& dtype, const ExpertSelection& owned,
                                           const LoadProgress& progress, int cuda_device = -1);
  ~ExpertShard();

  const ModelConfig& config() const { return cfg_; }
  bool holds(int64_t layer, int64_t expert) const { return expert_bytes(layer, expert) > 0; }
  int64_t expert_count() const { return expert_count_; }
  int cuda_device() const { return cuda_device_; }  // -1: CPU
  // "cpu" or "cuda:N", for logs.
  std::string device_name() const;

  // out: [batch.size(), hidden] overwritten with the sum over the chosen experts held here of
  // weight * expert(row). Returns how many (row, expert) pairs it computed.
  int64_t run(const TokenBatch& batch, float* out);

  // Per expert that the last run() computed, in expert order. On a GPU the experts run in one
  // launch sequence, so each expert's seconds are the run's time split by its share of pairs.
  const std::vector<ExpertWork>& last_work() const;

  // Bytes of expert weights this batch reads (each touched expert once, at the checkpoint's
  // loaded type on the CPU; a GPU shard reads bf16, half of fp32).
  int64_t bytes_touched(const TokenBatch& batch) const;
  // Bytes of one held expert's weights as this shard reads them (0 when not held).
  int64_t expert_bytes(int64_t layer, int64_t expert) const;

  // The GPU stage behind a cuda:N shard (null on the CPU), for the Engine's device-resident step
  // (model/gpu_engine_step.h), which hands it routing that never leaves the device.
  GpuExpertStage* gpu_stage() const { return gpu_.get(); }

 private:
  ExpertShard(const std::filesystem::path& dir, const std::string& dtype,
              const ExpertSelection& owned, const LoadProgress& progress, int cuda_device);
  ModelConfig cfg_;
  // The host weights. A GPU shard lets them go once uploaded (see the constructor).
  Checkpoint ckpt_;
  ComputeType type_;
  WeightStore store_;
  ExpertWeights weights_;
  std::vector<std::vector<int64_t>> bytes_;  // [layer][expert]: expert_bytes()
  std::unique_ptr<ExpertStage> cpu_;         // set when cuda_device_ < 0
  std::unique_ptr<GpuExpertStage> gpu_;      // set otherwise
  int cuda_device_ = -1;
  int64_t expert_count_ = 0;
  std::vector<ExpertWork> gpu_work_;
  std::vector<int64_t> gpu_pairs_;  // per expert, the last GPU batch's pairs
};

}  // namespace moeflow
