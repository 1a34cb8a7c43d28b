#pragma once
// The autoscaler of the router node ([scaling] in the graph, docs/graph.md): every window it
// reads the tokens the router sent to each expert (the same counts /metrics exports), asks the
// policy (scaling/scaling_policy.h) what to add or retire, and applies that between decode steps.
// An added replica is one expert loaded into the router node's process as its own shard actor;
// it joins the placement only once its weights are loaded. Every decision is logged with its
// reason and counted in moeflow_autoscaler_actions_total{action, reason}; the replica gauge
// (moeflow_expert_replicas) follows.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "actors/router_node.h"
#include "scaling/scaling_policy.h"

namespace moeflow {

class Autoscaler {
 public:
  using Log = std::function<void(const std::string&)>;
  Autoscaler(RouterNode& node, Log log);

  // Evaluates when a window has passed since the last evaluation (reads node.graph.scaling each
  // time, so a reloaded graph changes the policy). Returns the actions applied.
  std::vector<ScalingAction> poll();

 private:
  void add(const ScalingAction& action);
  void retire(const ScalingAction& action);

  RouterNode& node_;
  Log log_;
  std::vector<std::vector<uint64_t>> last_totals_;
  std::chrono::steady_clock::time_point last_eval_;
};

}  // namespace moeflow
