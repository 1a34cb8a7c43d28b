#pragma once
// Who belongs to the NCCL group of a graph's GPU shards, and in which rank order. Pure: the
// controller computes it, every member can recompute it from the same graph, and it is tested
// without a GPU.
//
// Members are the distinct (node, CUDA device) pairs that hold at least one shard with device
// "cuda:N". Ranks: the router node's devices first (so its GPU, when it has one, is rank 0), then
// the other nodes in the graph's order (name order); within a node, devices ascending. So the
// ranks of one node are contiguous.
#include <cstdint>
#include <string_view>
#include <vector>

#include "graph/graph.h"
#include "transport/gpu_group.h"

namespace moeflow::transport {

struct GpuGroupPlan {
  uint64_t generation = 1;
  std::vector<GpuGroupMember> members;  // members[r] holds rank r

  int nranks() const { return static_cast<int>(members.size()); }
  // Fewer than two members move nothing between GPUs: no communicator is formed and the
  // controller sends no gpu_group (a lone GPU shard talks to the rest over ZeroMQ as a CPU shard
  // does).
  bool needs_communicator() const { return members.size() >= 2; }
  // The rank of (node, device), or -1 when it is not a member.
  int rank_of(std::string_view node, int32_t device) const;
  // The announcement for this plan, once the controller has a unique id for it.
  GpuGroup with_unique_id(const NcclUniqueIdBytes& unique_id) const;
};

// The plan of `graph`'s GPU shards (generation `generation`, >= 1). Throws moeflow::Error past
// kMaxGpuGroupRanks members or kMaxGpuGroupNodeDevices devices on one node.
GpuGroupPlan plan_gpu_group(const GraphSpec& graph, uint64_t generation = 1);

// Re-forming after `lost_node` went away: the members of `previous` without that node's, in the
// same order (so the same plan as a graph without that node's shards), ranks renumbered densely,
// generation + 1. A node that held no member gives the same members with generation + 1; the
// controller does not ask for that (gpu_group_controller.h): NCCL's connections run between the
// ranks and the bootstrap root, so a lost node without ranks cannot hang the communicator.
GpuGroupPlan plan_without_node(const GpuGroupPlan& previous, std::string_view lost_node);

}  // namespace moeflow::transport
