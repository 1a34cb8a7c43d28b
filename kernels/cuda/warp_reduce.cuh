#pragma once
// Warp- and block-wide reductions for kernels/cuda/*.cu (device code only).
#include <cmath>

namespace moeflow::kernels::cuda::detail {

// Every lane gets the sum (max) of all 32 lanes' values.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the sum of all threads' values. kThreads is the block size, a
// multiple of 32. Synchronises the block twice; `scratch` may be reused after it returns.
template <int kThreads>
__device__ __forceinline__ float block_sum(float v, float (&scratch)[kThreads / 32]) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block of whole warps");
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

}  // namespace moeflow::kernels::cuda::detail
