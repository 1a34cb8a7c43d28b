#pragma once
// scheduler: takes generation requests and drives steps on the router (continuous batching).
// Every step carries every running sequence: decoding ones with their last token, new ones with
// a chunk of their prompt (at most `prefill_chunk` prompt tokens per step in all, so that running
// streams do not stall behind a long prompt). Requests wait in a queue while the batch is full
// or the KV-cache budget is used up; a full queue refuses new requests at once
// ("overloaded: ..."). Finished and cancelled sequences leave and free their caches. A failed
// step ends the requests in it with the error; the others go on.
//
// With a speculator and speculation on, a sequence whose prompt is prefilled (and whose first
// token was sampled by a plain step) is handed to the speculator; from then on each step sends
// one speculative round for all such sequences next to the router step for the prompts still
// being prefilled. A round's tokens stream as they come; those after a stop token or beyond
// max_tokens are dropped (the speculator already stops there).
#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "actors/messages.h"
#include "actors/scheduler_metrics.h"
#include "model/model_config.h"
#include "model/sampler.h"

namespace moeflow {

struct SchedulerOptions {
  caf::timespan step_timeout = std::chrono::seconds(30);
  int64_t max_running = 64;                   // sequences in one step
  int64_t max_waiting = 256;                  // queued requests beyond that; more are refused
  int64_t kv_budget_tokens = 65536;           // prompt + max_tokens summed over running sequences
  int64_t prefill_chunk = 512;                // prompt tokens per step, over all sequences
  std::shared_ptr<SchedulerMetrics> metrics;  // null: metrics off
  speculator_actor speculator;                // null: no speculation
  bool speculative = false;                   // speculation on from the start
};

struct scheduler_state {
  static inline const char* name = "scheduler";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  scheduler_state() = default;

  struct Sequence {
    uint64_t seq_id = 0;
    GenerationRequestPtr request;
    Sampler sampler;
    std::vector<int32_t> pending;  // tokens not yet fed to the model (prompt chunks, last token)
    GenerationResult result;
    // Where the result goes: a response promise, or a stream sink with the caller's id.
    caf::typed_response_promise<GenerationResultPtr> promise;
    caf::actor sink;
    uint64_t stream_id = 0;
    bool cancelled = false;
    bool speculated = false;  // decoded by the speculator, which holds both of its caches
    // Of a speculated sequence: tokens this scheduler decoded plainly since its last round (the
    // speculator predicted plain decoding faster), to hand over with the next round.
    std::vector<int32_t> decoded_here;
  };

  router_actor router;
  ModelConfig config;
  SchedulerOptions options;
  std::deque<Sequence> waiting;
  std::vector<Sequence> running;
  int64_t kv_reserved = 0;
  int in_flight = 0;  // router steps and speculative rounds sent, not yet answered
  // Plain steps the speculator said it would take before its next probe (its last round's
  // plain_ahead): this scheduler runs them itself. Counted since the last round:
  int64_t plain_ahead = 0;
  int64_t plain_steps = 0, timed_steps = 0;
  double timed_seconds = 0.0;
  uint64_t next_seq_id = 1;
};

scheduler_actor::behavior_type make_scheduler(
    scheduler_actor::stateful_pointer<scheduler_state> self, router_actor router,
    ModelConfig config, SchedulerOptions options);

}  // namespace moeflow
