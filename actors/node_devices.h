#pragma once
// The start-up device check of a node, shared by the router node and expert nodes: the graph's
// shards on this node against the CUDA devices this process sees (graph/device_check.h).
#include <string>

#include "graph/graph.h"

namespace moeflow {

// Throws moeflow::Error naming the shard, node and device count when a shard on `node` names a
// GPU this process lacks.
void check_node_devices(const GraphSpec& g, const std::string& node);

}  // namespace moeflow
