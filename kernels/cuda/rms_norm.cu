#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// One block per row. kVec4: hidden % 4 == 0 and every pointer 16-byte aligned (float4 loads).
// No __restrict__: out may alias x. Each element is read and written by the same thread after
// the reduction's barrier, so aliasing is safe.
template <bool kVec4>
__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const float* x, const float* weight, int64_t hidden, float eps, float* out) {
  __shared__ float scratch[kThreads / 32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * hidden;
  float* yr = out + row * hidden;
  float ss = 0.0f;
  if constexpr (kVec4) {
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    for (int64_t i = threadIdx.x; i < hidden / 4; i += kThreads) {
      const float4 v = x4[i];
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += kThreads) ss += xr[i] * xr[i];
  }
  ss = detail::block_sum<kThreads>(ss, scratch);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(hidden) + eps);
  if constexpr (kVec4) {
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    const float4* w4 = reinterpret_cast<const float4*>(weight);
    float4* y4 = reinterpret_cast<float4*>(yr);
    for (int64_t i = threadIdx.x; i < hidden / 4; i += kThreads) {
      const float4 v = x4[i], w = w4[i];
      y4[i] = make_float4(w.x * (v.x * scale), w.y * (v.y * scale), w.z * (v.z * scale),
                          w.w * (v.w * scale));
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += kThreads) yr[i] = weight[i] * (xr[i] * scale);
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void rms_norm(const float* x, const float* weight, int64_t rows, int64_t hidden, float eps,
              float* out, cudaStream_t stream) {
  check_rms_norm_args(x, weight, rows, hidden, eps, out);
  if (rows == 0) return;
  const bool vec4 = hidden % 4 == 0 && aligned16(x) && aligned16(weight) && aligned16(out);
  const dim3 grid(static_cast<unsigned>(rows));
  if (vec4)
    rms_norm_kernel<true><<<grid, kThreads, 0, stream>>>(x, weight, hidden, eps, out);
  else
    rms_norm_kernel<false><<<grid, kThreads, 0, stream>>>(x, weight, hidden, eps, out);
  MOEFLOW_CUDA_CHECK_LAUNCH("rms_norm_kernel");
}

}  // namespace moeflow::kernels::cuda
