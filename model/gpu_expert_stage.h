#pragma once
// The expert stage on a GPU: the same contract as ExpertStage (model/expert_stage.h) over the
// same ExpertWeights, run by kernels/cuda/expert_stage.h on one GPU (cuBLAS GEMMs, loaded at run
// time). Weights are uploaded once as bf16 (fp32 weights are rounded to bf16); each run() copies
// the batch in and the result out and waits for them: up to 64 pairs through the small-batch
// GEMVs (kernels/cuda/expert_small_batch.h), larger batches grouped on the host for cuBLAS.
// model/expert_shard.h makes one for a shard with device = "cuda:N". run_device_routed() takes
// routing that already lives on the device (the GPU router stage's, model/gpu_engine_step.h) and
// leaves its output there.
#include <cstdint>
#include <memory>

#include "model/device_step.h"
#include "model/model_config.h"
#include "model/token_batch.h"
#include "model/weights.h"

// cudaStream_t's pointee, declared so that a stream can be named without the CUDA headers.
struct CUstream_st;

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

  // Which kernels run_device_routed ran for a layer.
  enum class DevicePath {
    nothing_held,  // no expert of the layer here: zeros written
    small_batch,   // rows * top_k <= kSmallBatchPairsMax (kernels/cuda/expert_plan.h): GEMVs,
                   // the routing read on the device, no host wait
    cublas,        // larger: grouped on the device, per-slot counts copied to the host and
                   // waited for (cuBLAS takes each GEMM's row count from the host)
  };

  // run() on routing in this device's memory (GpuRouterStage::attend_and_route_device): out
  // [routing.rows, hidden] (device) = the sum over chosen experts held here of weight *
  // expert(row). Queued on this stage's stream after the work queued so far on `after` (the
  // producer's stream), and `after` is made to wait for it (events), so the caller keeps queuing
  // on its own stream. Decode-sized routing (small_batch) returns without waiting for anything;
  // larger routing waits once for the per-slot counts (cublas). With `pairs_per_expert` (DEVICE
  // [num_experts] int32), each held pair adds one at its expert, on the device, ordered before
  // `after`'s next work like `out` - the caller copies it to the host when it next waits (the
  // Engine's step: once per step, with the logits). Throws moeflow::Error naming layer and
  // shape for routing this stage cannot run (check_device_routing) or a failed call.
  DevicePath run_device_routed(const DeviceRouting& routing, float* out, CUstream_st* after,
                               int32_t* pairs_per_expert = nullptr);

  // Device memory held for weights, in bytes.
  int64_t weight_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeflow
