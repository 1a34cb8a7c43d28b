#pragma once
// What the two sides of the NCCL group's control plane share (gpu_group_controller.h on the
// router node, gpu_group_participant.h on each node holding GPU shards): the state of a
// generation and where their log lines go.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace moeflow::transport {

enum class GpuGroupState : uint8_t {
  none,     // no group: fewer than two GPU members, or not a member
  forming,  // a generation was announced and not every rank has formed yet
  formed,   // every rank formed: the GPU data plane may be used
  failed,   // a rank failed or the forming deadline passed: the data plane stays on ZeroMQ
};
inline constexpr GpuGroupState kGpuGroupStates[] = {GpuGroupState::none, GpuGroupState::forming,
                                                    GpuGroupState::formed, GpuGroupState::failed};

// "none", "forming", "formed", "failed": the label of moeflow_gpu_group_state{state}.
std::string_view gpu_group_state_name(GpuGroupState state);

// One log line, without a trailing newline. An empty sink writes "gpu group: <line>" to stderr.
using GpuGroupLog = std::function<void(const std::string& line)>;
GpuGroupLog gpu_group_log_or_stderr(GpuGroupLog log);

}  // namespace moeflow::transport
