#pragma once
// Device-side fills for benchmarks: large random tensors without a host copy.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moeflow::kernels::cuda {

// p[i] = bf16 of a uniform value in [-scale, scale) from a hash of (seed, i): the same tensor for
// the same seed on any GPU. Asynchronous on `stream`.
void fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

// The same values in fp32.
void fill_random_f32(float* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace moeflow::kernels::cuda
