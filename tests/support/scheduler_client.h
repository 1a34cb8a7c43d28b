#pragma once
// Sends generation requests to a scheduler actor all at once (so they share steps) and collects
// each result or error message.
#include <caf/all.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "actors/messages.h"

namespace moeflow::test_support {

struct Outcome {
  GenerationResult result;
  std::string error;  // empty on success
};

std::vector<Outcome> run_requests(caf::actor_system& system, const scheduler_actor& scheduler,
                                  const std::vector<GenerationRequest>& requests,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Greedy requests for each prompt with max_tokens each.
std::vector<GenerationRequest> greedy_requests(const std::vector<std::vector<int32_t>>& prompts,
                                               int64_t max_tokens);

}  // namespace moeflow::test_support
