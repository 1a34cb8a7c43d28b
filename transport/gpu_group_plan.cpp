#include "transport/gpu_group_plan.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "graph/device_check.h"

namespace moeflow::transport {

namespace {

// The CUDA devices of `node`'s shards, ascending, each once.
std::vector<int32_t> gpu_devices_of(const GraphSpec& graph, const std::string& node) {
  std::vector<int32_t> devices;
  for (const ShardSpec* shard : graph.shards_on(node)) {
    const int index = cuda_device_index(shard->device);
    if (index >= 0) devices.push_back(index);
  }
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  return devices;
}

void add_node(GpuGroupPlan& plan, const GraphSpec& graph, const std::string& node) {
  const std::vector<int32_t> devices = gpu_devices_of(graph, node);
  if (devices.size() > kMaxGpuGroupNodeDevices)
    throw Error("plan_gpu_group: node " + node + " has " + std::to_string(devices.size()) +
                " GPU devices, more than the " + std::to_string(kMaxGpuGroupNodeDevices) +
                " a gpu_group_ready answer carries");
  for (int32_t device : devices) plan.members.push_back({node, device});
}

}  // namespace

int GpuGroupPlan::rank_of(std::string_view node, int32_t device) const {
  for (size_t r = 0; r < members.size(); ++r)
    if (members[r].node == node && members[r].device == device) return static_cast<int>(r);
  return -1;
}

GpuGroup GpuGroupPlan::with_unique_id(const NcclUniqueIdBytes& unique_id) const {
  return GpuGroup{generation, unique_id, members};
}

GpuGroupPlan plan_gpu_group(const GraphSpec& graph, uint64_t generation) {
  if (generation == 0) throw Error("plan_gpu_group: generation 0 (generations start at 1)");
  GpuGroupPlan plan;
  plan.generation = generation;
  std::string router;
  for (const NodeSpec& n : graph.nodes)
    if (n.router) router = n.name;
  if (!router.empty()) add_node(plan, graph, router);
  for (const NodeSpec& n : graph.nodes)
    if (n.name != router) add_node(plan, graph, n.name);
  if (plan.members.size() > kMaxGpuGroupRanks)
    throw Error("plan_gpu_group: " + std::to_string(plan.members.size()) +
                " GPU members, more than the " + std::to_string(kMaxGpuGroupRanks) +
                " a gpu_group message carries");
  return plan;
}

GpuGroupPlan plan_without_node(const GpuGroupPlan& previous, std::string_view lost_node) {
  GpuGroupPlan next;
  next.generation = previous.generation + 1;
  for (const GpuGroupMember& m : previous.members)
    if (m.node != lost_node) next.members.push_back(m);
  return next;
}

}  // namespace moeflow::transport
