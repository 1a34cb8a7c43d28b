#pragma once
// The expert stage: runs the routed experts it holds over a TokenBatch and returns, per row, the
// weighted sum of those experts' outputs. Rows are grouped by expert so that each expert's
// weights are read once per batch. Knows nothing of attention, caches or where rows came from.
#include <cstdint>
#include <vector>

#include "model/model_config.h"
#include "model/token_batch.h"
#include "model/weights.h"

namespace moeflow {

class ExpertStage {
 public:
  ExpertStage(const ModelConfig& cfg, const ExpertWeights& weights);

  bool holds(int64_t layer, int64_t expert) const { return weights_.find(layer, expert) != nullptr; }

  // out: [batch.size(), hidden] overwritten with sum over chosen experts held here of
  // weight * expert(row). Returns how many (row, expert) pairs it computed.
  int64_t run(const TokenBatch& batch, float* out);

  // Bytes of expert weights this batch reads (each touched expert once).
  int64_t bytes_touched(const TokenBatch& batch) const;

 private:
  const ModelConfig& cfg_;
  const ExpertWeights& weights_;
  std::vector<float> gathered_, result_, scratch_;
  std::vector<std::vector<int64_t>> slots_;  // per expert: indices into batch.experts
};

}  // namespace moeflow
