#pragma once
// Driving a router actor directly, step by step, the way the decode benchmarks do: fresh
// sequences with random prompts, one blocking step, and the next greedy step from its logits.
#include <caf/all.hpp>
#include <cstdint>
#include <random>

#include "actors/messages.h"

namespace moeflow::bench {

// `batch` new sequences (ids first_id, first_id + 1, ...) with `prompt` random tokens each.
StepRequestPtr random_prompt_step(int64_t batch, int64_t prompt, uint64_t first_id, int64_t vocab,
                                  std::mt19937_64& rng);

// One step on the router; throws moeflow::Error when it fails.
StepResultPtr run_router_step(caf::scoped_actor& self, const router_actor& router,
                              const StepRequestPtr& step);

// The next decode step: each sequence of `step` with the argmax token of its logits.
StepRequestPtr greedy_next_step(const StepRequest& step, const StepResult& result);

}  // namespace moeflow::bench
