#pragma once
// What a speculative decoder needs from a model: batched forward passes (with an expert budget and
// logits for every new token) over a KV cache it can roll back. Implemented in process by Engine
// and, through the router and its expert shards (local or on other nodes), by RouterBackend
// (actors/router_backend.h).
#include <cstdint>
#include <vector>

#include "model/expert_budget.h"
#include "model/model_config.h"
#include "model/step_plan.h"

namespace moeflow {

struct StepStats;

class ForwardBackend {
 public:
  virtual ~ForwardBackend() = default;

  // The model served.
  virtual const ModelConfig& config() const = 0;

  // One batched step: logits [batch.size(), vocab] of each sequence's last new token, or with
  // all_positions [total new tokens, vocab] in batch order. `budget` routes every MoE layer with
  // fewer experts. Throws moeflow::Error; the caches are then as before the call.
  virtual std::vector<float> forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                                     StepStats* stats, const ExpertBudget& budget) = 0;

  // Tokens cached for the sequence (0 for an unknown one).
  virtual int64_t sequence_length(uint64_t seq_id) const = 0;

  // Drops the sequence's cached tokens past `length`.
  virtual void truncate(uint64_t seq_id, int64_t length) = 0;

  // Frees the sequence's cache.
  virtual void release(uint64_t seq_id) = 0;
};

}  // namespace moeflow
