#pragma once
// Batched generation on one Engine: prefill every prompt in one step, then decode all unfinished
// sequences together until each meets EOS or its token limit.
#include <cstdint>
#include <string>
#include <vector>

#include "model/engine.h"
#include "model/sampler.h"

namespace moeflow {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;
};

struct GenerationResult {
  std::vector<int32_t> tokens;
  std::string finish_reason;  // "stop" (EOS) or "length"
};

std::vector<GenerationResult> generate(Engine& engine,
                                       const std::vector<GenerationRequest>& requests);

}  // namespace moeflow
