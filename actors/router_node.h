#pragma once
// The router's node of a deployment graph, assembled: local expert shards for the shards placed
// on this node, remote_shard stand-ins (through one bridge) for shards on other nodes, the router
// with the graph's placement, and the scheduler. reload() applies an edited graph while serving.
#include <caf/all.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "actors/bridge.h"
#include "actors/gpu_group_service.h"
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
  std::unique_ptr<Bridge> bridge;  // null when the graph has no other node
  // The NCCL group of the GPU shards (docs/nccl.md): made once a graph has a GPU shard; null
  // before. Batches still move over ZeroMQ: nothing uses the group's communicators yet.
  std::unique_ptr<GpuGroupService> gpu_group;
  LocalPipeline pipeline;  // pipeline.shards: one per graph shard, in graph order
  GraphSpec graph;         // the graph being served
  uint64_t model_hash = 0;
  std::map<std::string, int> peer_of;  // expert node name -> bridge peer
  double expert_mb = 0;                // weights of one expert as loaded

  // Replicas the autoscaler added (actors/autoscaler.h): an actor holding one expert in this
  // process (node empty, placed after the graph's shards), or one an expert node loaded beside
  // its shards (node, its bridge peer; no actor: the router reaches it through the stand-in of
  // one of that node's graph shards).
  struct AddedReplica {
    int64_t layer = 0, expert = 0;
    expert_shard_actor actor;  // null for a replica on an expert node
    std::chrono::steady_clock::time_point created;
    std::string node;
    int peer = -1;
  };
  std::vector<AddedReplica> added;

  // Gives the router `graph_shards` with `owners` (the placement of graph `g`) plus the added
  // replicas, and waits until it uses them. A replica on an expert node is reached through the
  // stand-in of the node's first shard in `g`, so that the router sends that node one request
  // per layer, not one per replica. Throws moeflow::Error when the router does not answer.
  void swap_placement(const GraphSpec& g, const std::vector<expert_shard_actor>& graph_shards,
                      ExpertOwners owners);

  // Applies `next` without restarting anything (graph/graph_plan.h says what can change): loads
  // the router node's new shards, waits (up to `wait_for_nodes`) until every expert node runs
  // `next`, then swaps the router's placement between two steps and retires what is no longer
  // used. Returns a one-line summary. Throws moeflow::Error with the reason when `next` cannot
  // be applied; then nothing has changed.
  std::string reload(const GraphSpec& next, std::chrono::milliseconds wait_for_nodes);

  ~RouterNode();  // stops the actors and waits for them, then stops the bridge
};

// Loads the router's weights and local shards, connects to the other nodes and waits (up to
// `connect_timeout`) for their handshakes. Throws moeflow::Error naming the nodes it could not
// reach and why.
std::unique_ptr<RouterNode> start_router_node(caf::actor_system& system, const GraphSpec& graph,
                                              std::chrono::milliseconds connect_timeout);

}  // namespace moeflow
