#include "actors/node_devices.h"

#include <cstdio>

#include "graph/device_check.h"
#include "kernels/cuda/device.h"

namespace moeflow {

void check_node_devices(const GraphSpec& g, const std::string& node) {
  const int gpu_shards = check_shard_devices(g, node, [](std::string& why_none) {
    const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
    why_none = devices.error;
    return devices.count;
  });
  if (gpu_shards > 0) {
    std::fprintf(stderr,
                 "node %s: %d shard(s) name a CUDA device; their experts run on the CPU for now "
                 "(the GPU expert path is not wired into the shard actors yet)\n",
                 node.c_str(), gpu_shards);
    std::fflush(stderr);
  }
}

}  // namespace moeflow
