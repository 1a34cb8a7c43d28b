#pragma once
// The router stage (model/router_stage.h) on one GPU: the same contract over the same
// RouterWeights, with the KV cache on the device (GpuKvCache). Weights are uploaded once: bf16
// for matrices (fp32 ones rounded to nearest even), fp32 for norms, biases, the router gate and
// the shared expert's gate. Per layer: input norm, q/k/v GEMMs (normed rows rounded to bf16 once,
// fp32 out), biases, q/k norm, clamp, rotary, the append to the cache, causal attention through
// the decode-attention kernel for prefill and decode alike (model/gpu_attention_table.h), the
// o GEMM and residual, the post-attention norm, then the dense MLP or gate_matmul + route_top_k.
// GEMMs are cuBLAS's (loaded at run time); everything runs on one stream the stage owns.
//
// Two forms of each operation:
// - device-resident (`embed_device`, `attend_and_route_device`, `combine_device`,
//   `logits_device`): the hidden state is a DEVICE pointer the caller keeps across layers, the
//   routing stays in device memory the stage owns (DeviceRouting) for a GPU expert stage on the
//   same device (model/gpu_engine_step.h chains them); they queue work on the stage's stream and
//   return without waiting, except logits_device, which copies the logits out. Small per-call
//   inputs (tokens, positions, the attention table, the budget's mask) go through page-locked
//   staging, one slot per layer, so queuing them never waits for the stream.
// - host (`embed`, `attend_and_route`, `combine`, `logits`), as the router actor passes them:
//   thin wrappers that copy hidden (and the batch) in, run the device form and copy out, waiting
//   for the stream before they return.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/device_step.h"
#include "model/expert_budget.h"
#include "model/gpu_kv_cache.h"
#include "model/model_config.h"
#include "model/router_stage.h"
#include "model/token_batch.h"
#include "model/weights.h"

// cudaStream_t's pointee, declared so that the stream can be named without the CUDA headers.
struct CUstream_st;

namespace moeflow {

class GpuRouterStage {
 public:
  // Uploads the weights to GPU `device`. Throws moeflow::Error naming the device when this
  // process has no such GPU (or was built without CUDA), when cuBLAS (libcublas.so.13) cannot be
  // loaded, when the model routes more experts than route_top_k takes, or when the device runs
  // out of memory.
  GpuRouterStage(const ModelConfig& cfg, const RouterWeights& weights, int device);
  ~GpuRouterStage();
  GpuRouterStage(const GpuRouterStage&) = delete;
  GpuRouterStage& operator=(const GpuRouterStage&) = delete;

  int device() const;
  // The stream every operation queues on (null in a build without CUDA). Work on other streams
  // that reads this stage's outputs must be ordered after it, and this stream after that work
  // (GpuExpertStage::run_device_routed does both with events).
  CUstream_st* stream() const;

  // --- device-resident: `hidden` is [rows, hidden_size] fp32 in this device's memory ---

  // hidden[n, d] = embedding rows of the tokens (host ids, checked < vocab_size). Asynchronous.
  void embed_device(const int32_t* tokens, int64_t n, float* hidden);

  // attend_and_route on device memory: attention (appending to `cache`) and residual into
  // `hidden`; a dense layer's MLP too (the routing's top_k is then 0); an MoE layer's routing
  // (normed rows, expert ids, weights) into buffers of this stage, valid until its next
  // attend_and_route(_device). Asynchronous; arguments are checked first, as attend_and_route's.
  DeviceRouting attend_and_route_device(int64_t layer, const StepLayout& layout, float* hidden,
                                        GpuKvCache& cache, const ExpertBudget& budget = {});

  // hidden += routed ([routing.rows, d], device) + the shared expert over routing.expert_rows.
  // Asynchronous.
  void combine_device(const DeviceRouting& routing, const float* routed, float* hidden);

  // out[i, vocab] (HOST) for rows[i] of hidden ([n, d], device) after the final norm: the one
  // copy out of a step, and the one wait for the stream. Rows outside [0, n) are refused.
  void logits_device(const float* hidden, int64_t n, const std::vector<int64_t>& rows, float* out);

  // --- host pointers: copy in, the device form, copy out, wait ---

  // hidden[n, d] (host) = embedding rows of the tokens (ids must be < vocab_size).
  void embed(const int32_t* tokens, int64_t n, float* hidden);

  // As RouterStage::attend_and_route, with the keys and values appended to `cache` (on this
  // stage's device, of this model's layers and kv width). hidden: host [layout.rows(), d].
  TokenBatch attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                              GpuKvCache& cache, const ExpertBudget& budget = {});

  // hidden += routed + the shared expert (host pointers, [batch.size(), d]); the shared expert
  // reads batch.rows.
  void combine(const TokenBatch& batch, const float* routed, float* hidden);

  // out[i, vocab] (host) for the given rows of hidden (host) after the final norm.
  void logits(const float* hidden, const std::vector<int64_t>& rows, float* out);

  // Bytes of non-expert weights one forward pass reads, as uploaded (bf16 matrices, fp32 gates).
  int64_t bytes_per_step() const;
  // Device memory held for weights.
  int64_t weight_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeflow
