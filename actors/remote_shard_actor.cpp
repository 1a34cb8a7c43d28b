#include "actors/remote_shard_actor.h"

#include "actors/actor_system_setup.h"

namespace moeflow {

remote_shard_actor::behavior_type make_remote_shard(
    remote_shard_actor::stateful_pointer<remote_shard_state> self, Bridge* bridge, int peer,
    uint64_t graph_hash) {
  self->state.bridge = bridge;
  self->state.peer = peer;
  self->state.graph_hash = graph_hash;
  return {
      [self](run_atom, const TokenBatchPtr& batch) {
        auto& st = self->state;
        // Ids are unique per bridge because each remote shard numbers from its own actor id.
        const uint64_t id = (self->id() << 32) | st.next_request_id++;
        auto promise = self->make_response_promise<ExpertOutputPtr>();
        st.pending.emplace(id, promise);
        st.bridge->submit(st.peer, id, batch, st.graph_hash, caf::actor_cast<caf::actor>(self));
        return promise;
      },
      [self](reply_atom, uint64_t id, const ExpertOutputPtr& out) {
        auto it = self->state.pending.find(id);
        if (it == self->state.pending.end()) return;
        it->second.deliver(out);
        self->state.pending.erase(it);
      },
      [self](fail_atom, uint64_t id, const std::string& why) {
        auto it = self->state.pending.find(id);
        if (it == self->state.pending.end()) return;
        it->second.deliver(make_moeflow_error(why));
        self->state.pending.erase(it);
      },
  };
}

}  // namespace moeflow
