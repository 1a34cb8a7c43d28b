#pragma once
// The router node's metrics of the NCCL group (docs/metrics.md, "GPU group"): the controller's
// GpuGroupStatus as gauges. Every state's series exists from the start (1 for the current one,
// 0 for the others), so that alerts see them before the first change.
#include <array>

#include "metrics/registry.h"
#include "transport/gpu_group_controller.h"

namespace moeflow {

class GpuGroupMetrics {
 public:
  explicit GpuGroupMetrics(metrics::Registry& registry);
  void publish(const transport::GpuGroupStatus& status);

 private:
  metrics::Gauge& generation_;
  metrics::Gauge& members_;
  std::array<metrics::Gauge*, std::size(transport::kGpuGroupStates)> state_{};
};

}  // namespace moeflow
