#pragma once
// Parameter counts derived from the architecture, for `inspect` and bandwidth accounting.
#include <cstdint>

#include "model/model_config.h"

namespace moeflow {

struct ParameterCount {
  int64_t total = 0;           // every parameter
  int64_t active = 0;          // those one token uses: top_k routed experts per MoE layer
  int64_t routed_experts = 0;  // all routed experts together
  int64_t embedding = 0;       // input embedding (+ LM head when untied)
};

ParameterCount count_parameters(const ModelConfig& cfg);

}  // namespace moeflow
