#include <cuda_bf16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill.h"

namespace moeflow::kernels::cuda {
namespace {

// splitmix64: a cheap, well-mixed hash of the index.
__device__ uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__device__ float uniform(uint64_t seed, int64_t i, float scale) {
  const uint64_t h = mix(seed ^ mix(static_cast<uint64_t>(i)));
  const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return (2.0f * u - 1.0f) * scale;
}

template <class T>
__global__ void fill_random_kernel(T* p, int64_t n, uint64_t seed, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    if constexpr (sizeof(T) == 2)
      p[i] = __float2bfloat16(uniform(seed, i, scale));
    else
      p[i] = uniform(seed, i, scale);
  }
}

template <class T>
void fill_random(T* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t blocks = (n + 255) / 256 < 65536 ? (n + 255) / 256 : 65536;
  fill_random_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, n, seed, scale);
  MOEFLOW_CUDA_CHECK_LAUNCH("fill_random_kernel");
}

}  // namespace

void fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  fill_random(reinterpret_cast<__nv_bfloat16*>(p), n, seed, scale, stream);
}

void fill_random_f32(float* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  fill_random(p, n, seed, scale, stream);
}

}  // namespace moeflow::kernels::cuda
