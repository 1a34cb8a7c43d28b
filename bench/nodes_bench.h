#pragma once
// Decode through the actor pipeline with the experts on 1, 2 and 3 nodes (processes on
// loopback), and the latency a network hop adds to each MoE layer.
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct NodesBenchOptions {
  std::string model;
  int64_t batch = 1;
  int64_t tokens = 32;  // decode steps timed per configuration
};

int run_nodes_bench(const NodesBenchOptions& opts);

}  // namespace moeflow::bench
