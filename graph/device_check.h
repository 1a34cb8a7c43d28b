#pragma once
// Start-up check of the devices a graph gives one node: a shard (or, on the router node, the
// router stage) with device "cuda:N" needs N + 1 CUDA devices visible to that node's process. The
// count comes from the caller (the CUDA probe, kernels/cuda/device.h), so the check itself knows
// nothing of CUDA and is tested anywhere.
#include <functional>
#include <string>
#include <string_view>

#include "graph/graph.h"

namespace moeflow {

// Whether `device` is "cpu" or "cuda:N" (N up to four digits).
bool valid_device_name(std::string_view device);

// The GPU index of a "cuda:N" device; -1 for "cpu" (the syntax was validated at parse time).
int cuda_device_index(const std::string& device);

// Counts the CUDA devices this process sees; sets `why_none` when there are none (no driver, no
// GPU, built without CUDA).
using CudaDeviceProbe = std::function<int(std::string& why_none)>;

// Throws moeflow::Error for the first shard of `g` on `node`, or the router stage when `node` is
// the router node ([model] router_device), whose device this node lacks, e.g.
// "graph.toml:12:1: shard gpu1: device cuda:1, but node local has 1 CUDA device (cuda:0)".
// `probe` runs only when something on `node` names a CUDA device (so CPU-only graphs never
// start the CUDA runtime). Returns how many of them (shards, router stage) name a CUDA device.
int check_devices(const GraphSpec& g, const std::string& node, const CudaDeviceProbe& probe);

}  // namespace moeflow
