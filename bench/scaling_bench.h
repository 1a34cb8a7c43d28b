#pragma once
// Skewed load (prompts that send most tokens to a few experts) through a router node with the
// autoscaler off, with the threshold policy and with the EPLB-style policy: tokens/s of each,
// their ratios to "off", measured in one run, beside the fp32 FMA peak (batched prefill-heavy
// work is compute-bound).
//
// nodes = 0: one process holding every expert (replicas are added in it). nodes = 2: the router
// node plus two expert-node processes, one OpenMP thread each (a node per core); each MoE
// layer's hottest half of the experts (measured on the same prompt first) is on experts-1, so
// the skew lands on one node, and replicas go to the other.
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct ScalingBenchOptions {
  std::string model;
  int64_t batch = 16;   // requests in flight together
  int64_t prompt = 32;  // prompt tokens (one token id repeated: the skew)
  int64_t tokens = 8;   // generated per request
  int64_t rounds = 4;   // timed rounds per policy, after the warm-up
  int64_t nodes = 0;    // 0 or 2, see above
};

int run_scaling_bench(const ScalingBenchOptions& opts);

}  // namespace moeflow::bench
