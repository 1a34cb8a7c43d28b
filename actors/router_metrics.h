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
  RouterMetrics(metrics::Registry& registry, const ModelConfig& cfg,
                std::shared_ptr<metrics::RoutingRecorder> routing);

  // One MoE layer of a step is done: its batch's routing and the seconds from dispatching its
  // rows to the last shard's reply.
  void layer_done(const TokenBatch& batch, double wait_seconds);

  metrics::RoutingRecorder& routing() { return *routing_; }

 private:
  std::shared_ptr<metrics::RoutingRecorder> routing_;
  std::vector<metrics::Histogram*> layer_wait_;  // per model layer; null for dense layers
};

// The model's MoE layer indices.
std::vector<int64_t> moe_layers(const ModelConfig& cfg);

}  // namespace moeflow
