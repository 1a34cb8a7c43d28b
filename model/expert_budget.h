#pragma once
// An elastic expert budget: the same MoE run with fewer routed experts per token, the cheap draft
// model of self-speculative decoding. Either a smaller top-k, or only the experts of a resident
// set per layer (a drafter's fast tier), or both. Shared experts and dense layers are untouched.
#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace moeflow {

struct ExpertBudget {
  // Routed experts per token; 0 keeps the model's own top-k.
  int64_t top_k = 0;
  // Per layer, the experts that may be chosen; empty: every expert. When given it has one entry
  // per layer (entries of dense layers are ignored). A token whose best experts are not resident
  // takes the highest-ranked resident ones instead.
  std::vector<std::vector<int32_t>> resident;

  bool is_full() const { return top_k == 0 && resident.empty(); }
};

// Throws moeflow::Error naming the layer and expert for a budget this model cannot honour.
void validate(const ExpertBudget& budget, const ModelConfig& cfg);

// Routed experts per token the budget gives `layer`: its top-k, capped by the resident experts.
int64_t budget_top_k(const ExpertBudget& budget, const ModelConfig& cfg, int64_t layer);

// [num_experts] 1 where `layer` may choose the expert; empty when every expert may be chosen.
std::vector<uint8_t> resident_mask(const ExpertBudget& budget, const ModelConfig& cfg,
                                   int64_t layer);

// A resident set chosen from observed routing: per MoE layer the `per_layer` experts with the
// most (row, expert) pairs in `use` ([layer * num_experts + expert], e.g. summed
// StepStats::expert_use of draft passes), ties to the lower id, in ascending id order.
std::vector<std::vector<int32_t>> most_used_experts(const std::vector<int64_t>& use,
                                                    const ModelConfig& cfg, int64_t per_layer);

}  // namespace moeflow
