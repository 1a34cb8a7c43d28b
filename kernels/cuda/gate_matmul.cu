#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gate_matmul.h"
#include "kernels/cuda/warp_reduce.cuh"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;  // experts per block
constexpr int kRowsPerTile = 8;    // rows of x per warp, kept in registers

__device__ __forceinline__ float bf16_to_f32(uint16_t v) {
  return __uint_as_float(static_cast<uint32_t>(v) << 16);
}

// Loads kWidth consecutive weights starting at w + i as fp32. kWidth 4 (fp32) or 8 (bf16) uses
// one 16-byte load; 1 is the scalar path.
template <class T, int kWidth>
__device__ __forceinline__ void load_weights(const T* __restrict__ w, int64_t i,
                                             float (&out)[kWidth]) {
  if constexpr (kWidth == 1) {
    if constexpr (sizeof(T) == 4) {
      out[0] = w[i];
    } else {
      out[0] = bf16_to_f32(w[i]);
    }
  } else if constexpr (sizeof(T) == 4) {
    static_assert(kWidth == 4, "fp32 weights: float4");
    const float4 v = *reinterpret_cast<const float4*>(w + i);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    static_assert(kWidth == 8, "bf16 weights: 8 per 16 bytes");
    const uint4 v = *reinterpret_cast<const uint4*>(w + i);
    const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      out[2 * j] = __uint_as_float(words[j] << 16);              // low half: element 2j
      out[2 * j + 1] = __uint_as_float(words[j] & 0xffff0000u);  // high half: element 2j+1
    }
  }
}

// x loads of the same width; kWidth 4 or 8 uses float4 loads (x 16-byte aligned, hidden % 4 == 0).
template <int kWidth>
__device__ __forceinline__ void load_x(const float* __restrict__ x, int64_t i,
                                       float (&out)[kWidth]) {
  if constexpr (kWidth == 1) {
    out[0] = x[i];
  } else {
#pragma unroll
    for (int j = 0; j < kWidth; j += 4) {
      const float4 v = *reinterpret_cast<const float4*>(x + i + j);
      out[j] = v.x, out[j + 1] = v.y, out[j + 2] = v.z, out[j + 3] = v.w;
    }
  }
}

// Block: kWarpsPerBlock experts (blockIdx.y) × one tile of kRowsPerTile rows (blockIdx.x). Lane
// l reads elements [kWidth * (l + 32 j), + kWidth) of the weight row; kWidth divides hidden.
// Rows past the end read the last row again and are not written (no divergent loads).
template <class T, int kWidth>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    gate_matmul_kernel(const float* __restrict__ x, int64_t rows, const T* __restrict__ w,
                       int64_t experts, int64_t hidden, float* __restrict__ logits) {
  const int lane = threadIdx.x & 31;
  const int64_t expert = static_cast<int64_t>(blockIdx.y) * kWarpsPerBlock + threadIdx.x / 32;
  if (expert >= experts) return;  // whole warps leave together
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerTile;
  const T* wr = w + expert * hidden;
  const float* xr[kRowsPerTile];
#pragma unroll
  for (int r = 0; r < kRowsPerTile; ++r) xr[r] = x + min(row0 + r, rows - 1) * hidden;

  float acc[kRowsPerTile] = {};
  for (int64_t i = static_cast<int64_t>(lane) * kWidth; i < hidden; i += 32 * kWidth) {
    float wv[kWidth];
    load_weights<T, kWidth>(wr, i, wv);
#pragma unroll
    for (int r = 0; r < kRowsPerTile; ++r) {
      float xv[kWidth];
      load_x<kWidth>(xr[r], i, xv);
#pragma unroll
      for (int j = 0; j < kWidth; ++j) acc[r] = fmaf(xv[j], wv[j], acc[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerTile; ++r) {
    const float total = detail::warp_sum(acc[r]);
    if (lane == r && row0 + r < rows) logits[(row0 + r) * experts + expert] = total;
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <class T, int kWidth>
void launch(const float* x, int64_t rows, const T* w, int64_t experts, int64_t hidden,
            float* logits, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((rows + kRowsPerTile - 1) / kRowsPerTile),
                  static_cast<unsigned>((experts + kWarpsPerBlock - 1) / kWarpsPerBlock));
  gate_matmul_kernel<T, kWidth>
      <<<grid, 32 * kWarpsPerBlock, 0, stream>>>(x, rows, w, experts, hidden, logits);
  MOEFLOW_CUDA_CHECK_LAUNCH("gate_matmul_kernel");
}

}  // namespace

void gate_matmul(const float* x, int64_t rows, const Matrix& w, float* logits,
                 cudaStream_t stream) {
  check_gate_matmul_args(x, rows, w, logits);
  if (rows == 0) return;
  const int64_t experts = w.rows, hidden = w.cols;
  const bool aligned = aligned16(x) && aligned16(w.data);
  if (w.type == WeightType::f32) {
    const float* wf = static_cast<const float*>(w.data);
    if (aligned && hidden % 4 == 0)
      launch<float, 4>(x, rows, wf, experts, hidden, logits, stream);
    else
      launch<float, 1>(x, rows, wf, experts, hidden, logits, stream);
  } else {
    const uint16_t* wb = static_cast<const uint16_t*>(w.data);
    if (aligned && hidden % 8 == 0)
      launch<uint16_t, 8>(x, rows, wb, experts, hidden, logits, stream);
    else
      launch<uint16_t, 1>(x, rows, wb, experts, hidden, logits, stream);
  }
}

}  // namespace moeflow::kernels::cuda
