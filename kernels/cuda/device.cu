#include "kernels/cuda/device.h"

#include <cuda_runtime_api.h>

namespace moeflow::kernels::cuda {

DeviceCount device_count() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for later calls
    const std::string code = std::string(", cudaGetDeviceCount: ") + cudaGetErrorName(e);
    // No driver at all reads as "insufficient driver" too: say what it usually means.
    if (e == cudaErrorInsufficientDriver) return {0, "no usable CUDA driver" + code};
    if (e == cudaErrorNoDevice) return {0, "no CUDA-capable device" + code};
    return {0, cudaGetErrorString(e) + code};
  }
  if (n == 0) return {0, "cudaGetDeviceCount: 0 devices"};
  return {n, ""};
}

bool built_with_cuda() {
  return true;
}

}  // namespace moeflow::kernels::cuda
