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
// `hidden`, `routed` and `out` are HOST pointers, as the router actor passes them today: each
// call copies hidden in, works, copies it (and the batch / logits) out and waits. That costs two
// [n, hidden] fp32 transfers per call. The next step is a device-resident hidden state: hidden
// kept on the device across layers (an overload taking device pointers, or a handle owned by the
// stage per step), the TokenBatch's rows handed to a GPU expert stage on the same device without
// the round trip, and combine reading the routed outputs from device memory; the host then only
// sees token ids in and logits out.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/expert_budget.h"
#include "model/gpu_kv_cache.h"
#include "model/model_config.h"
#include "model/router_stage.h"
#include "model/token_batch.h"
#include "model/weights.h"

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
