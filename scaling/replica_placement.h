#pragma once
// Where added replicas go: the packing step of DeepSeek's EPLB. Each node's load is the tokens of
// the experts it holds, each expert's tokens split evenly over its holders. Replicas are placed
// one at a time, in the order given (the policy's, hottest first), on the least-loaded node that
// does not hold the expert yet; loads are updated after each, so that a batch of replicas spreads
// over the nodes instead of piling onto one. Pure: tested on loads worked out by hand.
#include <cstdint>
#include <vector>

#include "scaling/scaling_policy.h"

namespace moeflow {

struct PlacementLoad {
  int nodes = 0;  // candidates: indices 0..nodes-1
  // holders[layer][expert]: the nodes that hold it (graph shards, added and loading replicas).
  std::vector<std::vector<std::vector<int>>> holders;
  LoadMatrix tokens;  // [layer][expert] over the last window
  // Per node, how many more replicas it may take (its memory budget); empty: no cap.
  std::vector<int> room;
};

// Per node, the tokens it computes: Σ tokens / holders over the experts it holds.
std::vector<double> node_loads(const PlacementLoad& in);

// For each `add` action (other kinds get -1), the node it goes to, or -1 when every candidate
// already holds the expert or has no room left.
std::vector<int> place_replicas(const std::vector<ScalingAction>& actions, PlacementLoad in);

}  // namespace moeflow
