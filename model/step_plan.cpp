#include "model/step_plan.h"

#include <unordered_set>

#include "core/error.h"

namespace moeflow {

StepPlan plan_step(const std::vector<SequenceTokens>& batch, const KvCacheState& cache,
                   bool all_positions) {
  StepPlan plan;
  std::unordered_set<uint64_t> seen;
  for (const SequenceTokens& s : batch) {
    if (s.tokens.empty()) throw Error("sequence " + std::to_string(s.seq_id) + ": no new tokens");
    if (!seen.insert(s.seq_id).second)
      throw Error("sequence " + std::to_string(s.seq_id) + " appears twice in one batch");
    StepSequence step{s.seq_id, plan.layout.rows(), static_cast<int64_t>(s.tokens.size()),
                      cache.length(s.seq_id)};
    for (int64_t i = 0; i < step.count; ++i) {
      plan.layout.row_seq_ids.push_back(s.seq_id);
      plan.layout.positions.push_back(static_cast<int32_t>(step.first_position + i));
      if (all_positions || i == step.count - 1) plan.output_rows.push_back(step.first_row + i);
    }
    plan.tokens.insert(plan.tokens.end(), s.tokens.begin(), s.tokens.end());
    plan.layout.sequences.push_back(step);
  }
  return plan;
}

}  // namespace moeflow
