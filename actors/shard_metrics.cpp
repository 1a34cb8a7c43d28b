#include "actors/shard_metrics.h"

namespace moeflow {

ShardMetrics::ShardMetrics(std::shared_ptr<metrics::Registry> registry, std::string shard,
                           int64_t layers, int64_t experts, bool per_expert)
    : registry_(std::move(registry)),
      shard_(std::move(shard)),
      experts_(per_expert ? experts : 1),
      per_expert_(per_expert),
      batches_(registry_->counter("moeflow_shard_batches_total", "Token batches the shard ran",
                                  {{"shard", shard_}})),
      pairs_(registry_->counter("moeflow_shard_pairs_total",
                                "(row, expert) pairs the shard computed", {{"shard", shard_}})),
      busy_(registry_->counter("moeflow_shard_busy_seconds_total",
                               "Time the shard spent in the expert stage", {{"shard", shard_}})),
      queue_depth_(registry_->gauge("moeflow_shard_queue_depth",
                                    "Batches at the shard when it last took one, that one included",
                                    {{"shard", shard_}})),
      stage_seconds_(registry_->histogram(
          "moeflow_shard_stage_seconds", "Expert-stage time of one batch",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
          {{"shard", shard_}})),
      expert_busy_(static_cast<std::size_t>(layers * experts_), nullptr) {}

metrics::Counter& ShardMetrics::busy_counter(int64_t layer, int64_t expert) {
  const int64_t e = per_expert_ ? expert : 0;
  metrics::Counter*& slot = expert_busy_[layer * experts_ + e];
  if (!slot)
    slot = &registry_->counter("moeflow_expert_busy_seconds_total",
                               "Time a shard spent computing each expert",
                               {{"layer", std::to_string(layer)},
                                {"expert", per_expert_ ? std::to_string(expert) : "all"},
                                {"shard", shard_}});
  return *slot;
}

void ShardMetrics::observe(int64_t layer, double seconds, int64_t pairs, std::size_t queued,
                           std::span<const ExpertWork> work) {
  batches_.inc();
  pairs_.add(static_cast<double>(pairs));
  busy_.add(seconds);
  queue_depth_.set(static_cast<double>(queued + 1));
  stage_seconds_.observe(seconds);
  if (layer < 0 || static_cast<std::size_t>((layer + 1) * experts_) > expert_busy_.size()) return;
  for (const ExpertWork& w : work)
    if (w.expert >= 0 && (!per_expert_ || w.expert < experts_))
      busy_counter(layer, w.expert).add(w.seconds);
}

}  // namespace moeflow
