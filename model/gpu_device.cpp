#include "model/gpu_device.h"

#include "core/error.h"
#include "kernels/cpu/convert.h"
#include "kernels/cuda/device.h"

namespace moeflow {

void require_cuda_device(int device, const std::string& who) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (device >= 0 && device < devices.count) return;
  throw Error(who + ": no CUDA device cuda:" + std::to_string(device) +
              (devices.count == 0 ? " (" + devices.error + ")"
                                  : " (this process sees " + std::to_string(devices.count) + ")"));
}

const uint16_t* bf16_bits(const kernels::Matrix& m, std::vector<std::vector<uint16_t>>& keep) {
  if (m.type == kernels::WeightType::bf16) return static_cast<const uint16_t*>(m.data);
  keep.emplace_back(m.rows * m.cols);
  kernels::f32_to_bf16(static_cast<const float*>(m.data), keep.back().data(), m.rows * m.cols);
  return keep.back().data();
}

}  // namespace moeflow
