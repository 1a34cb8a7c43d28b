#pragma once
// Skewed load (prompts that send most tokens to a few experts) through a router node with the
// autoscaler off, with the threshold policy and with the EPLB-style policy: tokens/s of each,
// their ratios to "off", measured in one run, beside the fp32 FMA peak (batched prefill-heavy
// work is compute-bound).
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct ScalingBenchOptions {
  std::string model;
  int64_t batch = 16;   // requests in flight together
  int64_t prompt = 32;  // prompt tokens (one token id repeated: the skew)
  int64_t tokens = 8;   // generated per request
  int64_t rounds = 4;   // timed rounds per policy, after the warm-up
};

int run_scaling_bench(const ScalingBenchOptions& opts);

}  // namespace moeflow::bench
