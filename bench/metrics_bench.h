#pragma once
// What the metrics cost: decode through the in-process actor pipeline with metrics off and on
// (shard, router and routing-statistics metrics), rounds alternating between two identical
// pipelines, beside the decode limit that this machine's DRAM bandwidth sets.
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct MetricsBenchOptions {
  std::string model;
  int64_t batch = 1;
  int64_t tokens = 32;  // decode steps timed per round
  int64_t rounds = 6;   // each round times both pipelines, in alternating order
};

int run_metrics_bench(const MetricsBenchOptions& opts);

}  // namespace moeflow::bench
