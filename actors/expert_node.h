#pragma once
// bridge (expert side): what `moeflow serve --graph FILE --node NAME` runs on a node that holds
// expert shards. It loads the node's shards into expert_shard actors, listens on the node's
// control port (hello / heartbeat / bye) and data port (expert requests), validates every frame
// before use (bad ones are dropped, counted and logged), and answers each request with the
// weighted output of its local shards.
#include <atomic>
#include <string>

#include "graph/graph.h"

namespace moeflow {

struct ExpertNodeOptions {
  std::string node;
  // Set from a signal handler to stop serving.
  const std::atomic<bool>* stop = nullptr;
  // Set from a signal handler (SIGHUP) to read the graph file again; the node also notices a
  // saved file by itself.
  std::atomic<bool>* reload = nullptr;
};

// Serves until *options.stop becomes true. Throws moeflow::Error when the node cannot start
// (unknown node, weights that do not load, a port in use).
void run_expert_node(const GraphSpec& graph, const ExpertNodeOptions& options);

}  // namespace moeflow
