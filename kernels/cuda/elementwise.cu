#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops: enough blocks to fill any current GPU, never more than the elements need.
constexpr int64_t kMaxBlocks = 4096;

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

void require(bool ok, const char* fn, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(fn) + ": " + what);
}

void check_count(const char* fn, const char* name, int64_t n) {
  require(n >= 0, fn, std::string(name) + " " + std::to_string(n) + " is negative");
}

void check_pointer(const char* fn, const char* name, const void* p, int64_t n) {
  require(n == 0 || p != nullptr, fn,
          std::string(name) + " is null for " + std::to_string(n) + " elements");
}

__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__global__ void __launch_bounds__(kThreads)
    embed_kernel(const uint16_t* __restrict__ table, int64_t vocab, int64_t hidden,
                 const int32_t* __restrict__ tokens, float* __restrict__ out) {
  const int64_t row = blockIdx.x;
  const int32_t t = tokens[row];
  float* y = out + row * hidden;
  if (t < 0 || t >= vocab) {
    for (int64_t i = threadIdx.x; i < hidden; i += kThreads) y[i] = __int_as_float(0x7fc00000);
    return;
  }
  const uint16_t* src = table + static_cast<int64_t>(t) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += kThreads)
    y[i] = __uint_as_float(static_cast<uint32_t>(src[i]) << 16);
}

__global__ void __launch_bounds__(kThreads)
    to_bf16_kernel(const float* __restrict__ x, int64_t n, __nv_bfloat16* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads)
    out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void __launch_bounds__(kThreads)
    bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads)
    y[i] += bias[i % cols];
}

__global__ void __launch_bounds__(kThreads)
    clamp_kernel(float* __restrict__ x, int64_t n, float limit) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads) {
    const float v = x[i];  // std::clamp's comparisons: NaN compares false and stays
    x[i] = v < -limit ? -limit : (limit < v ? limit : v);
  }
}

__global__ void __launch_bounds__(kThreads)
    add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads)
    y[i] += x[i];
}

__global__ void __launch_bounds__(kThreads)
    silu_mul_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n,
                    __nv_bfloat16* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads) {
    const float g = gate[i];
    out[i] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * up[i]);
  }
}

// One block per row: the gate's dot product, then the scaled add.
__global__ void __launch_bounds__(kThreads)
    gated_add_kernel(float* __restrict__ y, const float* __restrict__ x,
                     const float* __restrict__ gate_input, const float* __restrict__ gate_weight,
                     int64_t cols) {
  __shared__ float scratch[kThreads / 32];
  const int64_t row = blockIdx.x;
  float scale = 1.0f;
  if (gate_weight != nullptr) {
    const float* g = gate_input + row * cols;
    float dot = 0.0f;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) dot += g[i] * gate_weight[i];
    scale = sigmoid(detail::block_sum<kThreads>(dot, scratch));
  }
  float* yr = y + row * cols;
  const float* xr = x + row * cols;
  for (int64_t i = threadIdx.x; i < cols; i += kThreads) yr[i] += scale * xr[i];
}

}  // namespace

void embed_rows_bf16(const uint16_t* table, int64_t vocab, int64_t hidden, const int32_t* tokens,
                     int64_t n, float* out, cudaStream_t stream) {
  constexpr const char* fn = "embed_rows_bf16";
  check_count(fn, "n", n);
  require(vocab > 0 && hidden > 0, fn,
          "table shape [" + std::to_string(vocab) + ", " + std::to_string(hidden) + "]");
  require(n <= INT32_MAX, fn, "n " + std::to_string(n) + " rows exceed the grid");
  check_pointer(fn, "table", table, vocab * hidden);
  check_pointer(fn, "tokens", tokens, n);
  check_pointer(fn, "out", out, n);
  if (n == 0) return;
  embed_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(table, vocab, hidden, tokens,
                                                                  out);
  MOEFLOW_CUDA_CHECK_LAUNCH("embed_kernel");
}

void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  constexpr const char* fn = "f32_to_bf16";
  check_count(fn, "n", n);
  check_pointer(fn, "x", x, n);
  check_pointer(fn, "out", out, n);
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n,
                                                         reinterpret_cast<__nv_bfloat16*>(out));
  MOEFLOW_CUDA_CHECK_LAUNCH("to_bf16_kernel");
}

void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  constexpr const char* fn = "add_bias_rows";
  check_count(fn, "rows", rows);
  require(cols > 0, fn, "cols " + std::to_string(cols) + " is not positive");
  check_pointer(fn, "y", y, rows);
  check_pointer(fn, "bias", bias, cols);
  if (rows == 0) return;
  bias_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(y, bias, rows * cols, cols);
  MOEFLOW_CUDA_CHECK_LAUNCH("bias_kernel");
}

void clamp_values(float* x, int64_t n, float limit, cudaStream_t stream) {
  constexpr const char* fn = "clamp_values";
  check_count(fn, "n", n);
  require(limit > 0.0f, fn, "limit " + std::to_string(limit) + " is not positive");
  check_pointer(fn, "x", x, n);
  if (n == 0) return;
  clamp_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, limit);
  MOEFLOW_CUDA_CHECK_LAUNCH("clamp_kernel");
}

void add_values(float* y, const float* x, int64_t n, cudaStream_t stream) {
  constexpr const char* fn = "add_values";
  check_count(fn, "n", n);
  check_pointer(fn, "y", y, n);
  check_pointer(fn, "x", x, n);
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n);
  MOEFLOW_CUDA_CHECK_LAUNCH("add_kernel");
}

void silu_mul_to_bf16(const float* gate, const float* up, int64_t n, uint16_t* out,
                      cudaStream_t stream) {
  constexpr const char* fn = "silu_mul_to_bf16";
  check_count(fn, "n", n);
  check_pointer(fn, "gate", gate, n);
  check_pointer(fn, "up", up, n);
  check_pointer(fn, "out", out, n);
  if (n == 0) return;
  silu_mul_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n,
                                                          reinterpret_cast<__nv_bfloat16*>(out));
  MOEFLOW_CUDA_CHECK_LAUNCH("silu_mul_kernel");
}

void gated_add_rows(float* y, const float* x, const float* gate_input, const float* gate_weight,
                    int64_t rows, int64_t cols, cudaStream_t stream) {
  constexpr const char* fn = "gated_add_rows";
  check_count(fn, "rows", rows);
  require(cols > 0, fn, "cols " + std::to_string(cols) + " is not positive");
  require(rows <= INT32_MAX, fn, "rows " + std::to_string(rows) + " exceed the grid");
  check_pointer(fn, "y", y, rows);
  check_pointer(fn, "x", x, rows);
  if (gate_weight != nullptr) check_pointer(fn, "gate_input", gate_input, rows);
  if (rows == 0) return;
  gated_add_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(y, x, gate_input,
                                                                         gate_weight, cols);
  MOEFLOW_CUDA_CHECK_LAUNCH("gated_add_kernel");
}

}  // namespace moeflow::kernels::cuda
