#include "actors/node_devices.h"

#include "graph/device_check.h"
#include "kernels/cuda/device.h"

namespace moeflow {

void check_node_devices(const GraphSpec& g, const std::string& node) {
  check_devices(g, node, [](std::string& why_none) {
    const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
    why_none = devices.error;
    return devices.count;
  });
}

}  // namespace moeflow
