#pragma once
// The NCCL group of a deployment's GPU shards as the controller announces it to the members
// (wire kind gpu_group, docs/nccl.md): which generation it is, the opaque NCCL unique id every
// member joins with, and which (node, CUDA device) holds each rank. Plain values: no CUDA, no
// NCCL, no graph; gpu_group_plan.h derives the members from a graph.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moeflow::transport {

inline constexpr size_t kNcclUniqueIdBytes =
    128;  // NCCL_UNIQUE_ID_BYTES, checked in transport/nccl
inline constexpr uint32_t kMaxGpuGroupRanks = 1024;
// The graph's "cuda:N" takes at most four digits (graph/graph_parser.cpp).
inline constexpr uint32_t kGpuDeviceIndexLimit = 10000;
// Member devices of one node: what one gpu_group_ready answer carries (64 failure texts of
// 1024 bytes stay under the largest gpu_group frame).
inline constexpr uint32_t kMaxGpuGroupNodeDevices = 64;

// An ncclUniqueId as bytes: what ncclGetUniqueId wrote, never interpreted by moeflow.
using NcclUniqueIdBytes = std::array<uint8_t, kNcclUniqueIdBytes>;

// One rank of the group: a CUDA device of a node.
struct GpuGroupMember {
  std::string node;    // the graph's node name
  int32_t device = 0;  // the N of the shard's "cuda:N" on that node

  bool operator==(const GpuGroupMember&) const = default;
};

struct GpuGroup {
  uint64_t generation = 0;  // >= 1, +1 each time the controller re-forms the group
  NcclUniqueIdBytes unique_id{};
  std::vector<GpuGroupMember> members;  // members[r] holds NCCL rank r

  int nranks() const { return static_cast<int>(members.size()); }
  // The ranks held by `node`, ascending (a node with several GPUs holds several ranks).
  std::vector<int> ranks_of(std::string_view node) const;
  // The member nodes in rank order, each once: where the controller sends the group.
  std::vector<std::string> nodes() const;
};

// How forming went on one member device of the answering node.
struct GpuDeviceOutcome {
  int32_t device = 0;   // the N of "cuda:N"
  std::string failure;  // empty: the rank formed; else why not (UTF-8, cut to 1024 bytes)

  bool formed() const { return failure.empty(); }
  bool operator==(const GpuDeviceOutcome&) const = default;
};

// A member node's answer to a gpu_group (wire kind gpu_group_ready): the generation it answers,
// the node, and one outcome per member device of that node.
struct GpuGroupReady {
  uint64_t generation = 0;
  std::string node;
  std::vector<GpuDeviceOutcome> devices;

  bool all_formed() const;
};

}  // namespace moeflow::transport
