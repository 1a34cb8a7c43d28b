#pragma once
// scheduler: takes generation requests and drives decode steps on the router. Continuous
// batching in its simplest form: every step carries every running sequence (new ones with their
// prompt, the others with their last token); requests that arrive during a step join the next
// one, finished ones leave. A failed step ends the requests in it with the error.
#include <caf/all.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "actors/messages.h"
#include "model/model_config.h"
#include "model/sampler.h"

namespace moeflow {

struct SchedulerOptions {
  caf::timespan step_timeout = std::chrono::seconds(30);
};

struct scheduler_state {
  static inline const char* name = "scheduler";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  scheduler_state() = default;

  struct Sequence {
    uint64_t seq_id = 0;
    GenerationRequestPtr request;
    Sampler sampler;
    std::vector<int32_t> next;  // tokens to feed in the next step
    GenerationResult result;
    caf::typed_response_promise<GenerationResultPtr> promise;
  };

  router_actor router;
  ModelConfig config;
  SchedulerOptions options;
  std::vector<Sequence> running;
  bool stepping = false;
  uint64_t next_seq_id = 1;
};

scheduler_actor::behavior_type make_scheduler(
    scheduler_actor::stateful_pointer<scheduler_state> self, router_actor router,
    ModelConfig config, SchedulerOptions options);

}  // namespace moeflow
