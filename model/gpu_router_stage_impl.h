#pragma once
// GpuRouterStage's private state, shared by its two source files: gpu_router_stage.cpp (the
// constructor and the device-resident forms) and gpu_router_stage_host.cpp (the host-pointer
// wrappers). Include only there, and only where MOEFLOW_HAVE_CUDA is set.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/cublas_api.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/elementwise.h"
#include "model/gpu_buffer.h"
#include "model/gpu_router_stage.h"
#include "model/gpu_router_weights.h"
#include "model/gpu_staging.h"

namespace moeflow {

namespace kc = kernels::cuda;

// Offsets of one layer's small uploads, the same in its staging slot and in the device `table`
// buffer so that a region copies as is: positions and the budget's mask (before the rotary), then
// the attention table (after the appends, which may move the cache's buffers).
struct LayerInputs {
  size_t positions = 0;  // int32 [n]
  size_t allowed = 0;    // uint8 [mask bytes]
  size_t first_end = 0;  // [0, first_end): the first copy
  size_t keys = 0;       // const float* [n]
  size_t values = 0;     // const float* [n]
  size_t lens = 0;       // int32 [n]
  size_t bytes = 0;      // [keys, bytes): the second copy
};

inline LayerInputs layer_inputs(int64_t n, size_t mask_bytes) {
  const auto align16 = [](size_t x) { return (x + 15) / 16 * 16; };
  const size_t rows = static_cast<size_t>(n);
  LayerInputs l;
  l.allowed = align16(rows * sizeof(int32_t));
  l.first_end = l.allowed + mask_bytes;
  l.keys = align16(l.first_end);
  l.values = l.keys + rows * sizeof(const float*);
  l.lens = l.values + rows * sizeof(const float*);
  l.bytes = l.lens + rows * sizeof(int32_t);
  return l;
}

struct GpuRouterStage::Impl {
  const ModelConfig& cfg;
  int device = 0;
  std::string who;  // "GPU router stage on cuda:N", the prefix of every error
  cudaStream_t stream = nullptr;
  std::unique_ptr<kc::CublasHandle> blas;
  std::unique_ptr<DeviceRouterWeights> w;
  std::unique_ptr<PinnedStaging> staging;  // slot per layer, then one for the token ids
  int64_t bytes_per_step = 0;
  // Scratch, grown on demand: fp32 activations, the bf16 A operand of the GEMMs, the MLP's
  // gate/up and activation, routing, a layer's uploaded inputs, attention's workspace, the
  // logits' rows and output. `hidden` and `routed_in` serve only the host-pointer wrappers; the
  // device forms never grow a buffer a caller's pointer may point into.
  DeviceBuffer hidden, routed_in, normed, rows, a_bf16, q, k, v, attn, proj, mlp_gate, mlp_up,
      act_bf16, gate_logits, experts, weights, tokens, table, attention_ws, picked, logits;

  Impl(const ModelConfig& c, int dev)
      : cfg(c), device(dev), who("GPU router stage on cuda:" + std::to_string(dev)) {}
  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }

  size_t token_slot() const { return static_cast<size_t>(cfg.num_layers); }

  void ok(cudaError_t e, const char* what) const {
    if (e != cudaSuccess) cuda_ok(e, who + ": " + what);
  }
  // A scratch buffer of at least `count` T. Growing frees the old memory, which queued work may
  // still use: wait for the stream first (growth is rare; sizes only go up).
  template <class T>
  T* grow(DeviceBuffer& b, int64_t count, const char* what) {
    const size_t need = static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T);
    if (need > b.bytes()) {
      wait("wait before growing a buffer");
      b.reserve(need, (who + " " + what).c_str());
    }
    return b.as<T>();
  }
  void upload(void* dst, const void* src, size_t bytes, const char* what) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), what);
  }
  void download(void* dst, const void* src, size_t bytes, const char* what) {
    ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), what);
  }
  void wait(const char* what) { ok(cudaStreamSynchronize(stream), what); }

  // out[n, w.rows] fp32 = a[n, w.cols] (bf16) · wᵀ.
  void gemm(const uint16_t* a, const DeviceMatrix& m, int64_t n, float* out, const char* what) {
    kc::gemm_rows_by_weights(*blas, a, m.data, out, kc::GemmOut::f32, n, m.rows, m.cols, stream,
                             what);
  }

  // out[n, d] = down(silu(gate(x)) * up(x)), x fp32 [n, d] on the device.
  void mlp(const DeviceMlp& m, const float* x, int64_t n, float* out) {
    const int64_t d = cfg.hidden_size, inter = m.gate.rows;
    uint16_t* xb = grow<uint16_t>(a_bf16, n * d, "bf16 rows");
    kc::f32_to_bf16(x, n * d, xb, stream);
    float* g = grow<float>(mlp_gate, n * inter, "mlp gate");
    float* u = grow<float>(mlp_up, n * inter, "mlp up");
    gemm(xb, m.gate, n, g, "mlp gate");
    gemm(xb, m.up, n, u, "mlp up");
    uint16_t* act = grow<uint16_t>(act_bf16, n * inter, "mlp activation");
    kc::silu_mul_to_bf16(g, u, n * inter, act, stream);
    gemm(act, m.down, n, out, "mlp down");
  }

  // The checks both forms make before any device work.
  void check_tokens(const int32_t* tokens, int64_t n) const;
  void check_layer(int64_t layer, const StepLayout& layout, const GpuKvCache& cache) const;

  // The device forms' bodies, after the checks.
  void embed(const int32_t* tokens, int64_t n, float* hidden);
  DeviceRouting attend_and_route(int64_t layer, const StepLayout& layout, float* hidden,
                                 GpuKvCache& cache, const ExpertBudget& budget);
  void attention(int64_t layer, const StepLayout& layout, const float* x, GpuKvCache& cache,
                 const LayerInputs& in, unsigned char* staged, unsigned char* uploaded, float* out);
  void combine(int64_t layer, int64_t n, const float* expert_rows, const float* routed,
               float* hidden);
  // Logits of `n` contiguous rows (device) into out (host), then waits.
  void logits_of(const float* rows, int64_t n, float* out);
};

// Runs `body`, turning a kernel's std::invalid_argument / std::runtime_error into moeflow::Error
// with the stage, the call and its size. `context` is called only on failure, so the hot path
// builds no strings.
template <class C, class F>
auto with_context(C&& context, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(context() + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(context() + ": " + e.what());
  }
}

}  // namespace moeflow
