#pragma once
// Error checks for CUDA runtime calls and kernel launches in kernels/cuda/*.cu: a failure throws
// std::runtime_error naming the file, line and failing call.
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace moeflow::kernels::cuda::detail {

[[noreturn]] inline void cuda_fail(cudaError_t e, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " +
                           cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace moeflow::kernels::cuda::detail

#define MOEFLOW_CUDA_CHECK(call)                                                               \
  do {                                                                                         \
    const cudaError_t moeflow_cuda_e_ = (call);                                                \
    if (moeflow_cuda_e_ != cudaSuccess)                                                        \
      ::moeflow::kernels::cuda::detail::cuda_fail(moeflow_cuda_e_, #call, __FILE__, __LINE__); \
  } while (0)

// After a launch: configuration errors (grid, shared memory) show here; faults inside the kernel
// show at the next synchronising call.
#define MOEFLOW_CUDA_CHECK_LAUNCH(name) MOEFLOW_CUDA_CHECK(cudaGetLastError())
