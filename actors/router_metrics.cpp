#include "actors/router_metrics.h"

namespace moeflow {

std::vector<int64_t> moe_layers(const ModelConfig& cfg) {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    if (cfg.layer_is_moe[l]) layers.push_back(l);
  return layers;
}

RouterMetrics::RouterMetrics(std::shared_ptr<metrics::Registry> registry, const ModelConfig& cfg,
                             std::shared_ptr<metrics::RoutingRecorder> routing)
    : routing_(std::move(routing)),
      layer_wait_(cfg.num_layers, nullptr),
      failovers_(registry->counter("moeflow_router_failovers_total",
                                   "Slices of failed expert-shard requests sent again to other "
                                   "replicas")),
      registry_(registry) {
  for (int64_t l : moe_layers(cfg))
    layer_wait_[l] = &registry->histogram(
        "moeflow_layer_wait_seconds",
        "Per MoE layer and step: rows dispatched to the last expert shard's reply",
        {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
        {{"layer", std::to_string(l)}});
}

void RouterMetrics::layer_done(const TokenBatch& batch, double wait_seconds) {
  if (batch.layer >= 0 && batch.layer < static_cast<int64_t>(layer_wait_.size()) &&
      layer_wait_[batch.layer])
    layer_wait_[batch.layer]->observe(wait_seconds);
  routing_->record(batch.layer, batch.top_k, batch.experts, batch.weights);
}

}  // namespace moeflow
