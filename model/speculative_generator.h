#pragma once
// Batched generation with self-speculative decoding: model/generator.h's generate(), each round
// drafted with the reduced expert budget and verified by the full model. Greedy results equal
// generate()'s token for token; sampled ones follow the same distribution.
#include <vector>

#include "model/generator.h"
#include "model/speculative.h"

namespace moeflow {

struct SpeculativeGeneration {
  std::vector<GenerationResult> results;
  SpeculativeStats stats;
};

SpeculativeGeneration generate_speculative(Engine& engine,
                                           const std::vector<GenerationRequest>& requests,
                                           const SpeculativeOptions& options);

}  // namespace moeflow
