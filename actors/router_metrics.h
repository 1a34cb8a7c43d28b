#pragma once
// The router's metrics: each MoE layer's routing (handed to the RoutingRecorder, which reduces it
// in the background) and its wait for the expert shards (docs/metrics.md, "Expert pool").
#include <memory>
#include <vector>

#include "metrics/registry.h"
#include "metrics/routing_recorder.h"
#include "model/model_config.h"
#include "model/token_batch.h"

namespace moeflow {

class RouterMetrics {
 public:
  // Keeps `registry` alive as long as these metrics.
  RouterMetrics(std::shared_ptr<metrics::Registry> registry, const ModelConfig& cfg,
                std::shared_ptr<metrics::RoutingRecorder> routing);

  // One MoE layer of a step is done: its batch's routing and the seconds from dispatching its
  // rows to the last shard's reply.
  void layer_done(const TokenBatch& batch, double wait_seconds);

  // Pairs of failed shard requests were sent again, in `slices` slices, to other replicas.
  void failed_over(size_t slices) { failovers_.add(static_cast<double>(slices)); }

 private:
  std::shared_ptr<metrics::RoutingRecorder> routing_;
  std::vector<metrics::Histogram*> layer_wait_;  // per model layer; null for dense layers
  metrics::Counter& failovers_;
  std::shared_ptr<metrics::Registry> registry_;
};

// The model's MoE layer indices.
std::vector<int64_t> moe_layers(const ModelConfig& cfg);

}  // namespace moeflow
