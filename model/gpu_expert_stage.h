#pragma once
// The expert stage on a GPU: the same contract as ExpertStage (model/expert_stage.h) over the
// same ExpertWeights, run by kernels/cuda/expert_stage.h on one GPU (cuBLAS GEMMs, loaded at run
// time). Weights are uploaded once as bf16 (fp32 weights are rounded to bf16); each run() groups
// the batch's (row, expert) pairs on the host, copies the batch in and the result out and waits
// for them. model/expert_shard.h makes one for a shard with device = "cuda:N".
#include <cstdint>
#include <memory>

#include "model/model_config.h"
#include "model/token_batch.h"
#include "model/weights.h"

namespace moeflow {

class GpuExpertStage {
 public:
  // Uploads the held experts of every layer to GPU `device`. Throws moeflow::Error naming the
  // device when this process has no such GPU (or was built without CUDA), when cuBLAS
  // (libcublas.so.13) cannot be loaded - naming the paths tried - or when it runs out of device
  // memory.
  GpuExpertStage(const ModelConfig& cfg, const ExpertWeights& weights, int device);
  ~GpuExpertStage();
  GpuExpertStage(const GpuExpertStage&) = delete;
  GpuExpertStage& operator=(const GpuExpertStage&) = delete;

  bool holds(int64_t layer, int64_t expert) const;

  // out: [batch.size(), hidden] overwritten with sum over chosen experts held here of
  // weight * expert(row). Returns how many (row, expert) pairs it computed.
  int64_t run(const TokenBatch& batch, float* out);

  // Device memory held for weights, in bytes.
  int64_t weight_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeflow
