// The device probe of a build without nvcc: there is never a CUDA device.
#include "kernels/cuda/device.h"

namespace moeflow::kernels::cuda {

DeviceCount device_count() {
  return {0, "moeflow was built without CUDA, no nvcc found"};
}

bool built_with_cuda() {
  return false;
}

}  // namespace moeflow::kernels::cuda
