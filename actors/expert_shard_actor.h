#pragma once
// expert_shard: owns the weights of its experts and runs the expert stage over the TokenBatches
// the router sends it, replying with the weighted sums.
#include <memory>
#include <string>

#include "actors/messages.h"
#include "actors/shard_metrics.h"
#include "model/expert_shard.h"

namespace moeflow {

struct expert_shard_state {
  static inline const char* name = "expert_shard";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  expert_shard_state() = default;
  std::shared_ptr<ExpertShard> shard;
  std::shared_ptr<ShardMetrics> metrics;  // null: metrics off
};

expert_shard_actor::behavior_type make_expert_shard(
    expert_shard_actor::stateful_pointer<expert_shard_state> self,
    std::shared_ptr<ExpertShard> shard, std::shared_ptr<ShardMetrics> metrics);

// The plain computation behind the actor: the shard's experts over one batch.
ExpertOutput run_expert_batch(ExpertShard& shard, const TokenBatch& batch);

}  // namespace moeflow
