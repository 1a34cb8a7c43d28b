#pragma once
// A ForwardBackend over the router actor: each forward() is one router step (so the expert shards
// of every node take part, and a budget reaches them as fewer pairs), truncate() and release()
// are messages to the router. forward() waits for the router's reply, so a RouterBackend may only
// be used from a thread of its own (the speculator is a detached actor), never from a CAF worker.
//
// The router is the only owner of the KV cache; the backend mirrors the length of each sequence
// it uses (what a step committed, what a truncate kept), so sequence_length() needs no message.
// adopt() tells it the length of a sequence another actor prefilled.
//
// Steps, truncates and releases all go out through one scoped actor, so that the router receives
// them in the order they were made (CAF orders messages per sender).
#include <caf/all.hpp>
#include <unordered_map>
#include <vector>

#include "actors/messages.h"
#include "model/engine.h"
#include "model/forward_backend.h"

namespace moeflow {

class RouterBackend : public ForwardBackend {
 public:
  RouterBackend(caf::actor_system& system, router_actor router, ModelConfig config,
                caf::timespan step_timeout);

  const ModelConfig& config() const override { return config_; }
  // Fills stats->rows and, for a budget, stats->expert_use. Throws moeflow::Error with the
  // router's reason when the step fails (the router then rolled the step back).
  std::vector<float> forward(const std::vector<SequenceTokens>& batch, bool all_positions,
                             StepStats* stats, const ExpertBudget& budget) override;
  int64_t sequence_length(uint64_t seq_id) const override;
  void truncate(uint64_t seq_id, int64_t length) override;
  void release(uint64_t seq_id) override;

  // The router's cache holds `length` tokens of the sequence (prefilled by someone else).
  void adopt(uint64_t seq_id, int64_t length) { lengths_[seq_id] = length; }
  // `count` more tokens of the sequence went into the router's cache by other hands (the
  // scheduler's plain steps).
  void advance(uint64_t seq_id, int64_t count) { lengths_[seq_id] += count; }

  // Routing of the steps with a budget (draft passes) since the last clear:
  // [layer * num_experts + expert] (row, expert) pairs, and the rows.
  const std::vector<int64_t>& draft_use() const { return draft_use_; }
  int64_t draft_rows() const { return draft_rows_; }
  void clear_draft_use() {
    draft_use_.clear();
    draft_rows_ = 0;
  }

 private:
  caf::scoped_actor self_;
  router_actor router_;
  ModelConfig config_;
  caf::timespan step_timeout_;
  std::unordered_map<uint64_t, int64_t> lengths_;
  std::vector<int64_t> draft_use_;
  int64_t draft_rows_ = 0;
};

}  // namespace moeflow
