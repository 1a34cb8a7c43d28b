#include "actors/router_actor.h"

#include "actors/actor_system_setup.h"
#include "core/error.h"

namespace moeflow {
namespace {

using self_ptr = router_actor::stateful_pointer<router_state>;

void start_next(self_ptr self);
void run_layers(self_ptr self);

// Ends the current step: deliver (or fail) and start the next queued one.
void finish_step(self_ptr self, const std::string& error) {
  auto& st = self->state;
  KvCacheState& cache = st.model->cache();
  if (error.empty()) {
    for (const auto& s : st.plan.layout.sequences) cache.commit(s.seq_id, s.count);
    auto result = std::make_shared<StepResult>();
    result->vocab = st.model->config().vocab_size;
    result->logits.resize(st.plan.output_rows.size() * result->vocab);
    st.model->logits(st.hidden.data(), st.plan.output_rows, result->logits.data());
    result->rows = st.plan.layout.rows();
    result->layer_wait_us = std::move(st.layer_wait_us);
    result->expert_use = std::move(st.expert_use);
    st.current.promise.deliver(StepResultPtr(std::move(result)));
  } else {
    // Roll back what this step appended to the caches; the sequences stay usable.
    for (const auto& s : st.plan.layout.sequences) cache.truncate(s.seq_id, s.first_position);
    st.current.promise.deliver(make_moeflow_error(error));
  }
  st.busy = false;
  st.current = {};
  start_next(self);
}

using Clock = std::chrono::steady_clock;

void send_slices(self_ptr self, std::vector<BatchSlice> slices);
bool redispatch_failed(self_ptr self);

// All shards of the current layer have answered (or failed).
void on_layer_done(self_ptr self) {
  auto& st = self->state;
  if (!st.failed_slices.empty() && !redispatch_failed(self)) return finish_step(self, st.failure);
  if (st.outstanding > 0) return;  // failed pairs went to other replicas: wait for them
  const double wait_us =
      std::chrono::duration<double, std::micro>(Clock::now() - st.dispatched).count();
  st.layer_wait_us.push_back(wait_us);
  if (st.options.metrics) st.options.metrics->layer_done(*st.batch, wait_us * 1e-6);
  const int64_t d = st.model->config().hidden_size;
  st.routed.assign(st.batch->size() * d, 0.0f);
  for (size_t i = 0; i < st.slices.size(); ++i)
    if (st.outputs[i]) add_slice_output(st.slices[i], st.outputs[i]->rows.data(), st.routed.data());
  st.model->combine(*st.batch, st.routed.data(), st.hidden.data());
  ++st.layer;
  run_layers(self);
}

// Picks a holder for each (row, expert) pair: the replica with the least pairs assigned so far
// in this layer, among those not set aside and not failed in this layer; when every replica is
// set aside it still tries one (a node may be back), but never one that failed in this layer.
class ReplicaChooser {
 public:
  ReplicaChooser(const router_state& st, const std::vector<std::vector<int>>& owners)
      : st_(st), owners_(owners), assigned_(st.shards.size(), 0), now_(Clock::now()) {}

  // -1 when every replica failed in this layer.
  int operator()(int64_t, int32_t expert) {
    if (expert < 0) return -1;
    int best = -1;
    bool best_available = false;
    for (int s : owners_[expert]) {
      if (st_.failed_in_layer[s]) continue;
      const bool available = now_ >= st_.set_aside_until[s];
      if (best < 0 || (available && !best_available) ||
          (available == best_available && assigned_[s] < assigned_[best])) {
        best = s;
        best_available = available;
      }
    }
    if (best >= 0) ++assigned_[best];
    return best;
  }

 private:
  const router_state& st_;
  const std::vector<std::vector<int>>& owners_;
  std::vector<int64_t> assigned_;
  Clock::time_point now_;
};

// Sends the pairs of the failed slices to other replicas. False when some pair has none left.
bool redispatch_failed(self_ptr self) {
  auto& st = self->state;
  std::vector<BatchSlice> again;
  ReplicaChooser choose(st, st.owners[st.layer]);
  for (size_t i : st.failed_slices) {
    const BatchSlice& failed = st.slices[i];
    bool orphan = false;
    auto parts =
        split_batch(failed.batch, static_cast<int>(st.shards.size()), [&](int64_t l, int32_t e) {
          const int holder = choose(l, e);
          if (e >= 0 && holder < 0) orphan = true;
          return holder;
        });
    if (orphan) return false;
    for (BatchSlice& part : parts) {
      for (int64_t& row : part.rows) row = failed.rows[row];  // rows of the layer's batch
      again.push_back(std::move(part));
    }
  }
  st.failed_slices.clear();
  st.failure.clear();
  if (st.options.metrics) st.options.metrics->failed_over(again.size());
  send_slices(self, std::move(again));
  return true;
}

void send_slices(self_ptr self, std::vector<BatchSlice> slices) {
  auto& st = self->state;
  const size_t first = st.slices.size();
  for (BatchSlice& slice : slices) st.slices.push_back(std::move(slice));
  st.outputs.resize(st.slices.size(), nullptr);
  st.outstanding += static_cast<int>(st.slices.size() - first);
  for (size_t i = first; i < st.slices.size(); ++i) {
    const TokenBatchPtr batch = st.slices[i].batch;
    const int64_t layer = st.layer;
    const int holder = st.slices[i].holder;
    self->request(st.shards[holder], st.options.shard_timeout, run_atom::value, batch)
        .then(
            [self, i](const ExpertOutputPtr& out) {
              self->state.outputs[i] = out;
              if (--self->state.outstanding == 0) on_layer_done(self);
            },
            [self, i, layer, holder](caf::error& err) {
              auto& st = self->state;
              if (st.failure.empty())
                st.failure = "layer " + std::to_string(layer) + ": expert shard " +
                             std::to_string(holder) + " failed: " + describe(err);
              st.failed_slices.push_back(i);
              st.failed_in_layer[holder] = true;
              st.set_aside_until[holder] = Clock::now() + st.options.failed_shard_retry;
              if (--st.outstanding == 0) on_layer_done(self);
            });
  }
}

void dispatch_layer(self_ptr self) {
  auto& st = self->state;
  const auto& owners = st.owners[st.layer];
  if (!st.expert_use.empty()) {
    const int64_t base = st.layer * st.model->config().num_experts;
    for (int32_t e : st.batch->experts)
      if (e >= 0) ++st.expert_use[base + e];
  }
  for (int32_t e : st.batch->experts)
    if (e < 0 || e >= static_cast<int32_t>(owners.size()) || owners[e].empty())
      return finish_step(self, "layer " + std::to_string(st.layer) + ": expert " +
                                   std::to_string(e) + " is held by no shard");
  st.failed_in_layer.assign(st.shards.size(), false);
  st.failed_slices.clear();
  st.failure.clear();
  st.slices.clear();
  st.outputs.clear();
  st.outstanding = 0;
  st.dispatched = Clock::now();
  auto slices =
      split_batch(st.batch, static_cast<int>(st.shards.size()), ReplicaChooser(st, owners));
  if (slices.empty()) return on_layer_done(self);
  send_slices(self, std::move(slices));
}

void run_layers(self_ptr self) {
  auto& st = self->state;
  const ModelConfig& cfg = st.model->config();
  while (st.layer < cfg.num_layers) {
    try {
      st.batch = std::make_shared<const TokenBatch>(st.model->attend_and_route(
          st.layer, st.plan.layout, st.hidden.data(), st.current.request->budget));
    } catch (const Error& e) {
      return finish_step(self, e.what());
    }
    if (cfg.layer_is_moe[st.layer]) return dispatch_layer(self);
    ++st.layer;
  }
  finish_step(self, "");
}

void apply_placement(router_state& st, const PlacementUpdate& update) {
  st.shards = update.shards;
  st.owners = update.owners;
  st.set_aside_until.assign(st.shards.size(), Clock::time_point{});
}

void start_next(self_ptr self) {
  auto& st = self->state;
  if (st.busy) return;
  if (st.next_placement) {
    apply_placement(st, *st.next_placement);
    st.next_placement = nullptr;
    st.placement_applied.deliver(true);
  }
  if (st.queue.empty()) return;
  st.busy = true;
  st.current = std::move(st.queue.front());
  st.queue.pop_front();
  const StepRequest& request = *st.current.request;
  const ModelConfig& cfg = st.model->config();
  st.expert_use.clear();
  try {
    if (!request.budget.is_full()) {
      validate(request.budget, cfg);
      st.expert_use.assign(cfg.num_layers * cfg.num_experts, 0);
    }
    st.plan = plan_step(request.sequences, st.model->cache(), request.all_positions);
    st.hidden.assign(st.plan.layout.rows() * st.model->config().hidden_size, 0.0f);
    st.model->embed(st.plan.tokens.data(), st.plan.layout.rows(), st.hidden.data());
  } catch (const Error& e) {
    st.plan = {};  // nothing was appended to any cache
    return finish_step(self, e.what());
  }
  st.layer = 0;
  st.layer_wait_us.clear();
  run_layers(self);
}

}  // namespace

router_actor::behavior_type make_router(router_actor::stateful_pointer<router_state> self,
                                        std::shared_ptr<RouterModel> model,
                                        std::vector<expert_shard_actor> shards, ExpertOwners owners,
                                        RouterOptions options) {
  self->state.model = std::move(model);
  apply_placement(self->state, PlacementUpdate{std::move(shards), std::move(owners)});
  self->state.options = options;
  return {
      [self](step_atom, const StepRequestPtr& request) {
        auto promise = self->make_response_promise<StepResultPtr>();
        self->state.queue.push_back({request, promise});
        start_next(self);
        return promise;
      },
      [self](release_atom, uint64_t seq_id) { self->state.model->cache().release(seq_id); },
      [self](truncate_atom, uint64_t seq_id, int64_t length) {
        self->state.model->cache().truncate(seq_id, length);
      },
      [self](placement_atom, const PlacementUpdatePtr& update) {
        auto& st = self->state;
        if (st.next_placement) st.placement_applied.deliver(false);  // superseded
        st.next_placement = update;
        st.placement_applied = self->make_response_promise<bool>();
        auto promise = st.placement_applied;
        start_next(self);  // applies it now when no step is in flight
        return promise;
      },
  };
}

}  // namespace moeflow
