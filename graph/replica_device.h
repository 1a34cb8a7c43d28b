#pragma once
// Where a replica the autoscaler adds on a node loads (actors/added_replicas.h). A replica is
// there to relieve a hot expert, so it goes to the node's GPU when the node has one in use.
#include <string>

#include "graph/graph.h"

namespace moeflow {

// The "cuda:N" that most of `node`'s shards name (on the router node, [model] router_device
// counts as one more), the lowest N on a tie; "cpu" when nothing on the node runs on a GPU. The
// node's devices were checked at start-up (graph/device_check.h), so the GPU exists.
std::string replica_device(const GraphSpec& g, const std::string& node);

}  // namespace moeflow
