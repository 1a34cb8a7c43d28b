#pragma once
// A whole model in one process: the router stage, one expert stage holding every expert, and the
// KV cache. forward() runs one batched step for several sequences of different lengths: prefill
// (many new tokens) and decode (one new token) may be mixed in one batch.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/expert_stage.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/router_stage.h"
#include "model/weights.h"

namespace moeflow {

struct EngineOptions {
  std::string dtype = "auto";  // f32 | bf16 | auto
  bool progress = false;       // report loading progress on stderr
};

// New tokens for one sequence in a forward pass; they follow what its cache already holds.
struct SequenceTokens {
  uint64_t seq_id = 0;
  std::vector<int32_t> tokens;
};

// Counters of one forward pass, for benchmarks and metrics.
struct StepStats {
  int64_t rows = 0;
  int64_t expert_rows = 0;   // (row, expert) pairs computed
  int64_t weight_bytes = 0;  // weights read: router stage + experts touched
};

class Engine {
 public:
  // Opens and validates the checkpoint, loads the weights. Throws moeflow::Error.
  static std::unique_ptr<Engine> load(const std::filesystem::path& dir, const EngineOptions& opts);

  const ModelConfig& config() const { return cfg_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  ComputeType compute_type() const { return type_; }
  size_t converted_bytes() const { return store_.owned_bytes(); }

  // Runs one step. Returns logits [batch.size(), vocab] for each sequence's last new token, or,
  // with all_positions, [total new tokens, vocab] in batch order.
  std::vector<float> forward(const std::vector<SequenceTokens>& batch, bool all_positions = false,
                             StepStats* stats = nullptr);

  int64_t sequence_length(uint64_t seq_id) const { return cache_.length(seq_id); }
  void release(uint64_t seq_id) { cache_.release(seq_id); }
  void truncate(uint64_t seq_id, int64_t length) { cache_.truncate(seq_id, length); }

 private:
  Engine(const std::filesystem::path& dir, const EngineOptions& opts);

  ModelConfig cfg_;
  Checkpoint ckpt_;
  ComputeType type_;
  WeightStore store_;
  RouterWeights router_weights_;
  ExpertWeights expert_weights_;
  std::unique_ptr<RouterStage> router_;
  std::unique_ptr<ExpertStage> experts_;
  KvCache cache_;
};

}  // namespace moeflow
