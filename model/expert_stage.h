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

// One expert's share of the last batch: how many (row, expert) pairs it computed and how long
// that took (for the busy-time metrics; two clock reads per expert and batch).
struct ExpertWork {
  int64_t expert = 0;
  int64_t pairs = 0;
  double seconds = 0.0;
};

class ExpertStage {
 public:
  ExpertStage(const ModelConfig& cfg, const ExpertWeights& weights);

  bool holds(int64_t layer, int64_t expert) const {
    return weights_.find(layer, expert) != nullptr;
  }

  // out: [batch.size(), hidden] overwritten with sum over chosen experts held here of
  // weight * expert(row). Returns how many (row, expert) pairs it computed.
  int64_t run(const TokenBatch& batch, float* out);

  // Per expert that the last run() computed, in expert order.
  const std::vector<ExpertWork>& last_work() const { return last_work_; }

 private:
  // One expert's share of a batch: the slots (row * top_k + choice) routed to it, its gathered
  // input rows and its output rows.
  struct Group {
    int64_t expert = 0;
    std::vector<int64_t> slots;
    std::vector<float> input, output, scratch;
    double seconds = 0.0;
  };
  void run_group(const TokenBatch& batch, Group& group);

  const ModelConfig& cfg_;
  const ExpertWeights& weights_;
  std::vector<Group> groups_;  // reused between calls
  std::vector<ExpertWork> last_work_;
};

}  // namespace moeflow
