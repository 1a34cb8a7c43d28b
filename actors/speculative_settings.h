#pragma once
// The graph's [speculative] section as the speculator's settings.
#include "actors/messages.h"
#include "graph/graph.h"
#include "model/model_config.h"

namespace moeflow {

// `spec` was validated against `model` (graph/graph.h, validate_graph).
SpeculativeSettings speculative_settings(const SpeculativeSpec& spec, const ModelConfig& model);

}  // namespace moeflow
