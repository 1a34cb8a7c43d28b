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
  KvCache& cache = st.model->cache();
  if (error.empty()) {
    for (const auto& s : st.plan.layout.sequences) cache.commit(s.seq_id, s.count);
    auto result = std::make_shared<StepResult>();
    result->vocab = st.model->config().vocab_size;
    result->logits.resize(st.plan.output_rows.size() * result->vocab);
    st.model->stage().logits(st.hidden.data(), st.plan.output_rows, result->logits.data());
    result->layer_wait_us = std::move(st.layer_wait_us);
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

// All shards of the current layer have answered (or failed).
void on_layer_done(self_ptr self) {
  auto& st = self->state;
  if (!st.failure.empty()) return finish_step(self, st.failure);
  const double wait_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - st.dispatched)
          .count();
  st.layer_wait_us.push_back(wait_us);
  if (st.options.metrics) st.options.metrics->layer_done(*st.batch, wait_us * 1e-6);
  const int64_t d = st.model->config().hidden_size;
  st.routed.assign(st.batch->size() * d, 0.0f);
  for (size_t i = 0; i < st.slices.size(); ++i)
    add_slice_output(st.slices[i], st.outputs[i]->rows.data(), st.routed.data());
  st.model->stage().combine(*st.batch, st.routed.data(), st.hidden.data());
  ++st.layer;
  run_layers(self);
}

void dispatch_layer(self_ptr self) {
  auto& st = self->state;
  const auto& owners = st.owners[st.layer];
  for (int32_t e : st.batch->experts)
    if (e < 0 || e >= static_cast<int32_t>(owners.size()) || owners[e].empty())
      return finish_step(self, "layer " + std::to_string(st.layer) + ": expert " +
                                   std::to_string(e) + " is held by no shard");
  st.slices = split_batch(st.batch, static_cast<int>(st.shards.size()),
                          [&owners](int64_t, int32_t e) { return owners[e].front(); });
  st.outputs.assign(st.slices.size(), nullptr);
  st.outstanding = static_cast<int>(st.slices.size());
  st.failure.clear();
  st.dispatched = std::chrono::steady_clock::now();
  if (st.outstanding == 0) return on_layer_done(self);
  for (size_t i = 0; i < st.slices.size(); ++i) {
    const TokenBatchPtr batch = st.slices[i].batch;
    const int64_t layer = st.layer;
    const int holder = st.slices[i].holder;
    self->request(st.shards[holder], st.options.shard_timeout, run_atom::value, batch)
        .then(
            [self, i](const ExpertOutputPtr& out) {
              self->state.outputs[i] = out;
              if (--self->state.outstanding == 0) on_layer_done(self);
            },
            [self, layer, holder](caf::error& err) {
              if (self->state.failure.empty())
                self->state.failure = "layer " + std::to_string(layer) + ": expert shard " +
                                      std::to_string(holder) + " failed: " + describe(err);
              if (--self->state.outstanding == 0) on_layer_done(self);
            });
  }
}

void run_layers(self_ptr self) {
  auto& st = self->state;
  const ModelConfig& cfg = st.model->config();
  while (st.layer < cfg.num_layers) {
    try {
      st.batch = std::make_shared<const TokenBatch>(st.model->stage().attend_and_route(
          st.layer, st.plan.layout, st.hidden.data(), st.model->cache()));
    } catch (const Error& e) {
      return finish_step(self, e.what());
    }
    if (cfg.layer_is_moe[st.layer]) return dispatch_layer(self);
    ++st.layer;
  }
  finish_step(self, "");
}

void start_next(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.queue.empty()) return;
  st.busy = true;
  st.current = std::move(st.queue.front());
  st.queue.pop_front();
  try {
    st.plan = plan_step(st.current.request->sequences, st.model->cache(), false);
    st.hidden.assign(st.plan.layout.rows() * st.model->config().hidden_size, 0.0f);
    st.model->stage().embed(st.plan.tokens.data(), st.plan.layout.rows(), st.hidden.data());
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
  self->state.shards = std::move(shards);
  self->state.owners = std::move(owners);
  self->state.options = options;
  return {
      [self](step_atom, const StepRequestPtr& request) {
        auto promise = self->make_response_promise<StepResultPtr>();
        self->state.queue.push_back({request, promise});
        start_next(self);
        return promise;
      },
      [self](release_atom, uint64_t seq_id) { self->state.model->cache().release(seq_id); },
  };
}

}  // namespace moeflow
