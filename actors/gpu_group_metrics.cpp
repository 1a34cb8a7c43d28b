#include "actors/gpu_group_metrics.h"

#include <string>

namespace moeflow {

GpuGroupMetrics::GpuGroupMetrics(metrics::Registry& registry)
    : generation_(registry.gauge("moeflow_gpu_group_generation",
                                 "Generation of the NCCL group of the GPU shards (0: none yet)")),
      members_(registry.gauge("moeflow_gpu_group_members",
                              "Ranks of the current NCCL group generation (0: no group)")) {
  for (size_t i = 0; i < state_.size(); ++i)
    state_[i] = &registry.gauge(
        "moeflow_gpu_group_state",
        "1 for the NCCL group's current state: none, forming, formed or failed",
        {{"state", std::string(transport::gpu_group_state_name(transport::kGpuGroupStates[i]))}});
  publish({});
}

void GpuGroupMetrics::publish(const transport::GpuGroupStatus& status) {
  generation_.set(static_cast<double>(status.generation));
  members_.set(status.members);
  for (size_t i = 0; i < state_.size(); ++i)
    state_[i]->set(transport::kGpuGroupStates[i] == status.state ? 1.0 : 0.0);
}

}  // namespace moeflow
