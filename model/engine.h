#pragma once
// A whole model in one process: a RouterModel (attention, gates, KV cache) and one ExpertShard
// holding every expert. forward() runs one batched step for several sequences of different
// lengths: prefill (many new tokens) and decode (one new token) may be mixed in one batch.
// With a CUDA device both halves sit on that GPU and the step runs device-resident
// (model/gpu_engine_step.h): token ids in, logits out, the hidden state never in host memory.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/expert_budget.h"
#include "model/expert_shard.h"
#include "model/forward_backend.h"
#include "model/router_model.h"
#include "model/step_plan.h"

namespace moeflow {

class GpuEngineStep;

struct EngineOptions {
  std::string dtype = "auto";  // f32 | bf16 | auto
  bool progress = false;       // report loading progress on stderr
  int cuda_device = -1;        // >= 0: router stage and experts on that GPU (bf16 weights there)
};

// Counters of one forward pass, for benchmarks and metrics.
struct StepStats {
  int64_t rows = 0;
  int64_t expert_rows = 0;   // (row, expert) pairs computed
  int64_t weight_bytes = 0;  // weights read: router stage + experts touched
  int64_t expert_bytes = 0;  // the experts' share of weight_bytes
  // [layer * num_experts + expert]: (row, expert) pairs routed there (observed routing, e.g. to
  // choose a drafter's resident set).
  std::vector<int64_t> expert_use;
};

class Engine : public ForwardBackend {
 public:
  // Opens and validates the checkpoint, loads the weights. Throws moeflow::Error.
  static std::unique_ptr<Engine> load(const std::filesystem::path& dir, const EngineOptions& opts);
  ~Engine() override;

  const ModelConfig& config() const override { return router_->config(); }
  const Checkpoint& checkpoint() const { return router_->checkpoint(); }
  ComputeType compute_type() const { return router_->compute_type(); }

  // Runs one step. Returns logits [batch.size(), vocab] for each sequence's last new token, or,
  // with all_positions, [total new tokens, vocab] in batch order. `budget` routes every MoE layer
  // with fewer experts (a draft of this model, model/expert_budget.h); throws moeflow::Error for
  // one the model cannot honour.
  std::vector<float> forward(const std::vector<SequenceTokens>& batch, bool all_positions = false,
                             StepStats* stats = nullptr, const ExpertBudget& budget = {}) override;

  int64_t sequence_length(uint64_t seq_id) const override {
    return router_->cache().length(seq_id);
  }
  void release(uint64_t seq_id) override { router_->cache().release(seq_id); }
  void truncate(uint64_t seq_id, int64_t length) override {
    router_->cache().truncate(seq_id, length);
  }

 private:
  Engine() = default;
  std::unique_ptr<RouterModel> router_;
  std::unique_ptr<ExpertShard> experts_;
  std::unique_ptr<GpuEngineStep> gpu_step_;  // set when both halves are on a GPU
};

}  // namespace moeflow
