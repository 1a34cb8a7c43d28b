// The expert paths' combine: out[row] = sum over held choices j (in order) of weight_j *
// expert_out[pos_j]. One block per row; float4 columns when hidden % 4 == 0 and out is 16-byte
// aligned.
#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/expert_combine.h"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kCombineThreads = 256;

// A position outside [0, positions) counts as not held.
template <bool kVec>
__global__ void __launch_bounds__(kCombineThreads)
    combine_kernel(const float* __restrict__ expert_out, const int32_t* __restrict__ pos_of_pair,
                   const float* __restrict__ weights, int64_t top_k, int64_t hidden,
                   int64_t positions, float* __restrict__ out) {
  const int64_t row = blockIdx.x;
  const int32_t* pos = pos_of_pair + row * top_k;
  const float* wt = weights + row * top_k;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x * 4; c < hidden; c += kCombineThreads * 4) {
      float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int64_t j = 0; j < top_k; ++j) {
        const int32_t p = pos[j];
        if (p < 0 || p >= positions) continue;
        const float w = wt[j];
        const float4 e = *reinterpret_cast<const float4*>(expert_out + p * hidden + c);
        sum.x += w * e.x;
        sum.y += w * e.y;
        sum.z += w * e.z;
        sum.w += w * e.w;
      }
      *reinterpret_cast<float4*>(out + row * hidden + c) = sum;
    }
  } else {
    for (int64_t c = threadIdx.x; c < hidden; c += kCombineThreads) {
      float sum = 0.0f;
      for (int64_t j = 0; j < top_k; ++j) {
        const int32_t p = pos[j];
        if (p >= 0 && p < positions) sum += wt[j] * expert_out[p * hidden + c];
      }
      out[row * hidden + c] = sum;
    }
  }
}

}  // namespace

void expert_combine(const float* expert_out, const int32_t* pos_of_pair, const float* weights,
                    int64_t n, int64_t top_k, int64_t hidden, int64_t positions, float* out,
                    cudaStream_t stream) {
  if (n < 0 || top_k < 1 || hidden < 1 || positions < 0 || n > INT_MAX ||
      (n > 0 && top_k > INT_MAX / n))
    throw std::invalid_argument("expert_combine: bad shape (n " + std::to_string(n) + ", top_k " +
                                std::to_string(top_k) + ", hidden " + std::to_string(hidden) +
                                ", positions " + std::to_string(positions) + ")");
  if (n == 0) return;
  if (!pos_of_pair || !weights || !out || (positions > 0 && !expert_out))
    throw std::invalid_argument("expert_combine: null expert_out, pos_of_pair, weights or out");
  const auto rows = static_cast<unsigned>(n);
  if (hidden % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0 &&
      reinterpret_cast<uintptr_t>(expert_out) % 16 == 0)
    combine_kernel<true><<<rows, kCombineThreads, 0, stream>>>(expert_out, pos_of_pair, weights,
                                                               top_k, hidden, positions, out);
  else
    combine_kernel<false><<<rows, kCombineThreads, 0, stream>>>(expert_out, pos_of_pair, weights,
                                                                top_k, hidden, positions, out);
  MOEFLOW_CUDA_CHECK_LAUNCH("combine_kernel");
}

}  // namespace moeflow::kernels::cuda
