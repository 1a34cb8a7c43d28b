#pragma once
// What the device-resident step (model/gpu_engine_step.h) shares on the host, built in every
// build and free of CUDA types: the routing the GPU router stage hands to the GPU expert stage
// without a trip through host memory, and the host-side checks and arithmetic of that hand-over,
// which run (and are tested) without a GPU.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace moeflow {

// One layer's routing in device memory (GpuRouterStage::attend_and_route_device). The pointers
// belong to the router stage and stay valid until its next attend_and_route(_device) call.
struct DeviceRouting {
  int64_t layer = 0;
  int64_t rows = 0;
  int64_t top_k = 0;                   // 0: a dense layer, nothing to route
  const float* expert_rows = nullptr;  // [rows, hidden] fp32: the experts' input (normed)
  const int32_t* experts = nullptr;    // [rows, top_k]: expert ids, best first
  const float* weights = nullptr;      // [rows, top_k]: their combine weights
};

// Throws moeflow::Error "<who>: ..." naming the layer and shape unless `r` is routing this model
// can run: layer in [0, num_layers), rows >= 0, and, for rows > 0, top_k in [1, num_experts]
// with every pointer set.
void check_device_routing(const DeviceRouting& r, const ModelConfig& cfg, const std::string& who);

// A run of consecutive rows: rows [source, source + count) of a matrix go to rows
// [target, target + count) of another.
struct RowRun {
  int64_t source = 0;
  int64_t target = 0;
  int64_t count = 0;
};

// The wanted `rows` of an [n, ...] matrix, packed in order, as runs of consecutive rows (one copy
// each). Throws moeflow::Error "<who>: ..." for a row outside [0, n).
std::vector<RowRun> row_runs(const std::vector<int64_t>& rows, int64_t n, const std::string& who);

// True when `runs` copy every row of an [n, ...] matrix to itself (nothing to move).
bool is_identity(const std::vector<RowRun>& runs, int64_t n);

// Throws moeflow::Error "<who>: ..." naming the first (layer, expert) of an MoE layer that
// `holds` says is missing. The device step reads the expert use of a layer from the expert
// stage's per-expert counts, which see only held experts.
void require_every_expert(const ModelConfig& cfg,
                          const std::function<bool(int64_t layer, int64_t expert)>& holds,
                          const std::string& who);

}  // namespace moeflow
