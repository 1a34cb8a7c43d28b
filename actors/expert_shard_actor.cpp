#include "actors/expert_shard_actor.h"

namespace moeflow {

ExpertOutput run_expert_batch(ExpertShard& shard, const TokenBatch& batch) {
  ExpertOutput out;
  out.layer = batch.layer;
  out.rows.resize(batch.size() * batch.hidden_size);
  out.computed = shard.stage().run(batch, out.rows.data());
  return out;
}

expert_shard_actor::behavior_type make_expert_shard(
    expert_shard_actor::stateful_pointer<expert_shard_state> self,
    std::shared_ptr<ExpertShard> shard) {
  self->state.shard = std::move(shard);
  return {
      [self](run_atom, const TokenBatchPtr& batch) -> ExpertOutputPtr {
        return std::make_shared<ExpertOutput>(run_expert_batch(*self->state.shard, *batch));
      },
  };
}

}  // namespace moeflow
