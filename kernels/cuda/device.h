#pragma once
// Which CUDA devices this process can use. Built without nvcc, every answer is "none" with the
// reason; with nvcc, the CUDA runtime is asked (no driver or no GPU also answers "none").
#include <string>

namespace moeflow::kernels::cuda {

struct DeviceCount {
  int count = 0;      // devices visible to this process (after CUDA_VISIBLE_DEVICES)
  std::string error;  // why none are usable, when count is 0 ("" otherwise)
};

// Asks once per call; cheap after the runtime's first initialisation.
DeviceCount device_count();

// True when this binary was built with the CUDA kernels.
bool built_with_cuda();

}  // namespace moeflow::kernels::cuda
