#include "graph/device_check.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/error.h"
#include "graph/diagnostic.h"

namespace moeflow {

bool valid_device_name(std::string_view d) {
  if (d == "cpu") return true;
  if (d.substr(0, 5) != "cuda:" || d.size() == 5 || d.size() > 9) return false;
  return std::all_of(d.begin() + 5, d.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

int cuda_device_index(const std::string& device) {
  if (device.rfind("cuda:", 0) != 0) return -1;
  return std::stoi(device.substr(5));
}

int check_devices(const GraphSpec& g, const std::string& node, const CudaDeviceProbe& probe) {
  // What runs on this node and where: its shards, and the router stage on the router node.
  struct Placed {
    std::string what, device;
    SourceLocation where;
  };
  std::vector<Placed> placed;
  for (const ShardSpec* s : g.shards_on(node))
    placed.push_back({"shard " + s->name, s->device, s->where});
  const bool router = std::any_of(g.nodes.begin(), g.nodes.end(),
                                  [&](const NodeSpec& n) { return n.router && n.name == node; });
  if (router)
    placed.push_back({"[model] router_device", g.model.router_device, g.model.router_device_where});
  int on_gpus = 0;
  bool probed = false;
  int cuda_devices = 0;
  std::string why_none;
  for (const Placed& p : placed) {
    const int index = cuda_device_index(p.device);
    if (index < 0) continue;
    ++on_gpus;
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
    const std::string where = p.where.file.empty() ? "" : format_location(p.where) + ": ";
    throw Error(where + p.what + ": device " + p.device + ", but node " + node + " " + has);
  }
  return on_gpus;
}

}  // namespace moeflow
