#pragma once
// The autoscaler of the router node ([scaling] in the graph, docs/graph.md): every window it
// reads the tokens the router sent to each expert (the same counts /metrics exports), asks the
// policy (scaling/scaling_policy.h) what to add or retire, and applies that between decode steps.
//
// An added replica goes to the least-loaded node that holds graph shards and not that expert
// (scaling/replica_placement.h). On an expert node it is loaded there (replica_add on the control
// port, in the background) and joins the placement once the node says it serves it; on the
// router node it is loaded into this process. A graph whose only node is the router's keeps its
// replicas in this process. Every decision is logged with its reason and counted in
// moeflow_autoscaler_actions_total{action, reason}; the replica gauge (moeflow_expert_replicas)
// follows.
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "actors/router_node.h"
#include "scaling/scaling_policy.h"

namespace moeflow {

class Autoscaler {
 public:
  using Log = std::function<void(const std::string&)>;
  Autoscaler(RouterNode& node, Log log);

  // Takes in the replicas expert nodes finished loading, and evaluates when a window has passed
  // since the last evaluation (reads node.graph.scaling each time, so a reloaded graph changes
  // the policy). Returns the actions decided.
  std::vector<ScalingAction> poll();

  // Replicas being loaded on expert nodes.
  size_t loading() const { return loading_.size(); }

 private:
  struct Loading {
    ScalingAction action;
    std::string node;
    int peer = -1;
    std::future<std::string> answer;  // "" once the node serves it
    std::chrono::steady_clock::time_point started;
  };
  // The nodes that may take replicas and, per (layer, expert), which of them hold it.
  struct Candidates;
  Candidates candidates(const Placement& placement) const;
  bool add_here(const ScalingAction& action);  // false (logged, counted) when it fails to load
  void add_on(const ScalingAction& action, const std::string& node);
  bool collect_loaded();  // true when a loaded replica joined
  void retire(const ScalingAction& action, std::vector<expert_shard_actor>& stopped);
  metrics::Counter& series(const char* action, const std::string& reason);
  void count(const char* action, const std::string& reason);

  RouterNode& node_;
  Log log_;
  std::vector<std::vector<uint64_t>> last_totals_;
  std::chrono::steady_clock::time_point last_eval_;
  std::vector<Loading> loading_;
  // Replicas on expert nodes to drop once the placement without them is in use.
  struct Drop {
    int peer;
    int64_t layer, expert;
  };
  std::vector<Drop> drops_;
};

}  // namespace moeflow
