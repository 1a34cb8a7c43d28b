#pragma once
// The router's node of a deployment graph, assembled: local expert shards for the shards placed
// on this node, remote_shard stand-ins (through one bridge) for shards on other nodes, the router
// with the graph's placement, and the scheduler.
#include <caf/all.hpp>
#include <chrono>
#include <memory>

#include "actors/bridge.h"
#include "actors/local_pipeline.h"
#include "graph/graph.h"
#include "metrics/registry.h"
#include "metrics/routing_recorder.h"

namespace moeflow {

struct RouterNode {
  caf::actor_system* system = nullptr;
  // The node's metrics (docs/metrics.md); declared first so it outlives everything writing to it.
  std::shared_ptr<metrics::Registry> registry = std::make_shared<metrics::Registry>();
  std::shared_ptr<metrics::RoutingRecorder> routing;
  std::unique_ptr<Bridge> bridge;  // null when every shard is local
  LocalPipeline pipeline;
  std::vector<caf::actor> remote_shards;

  ~RouterNode();  // stops the actors and waits for them, then stops the bridge
};

// Loads the router's weights and local shards, connects to the other nodes and waits (up to
// `connect_timeout`) for their handshakes. Throws moeflow::Error naming the nodes it could not
// reach and why.
std::unique_ptr<RouterNode> start_router_node(caf::actor_system& system, const GraphSpec& graph,
                                              std::chrono::milliseconds connect_timeout);

}  // namespace moeflow
