#include "actors/expert_shard_actor.h"

#include <chrono>

namespace moeflow {

ExpertOutput run_expert_batch(ExpertShard& shard, const TokenBatch& batch) {
  ExpertOutput out;
  out.layer = batch.layer;
  out.rows.resize(batch.size() * batch.hidden_size);
  out.computed = shard.run(batch, out.rows.data());
  return out;
}

expert_shard_actor::behavior_type make_expert_shard(
    expert_shard_actor::stateful_pointer<expert_shard_state> self,
    std::shared_ptr<ExpertShard> shard, std::shared_ptr<ShardMetrics> metrics) {
  self->state.shard = std::move(shard);
  self->state.metrics = std::move(metrics);
  return {
      [self](run_atom, const TokenBatchPtr& batch) -> ExpertOutputPtr {
        auto& st = self->state;
        if (!st.metrics) return std::make_shared<ExpertOutput>(run_expert_batch(*st.shard, *batch));
        const std::size_t queued = self->mailbox().size();
        const auto start = std::chrono::steady_clock::now();
        auto out = std::make_shared<ExpertOutput>(run_expert_batch(*st.shard, *batch));
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        st.metrics->observe(batch->layer, seconds, out->computed, queued, st.shard->last_work());
        return out;
      },
  };
}

}  // namespace moeflow
