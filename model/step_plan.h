#pragma once
// Turns the sequences of one forward step into its row layout: which rows belong to which
// sequence, at which positions, and whose logits are wanted. Shared by the in-process Engine and
// the router actor so that both number rows the same way.
#include <cstdint>
#include <vector>

#include "model/kv_cache_state.h"
#include "model/router_stage.h"

namespace moeflow {

// New tokens for one sequence in a forward pass; they follow what its cache already holds.
struct SequenceTokens {
  uint64_t seq_id = 0;
  std::vector<int32_t> tokens;
};

struct StepPlan {
  StepLayout layout;
  std::vector<int32_t> tokens;       // per row
  std::vector<int64_t> output_rows;  // rows whose logits are returned, in batch order
};

// Throws moeflow::Error for a sequence without tokens or one that appears twice.
StepPlan plan_step(const std::vector<SequenceTokens>& batch, const KvCacheState& cache,
                   bool all_positions);

}  // namespace moeflow
