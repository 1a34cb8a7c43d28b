#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/rotary.h"

namespace moeflow::kernels::cuda {
namespace {

constexpr int kThreads = 128;

// One block per row: first cos and sin of the row's angles into shared memory, then every
// (head, i) pair of q's heads followed by k's heads, one pair per thread per iteration.
__global__ void __launch_bounds__(kThreads)
    rope_rotate_half_kernel(float* q, int64_t q_ld, int q_heads, float* k, int64_t k_ld,
                            int k_heads, int head_dim, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq) {
  extern __shared__ float cos_sin[];  // cos [half], then sin [half]
  const int half = head_dim / 2;
  const int64_t row = blockIdx.x;
  const float position = static_cast<float>(positions[row]);
  for (int i = threadIdx.x; i < half; i += kThreads) {
    const float angle = position * inv_freq[i];
    cos_sin[i] = cosf(angle);
    cos_sin[half + i] = sinf(angle);
  }
  __syncthreads();
  const int pairs = (q_heads + k_heads) * half;
  for (int p = threadIdx.x; p < pairs; p += kThreads) {
    const int head = p / half, i = p % half;
    float* v = head < q_heads ? q + row * q_ld + static_cast<int64_t>(head) * head_dim
                              : k + row * k_ld + static_cast<int64_t>(head - q_heads) * head_dim;
    const float a = v[i], b = v[i + half], c = cos_sin[i], s = cos_sin[half + i];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

}  // namespace

void rope_rotate_half(const RotaryTensor& q, const RotaryTensor& k, int64_t rows, int64_t head_dim,
                      const int32_t* positions, const float* inv_freq, cudaStream_t stream) {
  check_rotary_args(q, k, rows, head_dim, positions, inv_freq);
  if (rows == 0 || q.heads + k.heads == 0) return;
  const size_t shared = static_cast<size_t>(head_dim) * sizeof(float);
  rope_rotate_half_kernel<<<static_cast<unsigned>(rows), kThreads, shared, stream>>>(
      q.data, q.ld, static_cast<int>(q.heads), k.data, k.ld, static_cast<int>(k.heads),
      static_cast<int>(head_dim), positions, inv_freq);
  MOEFLOW_CUDA_CHECK_LAUNCH("rope_rotate_half_kernel");
}

}  // namespace moeflow::kernels::cuda
