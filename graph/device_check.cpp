#include "graph/device_check.h"

#include "core/error.h"
#include "graph/diagnostic.h"

namespace moeflow {

int cuda_device_index(const std::string& device) {
  if (device.rfind("cuda:", 0) != 0) return -1;
  return std::stoi(device.substr(5));
}

int check_shard_devices(const GraphSpec& g, const std::string& node, const CudaDeviceProbe& probe) {
  int gpu_shards = 0;
  bool probed = false;
  int cuda_devices = 0;
  std::string why_none;
  for (const ShardSpec* s : g.shards_on(node)) {
    const int index = cuda_device_index(s->device);
    if (index < 0) continue;
    ++gpu_shards;
    if (!probed) {
      cuda_devices = probe(why_none);
      probed = true;
    }
    if (index < cuda_devices) continue;
    std::string has;
    if (cuda_devices <= 0) {
      has = "has no CUDA device";
      if (!why_none.empty()) has += " (" + why_none + ")";
    } else {
      has =
          "has " + std::to_string(cuda_devices) + " CUDA device" +
          (cuda_devices == 1 ? " (cuda:0)" : "s (cuda:0-" + std::to_string(cuda_devices - 1) + ")");
    }
    const std::string where = s->where.file.empty() ? "" : format_location(s->where) + ": ";
    throw Error(where + "shard " + s->name + ": device " + s->device + ", but node " + node + " " +
                has);
  }
  return gpu_shards;
}

}  // namespace moeflow
