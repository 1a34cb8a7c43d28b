#pragma once
// What changes between two deployment graphs, and which of those changes a running deployment
// applies without restarting anything (`moeflow graph plan OLD NEW`, and the reload on SIGHUP or
// a saved graph file).
//
// Applied live, between decode steps: experts moved, replicated or dropped among shards (on any
// node of the graph: every node reads the file again and loads what it newly holds), shards added,
// removed or moved between nodes, expert nodes added (started with the new graph first) or
// removed (stopped after the change), the [scheduler] limits, the [scaling] policy, the
// [sampling] defaults and the [speculative] settings. Everything else (the model, the router
// node, an existing node's address or ports, timeouts, metric settings, devices) is listed with
// the reason a restart is needed; a reload that contains such a change is refused as a whole and
// the old graph keeps serving.
#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace moeflow {

struct ShardExpertChange {
  std::string shard;
  std::string node;
  int64_t layer = 0;
  std::vector<int64_t> gained, lost;  // expert ids, sorted
};

struct GraphPlan {
  std::vector<std::string> nodes_added, nodes_removed;    // expert nodes, by name
  std::vector<std::string> shards_added, shards_removed;  // names
  std::vector<ShardExpertChange> experts;                 // per shard and layer that changed
  // "shard gpu0 (node a): cpu -> cuda:0", applied live: the shard loads its experts on the new
  // device while the old copy serves, as a shard that gains experts does.
  std::vector<std::string> devices;
  std::vector<std::string> settings;  // "scheduler.max_running: 64 -> 32", applied live
  std::vector<std::string> restart;   // changes this version cannot apply live, with the reason

  bool empty() const {
    return nodes_added.empty() && nodes_removed.empty() && shards_added.empty() &&
           shards_removed.empty() && experts.empty() && devices.empty() && settings.empty() &&
           restart.empty();
  }
  bool live() const { return restart.empty(); }
};

// Compares `before` and `after` for `model` (both validated against it).
GraphPlan plan_graph_change(const GraphSpec& before, const GraphSpec& after,
                            const ModelConfig& model);

// Human-readable, one change per line, ending with whether it can be applied live.
std::string format_plan(const GraphPlan& plan);

}  // namespace moeflow
