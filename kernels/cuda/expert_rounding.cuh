#pragma once
// The arithmetic both GPU expert paths share (device code only): how x is rounded to bf16 for
// the first GEMM, SwiGLU in fp32 from bf16 gate and up, and the round to bf16 of what cuBLAS
// hands back as bf16. The cuBLAS path (expert_stage.cu) and the small-batch GEMV
// (expert_small_batch.cu) use these same functions so that they round at the same places and
// agree to fp32 summation order.
#include <cuda_bf16.h>

#include <cstdint>

namespace moeflow::kernels::cuda::detail {

__device__ __forceinline__ float swiglu(float gate, float up) {
  return gate / (1.0f + expf(-gate)) * up;
}

// fp32 -> nearest bf16 (ties to even) -> fp32: what a bf16 GEMM output stores.
__device__ __forceinline__ float round_to_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// dst[0, cols) = bf16(src[0, cols)) (round to nearest even), zeros when !valid; the threads of
// a block of kThreads share the row. kVec: two 16-byte loads and one 16-byte store per 8
// columns (cols % 8 == 0, src and dst 16-byte aligned).
template <bool kVec, int kThreads>
__device__ __forceinline__ void row_to_bf16(const float* __restrict__ src, bool valid, int64_t cols,
                                            __nv_bfloat16* __restrict__ dst) {
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x * 8; c < cols; c += kThreads * 8) {
      float4 lo = make_float4(0.0f, 0.0f, 0.0f, 0.0f), hi = lo;
      if (valid) {
        lo = *reinterpret_cast<const float4*>(src + c);
        hi = *reinterpret_cast<const float4*>(src + c + 4);
      }
      alignas(16) __nv_bfloat162 v[4] = {
          __floats2bfloat162_rn(lo.x, lo.y), __floats2bfloat162_rn(lo.z, lo.w),
          __floats2bfloat162_rn(hi.x, hi.y), __floats2bfloat162_rn(hi.z, hi.w)};
      *reinterpret_cast<uint4*>(dst + c) = *reinterpret_cast<const uint4*>(v);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kThreads)
      dst[c] = __float2bfloat16(valid ? src[c] : 0.0f);
  }
}

}  // namespace moeflow::kernels::cuda::detail
