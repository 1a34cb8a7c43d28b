#pragma once
// The metrics of one expert shard (docs/metrics.md, "Expert pool"): batches, pairs, busy time,
// queue depth and stage latency per shard, busy time per (layer, expert). Updated by the shard's
// actor after each batch with a few atomic adds; series are created on first use and cached.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "metrics/registry.h"
#include "model/expert_stage.h"

namespace moeflow {

class ShardMetrics {
 public:
  // per_expert = false: busy time per layer with expert="all".
  // Keeps `registry` alive as long as these metrics.
  ShardMetrics(std::shared_ptr<metrics::Registry> registry, std::string shard, int64_t layers,
               int64_t experts, bool per_expert);

  // One batch of `layer` took `seconds`; `queued` batches were waiting when it started.
  void observe(int64_t layer, double seconds, int64_t pairs, std::size_t queued,
               std::span<const ExpertWork> work);

 private:
  metrics::Counter& busy_counter(int64_t layer, int64_t expert);

  std::shared_ptr<metrics::Registry> registry_;
  const std::string shard_;
  const int64_t experts_;
  const bool per_expert_;
  metrics::Counter& batches_;
  metrics::Counter& pairs_;
  metrics::Counter& busy_;
  metrics::Gauge& queue_depth_;
  metrics::Histogram& stage_seconds_;
  std::vector<metrics::Counter*> expert_busy_;  // [layer * experts + expert], created lazily
};

}  // namespace moeflow
