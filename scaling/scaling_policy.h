#pragma once
// The autoscaler's decisions, as a pure function of the measured load (no actors, no clocks of
// its own), so that each rule can be tested on numbers worked out by hand.
//
// Load is the tokens the router sent to each (layer, expert) over the last window. An expert's
// load per replica is its tokens over its replicas (the graph's holders plus those added). Two
// policies ([scaling] policy):
//   threshold: add a replica to an expert whose load per replica is above hot_load x its layer's
//     mean load per expert; retire an added replica when, without it, the load per replica would
//     still be below cold_load x the mean (or the layer saw no tokens at all);
//   eplb: spread the memory budget the way DeepSeek's EPLB does: hand replicas one at a time to
//     the expert with the highest load per replica (relative to its layer's mean), then add or
//     retire replicas to reach that assignment.
// Both: never above max_replicas per expert, never over the memory budget, never below the
// graph's holders (which the autoscaler does not touch: every expert keeps at least one
// replica), and no retirement of a replica younger than cooldown_ms.
#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace moeflow {

using LoadMatrix = std::vector<std::vector<double>>;  // [layer][expert]; empty rows: dense
using ReplicaMatrix = std::vector<std::vector<int>>;  // [layer][expert]

struct ScalingAction {
  enum class Kind { add, retire };
  Kind kind = Kind::add;
  int64_t layer = 0, expert = 0;
  std::string reason;  // "hot", "cold", "idle" or "eplb": the metric label
  std::string detail;  // the numbers behind it, for the log
};

struct ScalingInput {
  LoadMatrix tokens;             // this window
  ReplicaMatrix graph_replicas;  // holders in the graph (>= 1 for every MoE expert)
  ReplicaMatrix added;           // replicas the autoscaler added and still runs
  ReplicaMatrix retirable;       // of those, how many are older than the cooldown
  double expert_mb = 0;          // weights of one expert
};

std::vector<ScalingAction> decide_scaling(const ScalingSpec& spec, const ScalingInput& in);

const char* action_name(ScalingAction::Kind kind);  // "add" | "retire"

}  // namespace moeflow
