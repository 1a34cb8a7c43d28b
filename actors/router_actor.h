#pragma once
// router: owns embeddings, attention, norms, gates and the KV cache. For each step and each MoE
// layer it sends every shard the rows whose chosen experts it holds, waits for all of them, and
// combines their weighted outputs before the next layer. Steps run one at a time, in arrival
// order; a failed shard fails the step (its KV rows are rolled back) but not the router.
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

// owners[layer][expert]: indices of the shards holding that expert (empty for dense layers).
using ExpertOwners = std::vector<std::vector<std::vector<int>>>;

struct RouterOptions {
  caf::timespan shard_timeout = std::chrono::seconds(10);
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

  // The step in flight.
  bool busy = false;
  Pending current;
  StepPlan plan;
  std::vector<float> hidden, routed;
  int64_t layer = 0;
  TokenBatchPtr batch;  // the current layer's rows, shared with the shards it goes to
  std::vector<BatchSlice> slices;
  std::vector<ExpertOutputPtr> outputs;
  int outstanding = 0;
  std::string failure;  // first error of the current layer
  std::chrono::steady_clock::time_point dispatched;
  std::vector<double> layer_wait_us;
};

router_actor::behavior_type make_router(router_actor::stateful_pointer<router_state> self,
                                        std::shared_ptr<RouterModel> model,
                                        std::vector<expert_shard_actor> shards, ExpertOwners owners,
                                        RouterOptions options);

}  // namespace moeflow
