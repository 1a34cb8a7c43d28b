#pragma once
// router: owns embeddings, attention, norms, gates and the KV cache. For each step and each MoE
// layer it sends every shard the rows whose chosen experts it holds, waits for all of them, and
// combines their weighted outputs before the next layer. Steps run one at a time, in arrival
// order.
//
// Replicas: an expert held by several shards has its (row, expert) pairs spread over them, each
// pair to the replica with the least work assigned so far in the layer. A shard whose request
// fails is set aside for `failed_shard_retry` (it gets no rows unless it is an expert's only
// holder) and the failed pairs go again to other replicas in the same step; only a pair with no
// other replica fails the step (its KV rows are rolled back), never the router.
#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "actors/messages.h"
#include "actors/router_metrics.h"
#include "model/dispatch.h"
#include "model/router_model.h"

namespace moeflow {

struct RouterOptions {
  caf::timespan shard_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds failed_shard_retry{2000};
  std::shared_ptr<RouterMetrics> metrics;  // null: metrics off
};

struct router_state {
  static inline const char* name = "router";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  router_state() = default;

  struct Pending {
    StepRequestPtr request;
    caf::typed_response_promise<StepResultPtr> promise;
  };

  std::shared_ptr<RouterModel> model;
  std::vector<expert_shard_actor> shards;
  ExpertOwners owners;
  RouterOptions options;
  std::deque<Pending> queue;
  PlacementUpdatePtr next_placement;  // applied when no step is in flight
  caf::typed_response_promise<bool> placement_applied;
  // Per shard: until when it gets no rows after a failure.
  std::vector<std::chrono::steady_clock::time_point> set_aside_until;

  // The step in flight.
  bool busy = false;
  Pending current;
  StepPlan plan;
  std::vector<float> hidden, routed;
  int64_t layer = 0;
  TokenBatchPtr batch;  // the current layer's rows, shared with the shards it goes to
  std::vector<BatchSlice> slices;
  std::vector<ExpertOutputPtr> outputs;  // null for a slice that failed
  int outstanding = 0;
  std::vector<size_t> failed_slices;  // of the current layer, to send again elsewhere
  std::vector<bool> failed_in_layer;  // per shard
  std::string failure;                // first error of the current layer
  std::chrono::steady_clock::time_point dispatched;
  std::vector<double> layer_wait_us;
  std::vector<int64_t> expert_use;  // for a step with a budget (StepResult::expert_use)
};

router_actor::behavior_type make_router(router_actor::stateful_pointer<router_state> self,
                                        std::shared_ptr<RouterModel> model,
                                        std::vector<expert_shard_actor> shards, ExpertOwners owners,
                                        RouterOptions options);

}  // namespace moeflow
